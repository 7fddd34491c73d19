/*
 * hip_test.c - see hip_test.h.
 * SPDX-License-Identifier: Apache-2.0
 */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */

#include "tests/hip/hip_test.h"

#include <stdlib.h>
#include <string.h>

void ht_sim_env(const char *defects, const char *workarounds) {
    setenv("DYNVRAM_BACKEND", "hip", 1);
    setenv("DYNVRAM_HIP_LIBRARY", DV_HIP_SIM_PATH, 1);
    if (defects) {
        setenv("DVSIM_HIP_DEFECTS", defects, 1);
    } else {
        unsetenv("DVSIM_HIP_DEFECTS");
    }
    if (workarounds) {
        setenv("DYNVRAM_HIP_WORKAROUNDS", workarounds, 1);
    } else {
        unsetenv("DYNVRAM_HIP_WORKAROUNDS");
    }
}

void ht_probe(dv_backend_info_t *info) {
    for (int i = 0; i < dv_backend_count(); i++) {
        HT_OK(dv_backend_probe(i, info));
        if (strcmp(info->name, "hip") == 0) {
            return;
        }
    }
    cr_assert_fail("no hip backend in the probe list");
}

dv_device_t *ht_open(int ordinal, uint64_t pool_limit) {
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "hip";
    o.ordinal = ordinal;
    o.page_size = HT_PAGE;
    o.pool_limit = pool_limit;
    dv_device_t *dev = NULL;
    HT_OK(dv_device_open(&o, &dev));
    return dev;
}

static void ht_fill(unsigned char *buf, uint64_t size, unsigned seed) {
    for (uint64_t i = 0; i < size; i++) {
        buf[i] = (unsigned char)((i * 131u + seed * 7u + (i >> 12)) & 0xff);
    }
}

void ht_roundtrip(dv_device_t *dev, uint64_t pages) {
    uint64_t size = pages * HT_PAGE;
    unsigned char *src = malloc(size), *dst = malloc(size);
    cr_assert(src && dst);
    ht_fill(src, size, (unsigned)pages);
    void *stream = NULL;
    HT_OK(dv_stream_create(dev, &stream));
    dv_vbar_t *v = NULL;
    HT_OK(dv_vbar_create(dev, size, &v));
    dv_vbar_info_t info;
    HT_OK(dv_vbar_get_info(dev, v, &info));
    uint64_t g1 = 0, g2 = 0, g3 = 0;
    HT_OK(dv_fault(dev, v, 0, size, &g1));
    HT_OK(dv_copy_h2d(dev, info.base, src, size, stream));
    HT_OK(dv_stream_synchronize(dev, stream));
    HT_OK(dv_unpin(dev, v, 0, size, stream));
    /* Still resident: same generation, same content. */
    HT_OK(dv_fault(dev, v, 0, size, &g2));
    cr_assert_eq(g2, g1);
    memset(dst, 0, size);
    HT_OK(dv_copy_d2h(dev, dst, info.base, size, stream));
    HT_OK(dv_stream_synchronize(dev, stream));
    cr_assert(memcmp(src, dst, size) == 0, "data changed on the device");
    HT_OK(dv_unpin(dev, v, 0, size, stream));
    /* Evicted: fresh memory, a new generation. */
    uint64_t freed = 0;
    HT_OK(dv_vbar_evict(dev, v, size, &freed));
    cr_assert_eq(freed, size);
    HT_OK(dv_vbar_prioritize(dev, v)); /* eviction lowered the watermark */
    HT_OK(dv_fault(dev, v, 0, size, &g3));
    cr_assert_neq(g3, g1);
    HT_OK(dv_unpin(dev, v, 0, size, stream));
    HT_OK(dv_device_check(dev));
    HT_OK(dv_vbar_destroy(dev, v));
    HT_OK(dv_stream_destroy(dev, stream));
    free(src);
    free(dst);
}
