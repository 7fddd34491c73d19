/*
 * test_threads.c - several threads faulting, unpinning, prioritizing and
 * evicting on one device; the invariants hold at the end and no pin is lost.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>

#include "testdev.h"

#define P TD_PAGE
#define THREADS 4
#define VBARS 3
#define PAGES 8
#define ITERS 3000

static dv_device_t *dev;
static dv_vbar_t *vb[VBARS];

typedef struct worker {
    unsigned seed;
    long ok, offloaded, errors;
} worker_t;

static unsigned rnd(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void *run(void *arg) {
    worker_t *w = arg;
    for (int it = 0; it < ITERS; it++) {
        dv_vbar_t *v = vb[rnd(&w->seed) % VBARS];
        unsigned op = rnd(&w->seed) % 16;
        uint64_t first = rnd(&w->seed) % PAGES;
        uint64_t n = 1 + rnd(&w->seed) % 2;
        if (first + n > PAGES) {
            n = PAGES - first;
        }
        uint64_t g;
        if (op == 0) {
            w->errors += dv_vbar_prioritize(dev, v) != DV_OK;
        } else if (op == 1) {
            w->errors += dv_vbar_deprioritize(dev, v) != DV_OK;
        } else if (op == 2) {
            w->errors += dv_vbar_evict(dev, v, P, &g) != DV_OK;
        } else if (op == 3) {
            if (dv_framework_reserve(dev, P) == DV_OK) {
                w->errors += dv_framework_release(dev, P) != DV_OK;
            }
        } else {
            dv_result_t r = dv_fault(dev, v, first * P, n * P, &g);
            if (r == DV_OK) {
                w->ok++;
                w->errors += dv_unpin(dev, v, first * P, n * P, NULL) != DV_OK;
            } else if (r == DV_OFFLOADED) {
                w->offloaded++;
            } else {
                w->errors++;
            }
        }
    }
    return NULL;
}

Test(threads, concurrent_fault_unpin_prioritize) {
    dev = td_open(10);
    for (int k = 0; k < VBARS; k++) {
        TD_OK(dv_vbar_create(dev, PAGES * P, &vb[k]));
    }
    pthread_t t[THREADS];
    worker_t w[THREADS] = {{0}};
    for (int k = 0; k < THREADS; k++) {
        w[k].seed = 1234u + (unsigned)k * 7919u;
        cr_assert_eq(pthread_create(&t[k], NULL, run, &w[k]), 0);
    }
    long ok = 0;
    for (int k = 0; k < THREADS; k++) {
        pthread_join(t[k], NULL);
        cr_assert_eq(w[k].errors, 0, "thread %d saw %ld errors", k, w[k].errors);
        ok += w[k].ok;
    }
    cr_assert_gt(ok, 0);
    td_check(dev);
    dv_device_stats_t st = td_stats(dev);
    cr_assert_eq(st.pinned_bytes, 0, "every pin was undone");
    cr_assert_leq(st.used, 10 * P, "budget held");
    cr_assert_eq(st.framework_bytes, 0);
    for (int k = 0; k < VBARS; k++) {
        TD_OK(dv_vbar_destroy(dev, vb[k]));
    }
    TD_OK(dv_device_close(dev));
}
