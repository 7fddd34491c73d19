/*
 * iotest.h - helpers of the host I/O suites: real files in a temporary
 * directory, a byte pattern that depends on the file offset, checks.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_TEST_IOTEST_H
#define DV_TEST_IOTEST_H

#include <stddef.h>
#include <stdint.h>

#include "dynvram_io.h"
#include "testdev.h"

/* The byte at file offset `off` of every test file (never constant). */
static inline uint8_t tio_byte(uint64_t off) {
    uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull;
    return (uint8_t)(x >> 56) ^ (uint8_t)off;
}

/* A fresh temporary directory for this process (removed at exit). */
const char *tio_dir(void);
/* Write a file of `size` pattern bytes under tio_dir(); returns its path
 * (static storage per call slot: up to 8 live paths). */
const char *tio_file(const char *name, uint64_t size);
/* Index of the first byte of buf[0..n) that is not the pattern at file
 * offset foff + i, or -1. */
int64_t tio_mismatch(const void *buf, uint64_t n, uint64_t foff);
/* Device memory [dst, dst + n) read back with dv_copy_d2h, compared; -2
 * when it cannot be read back. Thread-safe (asserts nothing). */
int64_t tio_device_mismatch(dv_device_t *dev, uint64_t dst, uint64_t n,
                            uint64_t foff);
/* Live registrations on the host backend (0 elsewhere: not observable). */
uint64_t tio_host_regs(void);
/* Does the backend under test register host memory? */
int tio_can_register(dv_device_t *dev);
/* The message of the last error contains `s`. */
void tio_msg_has(const char *s);

#define TIO_BAD(call, want, text)                                              \
    do {                                                                       \
        TD_IS(call, want);                                                     \
        tio_msg_has(text);                                                     \
    } while (0)

#endif
