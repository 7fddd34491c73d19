/*
 * fake_win.h - controls and inspection of the fake Win32 memory manager
 * (include/windows.h, fake_win.c) for the host_win tests.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_TESTS_FAKE_WIN_H
#define DV_TESTS_FAKE_WIN_H

#include <stdint.h>

#define FW_GRANULE (64u << 10)

/* Number of regions (placeholders + views), placeholders, views, and live
 * section objects (handles or views still holding them). */
int fw_regions(void);
int fw_placeholders(void);
int fw_views(void);
int fw_sections(void);
/* 0 if the region table is sorted, non-overlapping, granule-aligned and
 * agrees with the real mappings' kinds; else a negative step number. */
int fw_check(void);
/* Fail the `nth` (1 = next) later call of `fn` ("VirtualAlloc2",
 * "MapViewOfFile3", "UnmapViewOfFile2", "VirtualFree.split",
 * "VirtualFree.coalesce", "VirtualFree.release", "CreateFileMappingW") with
 * `code`. One armed failure at a time. */
void fw_fail(const char *fn, int nth, uint32_t code);
/* Behave like Wine 8: VirtualAlloc2 refuses MEM_RESERVE_PLACEHOLDER. */
void fw_no_placeholders(void);
/* GetProcAddress(kernelbase, name) returns NULL (a pre-1803 system). */
void fw_hide_export(const char *name);
/* Bytes of sections that may exist at once (the commit limit); 0 = none. */
void fw_commit_limit(uint64_t bytes);
/* Calls of each kind so far (to see what the backend did). */
int fw_calls(const char *fn);

#endif
