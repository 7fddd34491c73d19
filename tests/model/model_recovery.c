/*
 * model_recovery.c - the tester's reference of watermark recovery (README,
 * "The policy, exactly": a lowered watermark rises again when memory is
 * free).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Per VBAR the model keeps what the rule reads: the pass count (a fault
 * starting below the previous fault of the VBAR starts a new pass), the
 * pass of the last loss to pressure or dv_vbar_evict, the framework peak of
 * this and the previous pass, the watermark before the current rises, the
 * backoff and the pass it ends, and whether the caller chose the
 * watermark. A fault at or above the watermark then rises (DV_OK, the
 * watermark moves to the end of the range, nothing is evicted) exactly
 * when: recovery is on; the watermark is not the caller's; no loss in this
 * pass or the previous one; the VBAR is not backing off; and the budget has
 * room for every absent page from the old watermark to the end of the
 * range, plus the framework memory expected back, plus one page.
 *
 * When a rule-checked populating fault (mt_loose_fault) evicted a page that
 * was both waiting to be reaped and an allowed victim, the model cannot tell
 * whether that VBAR lost a page to pressure. It marks the VBAR unsure; its
 * faults at or above the watermark are then checked by the rules (a rise
 * never on a caller's watermark, never evicting, only to the end of the
 * range) until a prioritize and two more passes make the state certain.
 */
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define NONE UINT64_MAX
#define BACKOFF_MAX 1024u

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

int mt_recovery_default(void) {
    const char *e = getenv("DYNVRAM_WATERMARK_RECOVERY");
    return !(e && (!strcmp(e, "0") || !strcmp(e, "off") || !strcmp(e, "OFF")));
}

void mt_rec_init(mt_vbar_t *v) {
    v->pass = 0;
    v->cursor = 0;
    v->lost_pass = NONE;
    v->rise_after = 0;
    v->risen_from = NONE;
    v->fw_peak_cur = 0;
    v->fw_peak_prev = 0;
    v->backoff = 0;
    v->wm_explicit = 0;
    v->unsure = 0;
}

void mt_rec_note_fault(mt_dev_t *d, mt_vbar_t *v, uint64_t first) {
    if (first < v->cursor) {
        int lost_last_pass = v->lost_pass == v->pass;
        v->pass++;
        v->fw_peak_prev = v->fw_peak_cur;
        v->fw_peak_cur = mt_outside(d);
        if (v->risen_from != NONE && !lost_last_pass) {
            v->backoff = 0; /* the rises of the last pass survived it */
            v->risen_from = NONE;
        }
        if (v->unsure && v->unsure_reset && v->pass >= v->unsure_pass + 2) {
            v->unsure = 0;
        }
    }
    v->cursor = first;
}

void mt_rec_note_loss(mt_vbar_t *v, uint64_t i) {
    v->lost_pass = v->pass;
    if (v->risen_from != NONE && i >= v->risen_from) {
        v->backoff = v->backoff ? v->backoff * 2 : 1;
        if (v->backoff > BACKOFF_MAX) {
            v->backoff = BACKOFF_MAX;
        }
        v->rise_after = v->pass + 1 + v->backoff;
        v->risen_from = NONE;
    }
}

void mt_rec_unsure(mt_vbar_t *v) {
    v->unsure = 1;
    v->unsure_reset = 0;
    v->unsure_pass = v->pass;
}

void mt_rec_note_framework(mt_dev_t *d) {
    for (int k = 0; k < d->nvb; k++) {
        mt_vbar_t *v = &d->vb[d->order[k]];
        v->fw_peak_cur = max_u64(v->fw_peak_cur, mt_outside(d));
    }
}

void mt_rec_reset(mt_vbar_t *v, int explicit_watermark) {
    v->wm_explicit = (uint8_t)explicit_watermark;
    v->risen_from = NONE;
    v->backoff = 0;
    v->rise_after = 0;
    v->unsure_reset = 1;
}

/* Would the rule let the watermark rise for [first, last]? */
static int may_rise(const mt_dev_t *d, const mt_vbar_t *v, uint64_t first,
                    uint64_t last) {
    int squeezed_lately = v->lost_pass != NONE && v->pass < v->lost_pass + 2;
    if (!d->recovery || v->wm_explicit || squeezed_lately ||
        v->pass < v->rise_after) {
        return 0;
    }
    uint64_t ps = d->ps, budget = mt_budget(d), used = mt_used(d);
    uint64_t absent = 0;
    for (uint64_t i = v->wm < first ? v->wm : first; i <= last; i++) {
        absent += !v->pg[i].resident;
    }
    uint64_t room = (budget > used ? budget - used : 0) + d->pool * ps;
    uint64_t peak = max_u64(v->fw_peak_cur, v->fw_peak_prev);
    uint64_t now = mt_outside(d);
    uint64_t back = peak > now ? peak - now : 0;
    return !(absent > UINT64_MAX / ps - 2 || room < absent * ps + ps ||
             room - absent * ps - ps < back);
}

dv_result_t mt_rec_predict(mt_world_t *w, mt_dev_t *d, int s, uint64_t first,
                           uint64_t last, int *exact) {
    mt_vbar_t *v = &d->vb[s];
    *exact = 1;
    if (v->unsure && d->recovery && !v->wm_explicit) {
        *exact = 0; /* a rise may or may not be tried */
        return DV_OFFLOADED;
    }
    if (!may_rise(d, v, first, last)) {
        d->st.faults_offloaded++;
        return DV_OFFLOADED;
    }
    uint64_t old = v->wm;
    v->wm = last + 1;
    dv_result_t r = mt_predict_fault_slow(w, d, s, first, last, 0, exact);
    if (!*exact || r != DV_OK) {
        v->wm = old;
        return r;
    }
    if (v->risen_from == NONE) {
        v->risen_from = old;
    }
    d->st.watermark_rises++;
    return DV_OK;
}

void mt_rec_loose(mt_world_t *w, mt_dev_t *d, const mt_dev_t *before, int s,
                  uint64_t first, uint64_t last, dv_result_t r, int tried) {
    mt_dev_t raised = *before;
    const mt_vbar_t *bv = &before->vb[s];
    if (r == DV_OK) {
        if (!d->recovery || bv->wm_explicit) {
            mt_fail(w, "recovery",
                    "a fault at or above the watermark "
                    "succeeded although %s",
                    d->recovery ? "the caller chose "
                                  "the watermark"
                                : "recovery is off");
        }
        raised.vb[s].wm = last + 1; /* the rise happens before the reap */
    }
    mt_loose_fault(w, d, &raised, s, first, last, r, 0, tried || r == DV_OK);
    mt_vbar_t *v = &d->vb[s];
    if (r == DV_OK) {
        v->wm = last + 1; /* only as far as the fault needs */
        if (v->risen_from == NONE) {
            v->risen_from = bv->wm;
        }
        d->st.watermark_rises++;
    } else {
        v->wm = bv->wm;
    }
}
