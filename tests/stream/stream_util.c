/*
 * stream_util.c - see stream_util.h.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "stream_util.h"

#include <stdlib.h>
#include <string.h>

void ts_model_init(ts_model_t *m, dv_device_t *dev, uint64_t n, uint64_t size,
                   uint64_t stride) {
    memset(m, 0, sizeof(*m));
    m->dev = dev;
    m->n = n;
    m->host_size = n * size;
    m->host = malloc(m->host_size);
    m->buf = malloc(size);
    m->rg = calloc(n, sizeof(*m->rg));
    cr_assert(m->host && m->buf && m->rg);
    m->largest = size;
    /* Bytes that differ from range to range and from offset to offset. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint64_t k = 0; k < m->host_size; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m->host[k] = (unsigned char)x;
    }
    for (uint64_t i = 0; i < n; i++) {
        m->rg[i].offset = i * stride;
        m->rg[i].size = size;
        m->rg[i].src = m->host + i * size;
    }
    TD_OK(dv_vbar_create(dev, n * stride, &m->vbar));
}

void ts_model_uses(ts_model_t *m, const uint64_t *order, uint64_t count) {
    dv_schedule_range_t *rg = calloc(count, sizeof(*rg));
    cr_assert(rg);
    for (uint64_t i = 0; i < count; i++) {
        cr_assert_lt(order[i], m->n);
        rg[i] = m->rg[order[i]];
    }
    free(m->rg);
    m->rg = rg;
    m->n = count;
}

dv_result_t ts_create(ts_model_t *m, const dv_schedule_options_t *o) {
    return dv_schedule_create(m->dev, m->vbar, m->rg, m->n, o, &m->sched);
}

dv_schedule_info_t ts_info(ts_model_t *m) {
    dv_schedule_info_t in;
    TD_OK(dv_schedule_get_info(m->dev, m->sched, &in));
    return in;
}

int ts_in_ring(ts_model_t *m, uint64_t addr) {
    dv_schedule_info_t in = ts_info(m);
    return addr >= in.ring_base &&
           addr < in.ring_base + in.slot_stride * in.ring_slots;
}

void ts_verify(ts_model_t *m, uint64_t i, uint64_t addr) {
    uint64_t size = m->rg[i].size;
    memset(m->buf, 0, size);
    TD_OK(dv_copy_d2h(m->dev, m->buf, addr, size, m->stream));
    if (m->stream) {
        TD_OK(dv_stream_synchronize(m->dev, m->stream));
    }
    const unsigned char *src = m->rg[i].src;
    for (uint64_t k = 0; k < size; k++) {
        if (m->buf[k] != src[k]) {
            cr_assert_fail("use %llu at 0x%llx: byte %llu is 0x%02x, not 0x%02x",
                           (unsigned long long)i, (unsigned long long)addr,
                           (unsigned long long)k, m->buf[k], src[k]);
        }
    }
}

dv_result_t ts_use(ts_model_t *m, uint64_t i, ts_count_t *c) {
    uint64_t addr = 0;
    dv_result_t r = dv_schedule_acquire(m->dev, m->sched, i, m->stream, &addr);
    if (r == DV_OFFLOADED) {
        if (c) {
            c->offloaded++;
        }
        return r;
    }
    TD_OK(r);
    ts_verify(m, i, addr);
    if (c) {
        if (ts_in_ring(m, addr)) {
            c->streamed++;
        } else {
            dv_vbar_info_t vi;
            TD_OK(dv_vbar_get_info(m->dev, m->vbar, &vi));
            cr_assert_eq(addr, vi.base + m->rg[i].offset,
                         "use %llu: resident at the wrong address",
                         (unsigned long long)i);
            c->resident++;
        }
    }
    TD_OK(dv_schedule_release(m->dev, m->sched, i, m->stream));
    return DV_OK;
}

ts_count_t ts_step(ts_model_t *m) {
    ts_count_t c = {0, 0, 0};
    for (uint64_t i = 0; i < m->n; i++) {
        ts_use(m, i, &c);
    }
    td_check(m->dev);
    return c;
}

void ts_plan_string(ts_model_t *m, char *out) {
    uint8_t *f = malloc(m->n);
    cr_assert(f);
    TD_OK(dv_schedule_plan(m->dev, m->sched, 0, m->n, f));
    for (uint64_t i = 0; i < m->n; i++) {
        out[i] = (f[i] & DV_USE_PLANNED_RESIDENT) ? 'R' : '.';
    }
    out[m->n] = '\0';
    free(f);
}

void ts_model_fini(ts_model_t *m) {
    if (m->sched) {
        TD_OK(dv_schedule_destroy(m->dev, m->sched));
    }
    if (m->vbar) {
        TD_OK(dv_vbar_destroy(m->dev, m->vbar));
    }
    free(m->host);
    free(m->buf);
    free(m->rg);
    memset(m, 0, sizeof(*m));
}
