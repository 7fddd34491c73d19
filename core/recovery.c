/*
 * recovery.c - watermark recovery: when memory frees up, a VBAR's lowered
 * watermark rises again by itself, without thrash.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The sticky watermark makes an over-large model settle; recovery lets a
 * model that was squeezed once (a partial unload, a burst of activations)
 * become resident again when the memory is back, instead of staying
 * offloaded until the caller prioritizes it. The rule, checked when a fault
 * reaches at or above the watermark (and only then: the resident fast path
 * is untouched):
 *
 *  1. Never for a VBAR whose watermark the caller set (dv_vbar_set_watermark)
 *     until the caller resets it (dv_vbar_prioritize); never when the device
 *     has recovery off.
 *  2. Never in the pass in which the VBAR lost a page to pressure or to
 *     dv_vbar_evict, nor in the pass after it: a whole pass must run in the
 *     squeezed state first (so a caller that freed memory to use it gets
 *     to use it, and the framework's peak in that pass is seen). A pass is
 *     one walk of the model: a fault that starts below the previous fault
 *     of the VBAR starts a new pass.
 *  3. Only when the budget has room for every absent page from the old
 *     watermark to the end of the fault, plus the framework memory expected
 *     back (its peak during this or the previous pass, less what it holds
 *     now), plus a margin of one page.
 *  4. The rise never evicts: the fault runs without eviction and, if the
 *     memory is not there after all, returns DV_OFFLOADED with the
 *     watermark where it was.
 *  5. Backoff: when pressure takes a page that recovery brought back, the
 *     VBAR waits 1, 2, 4, ... up to 1024 passes before rising again; a rise
 *     that survives a whole pass resets the wait.
 *
 * The watermark rises only as far as the fault needs (lower offsets first,
 * in the order the model uses them). Room goes to whichever VBAR faults
 * first; a higher-priority VBAR takes it back by eviction as always, and
 * the loser's backoff keeps that from repeating every pass.
 */
#include "core/internal.h"

#define BACKOFF_MAX 1024u

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

void dv__recovery_new_pass(dv__dev_t *dev, dv__vbar_t *v) {
    int lost_last_pass = v->lost_pass == v->pass;
    v->pass++;
    v->fw_peak_prev = v->fw_peak_cur;
    v->fw_peak_cur = dv__outside_bytes(dev);
    if (v->risen_from != DV__NO_PAGE && !lost_last_pass) {
        /* The rises of the last pass survived it: the pages are wanted and
         * the memory holds them. */
        v->backoff = 0;
        v->risen_from = DV__NO_PAGE;
    }
}

void dv__recovery_note_loss(dv__vbar_t *v, uint64_t i) {
    v->lost_pass = v->pass;
    if (v->risen_from != DV__NO_PAGE && i >= v->risen_from) {
        /* Pressure took back what recovery brought: wait longer next time. */
        v->backoff = v->backoff ? v->backoff * 2 : 1;
        if (v->backoff > BACKOFF_MAX) {
            v->backoff = BACKOFF_MAX;
        }
        v->rise_after = v->pass + 1 + v->backoff;
        v->risen_from = DV__NO_PAGE;
    }
}

void dv__recovery_note_framework(dv__dev_t *dev) {
    for (dv__vbar_t *v = dev->top; v; v = v->down) {
        v->fw_peak_cur = max_u64(v->fw_peak_cur, dv__outside_bytes(dev));
    }
}

void dv__recovery_reset(dv__vbar_t *v, int explicit_watermark) {
    v->wm_explicit = (uint8_t)explicit_watermark;
    v->risen_from = DV__NO_PAGE;
    v->backoff = 0;
    v->rise_after = 0;
}

int dv__recovery_may_rise_locked(dv__dev_t *dev, dv__vbar_t *v,
                                 uint64_t first, uint64_t last) {
    int squeezed_lately =
        v->lost_pass != DV__NO_PAGE && v->pass < v->lost_pass + 2;
    if (!dev->recovery || v->wm_explicit || squeezed_lately ||
        v->pass < v->rise_after) {
        return 0;
    }
    uint64_t ps = dev->page_size;
    uint64_t budget = 0;
    if (dv__budget_locked(dev, 0, &budget) != DV_OK) {
        return 0; /* no reading: stay where we are */
    }
    uint64_t old = v->watermark;
    uint64_t absent = 0;
    for (uint64_t i = old < first ? old : first; i <= last; i++) {
        absent += !v->pages[i].resident;
    }
    uint64_t used = dv__used_locked(dev);
    uint64_t room = (budget > used ? budget - used : 0) + dev->pool_count * ps;
    uint64_t peak = max_u64(v->fw_peak_cur, v->fw_peak_prev);
    uint64_t now = dv__outside_bytes(dev);
    uint64_t back = peak > now ? peak - now : 0;
    return absent <= UINT64_MAX / ps - 2 && room >= absent * ps + ps &&
           room - absent * ps - ps >= back;
}

void dv__recovery_risen(dv__dev_t *dev, dv__vbar_t *v, uint64_t old) {
    if (v->risen_from == DV__NO_PAGE) {
        v->risen_from = old;
    }
    dev->st.watermark_rises++;
    dv__log(DV_LOG_DEBUG, "vbar %p: watermark %llu -> %llu (recovery)",
            (void *)(uintptr_t)v->handle, (unsigned long long)old,
            (unsigned long long)v->watermark);
}
