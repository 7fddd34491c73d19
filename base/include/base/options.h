/*
 * options.h - parsing the small text settings the library accepts:
 * "key=value,key=value" lists (dv_device_options_t.backend_options) and
 * byte sizes with a suffix ("6G", "512M", "4096").
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Contract:
 *  - dv__kv_next: the next pair of the list at *cursor, copied NUL-terminated
 *    into key and val (val "" for a bare "key"), *cursor moved past it;
 *    returns 1, or 0 at the end, or -1 when a key or value does not fit or a
 *    key is empty (then *cursor is left where the bad pair starts). Spaces
 *    around keys and values are dropped. NULL or "" is an empty list.
 *  - dv__parse_size: digits with an optional K, M, G or T (powers of 1024);
 *    0 on success, -1 for anything else or an overflow.
 *  Both are pure functions: thread-safe.
 */
#ifndef DV_BASE_OPTIONS_H
#define DV_BASE_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

int dv__kv_next(const char **cursor, char *key, size_t key_len, char *val,
                size_t val_len);
int dv__parse_size(const char *s, uint64_t *out);

#endif /* DV_BASE_OPTIONS_H */
