/*
 * model_fuzz.c - the model-based tester as a libFuzzer target
 * (dv_model_fuzz): the input's bytes make every choice of one
 * single-threaded sequence (which devices, options, calls, arguments); the
 * sequence ends when they run out or after 400 calls. A broken check
 * prints the report and aborts, so libFuzzer keeps the input.
 * SPDX-License-Identifier: Apache-2.0
 *
 * DV_MODEL_DEAD_HANDLES=0 in the environment leaves out dead and junk
 * handles (default: on); DV_MODEL_VERBOSE=1 prints every call. Inputs that
 * make a given seed's calls: dv_model --record. Run: see
 * tests/model/README.md.
 */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static mt_world_t w;
    mt_world_init(&w, 0);
    mt_src_bytes(&w.src, data, size);
    w.fuzz = 1;
    w.clear_check = 1;
    w.max_calls = 400;
    const char *dead = getenv("DV_MODEL_DEAD_HANDLES");
    w.dead_handles = !(dead && dead[0] == '0');
    const char *verbose = getenv("DV_MODEL_VERBOSE");
    w.verbose = verbose && verbose[0] == '1';
    snprintf(
        w.repro, sizeof(w.repro),
        "dv_model_fuzz <the input libFuzzer saved> (DV_MODEL_DEAD_HANDLES=%d)",
        w.dead_handles);
    mt_run_sequence(&w);
    return 0;
}
