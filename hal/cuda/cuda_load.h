/*
 * cuda_load.h - loading the CUDA driver library and its entry points.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * dv__cu_load fills a table with every entry point of DV_CU_SYMBOLS, each
 * resolved through cuGetProcAddress at DV_CU_ABI_VERSION, then runs cuInit
 * (base/dynlib.h does the loading; this file gives it the CUDA steps).
 * dv__cu_load keeps no state, so the tests and benchmarks (for their own
 * raw driver calls) each load their own table; the backend loads its table
 * once per process with dv__cu_load_once. The driver behind them is the
 * same.
 */
#ifndef DV_HAL_CUDA_LOAD_H
#define DV_HAL_CUDA_LOAD_H

#include "dynvram.h"
#include "base/dynlib.h"
#include "cuda_abi.h"

typedef struct dv__cu_api {
#define DV__CU_FIELD(name, ver, ret, params) dv_cu_pfn_##name name;
    DV_CU_SYMBOLS(DV__CU_FIELD)
#undef DV__CU_FIELD
    void *lib;          /* dv__lib_open handle */
    int driver_version; /* e.g. 13000 */
    char path[256];     /* the library that was opened */
} dv__cu_api_t;

/*
 * Open `path` (NULL = $DYNVRAM_CUDA_LIBRARY, else the default name), resolve
 * every symbol and call cuInit(0).
 * [out] api     zeroed first; filled on DV_OK.
 * [out] reason  on failure, why (library not found, driver too old, symbol
 *               missing, cuInit failed with its CUDA error name), in the
 *               words of base/dynlib.h; on success the library and the
 *               driver's version.
 * Results: DV_OK; DV_ERROR_BACKEND_UNAVAILABLE (anything above; the library
 * is closed again). Thread-safe (no shared state).
 */
dv_result_t dv__cu_load(const char *path, dv__cu_api_t *api, char *reason,
                        size_t reason_len);

/*
 * The same, once per `dl` (DV__DYNLIB_INIT): the first call loads, every
 * later one returns its outcome; the reason is dl->reason. For the
 * backend's process-wide table. Thread-safe.
 */
dv_result_t dv__cu_load_once(dv__dynlib_t *dl, dv__cu_api_t *api);

/* Close the library of a loaded table (NULL-safe) and zero it. */
void dv__cu_unload(dv__cu_api_t *api);

/* "CUDA_ERROR_OUT_OF_MEMORY (2): out of memory" for `code`, through the
 * table's cuGetErrorName / cuGetErrorString when it has them. */
void dv__cu_describe(const dv__cu_api_t *api, int code, char *buf,
                     size_t len);

#endif /* DV_HAL_CUDA_LOAD_H */
