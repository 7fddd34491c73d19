/*
 * cuda_load.h - loading the CUDA driver library and its entry points.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * dv__cu_load fills a table with every entry point of DV_CU_SYMBOLS, each
 * resolved through cuGetProcAddress at DV_CU_ABI_VERSION, then runs cuInit.
 * It keeps no global state, so the backend (once per process) and the tests
 * and benchmarks (for their own raw driver calls) each load their own table;
 * the driver behind them is the same.
 */
#ifndef DV_HAL_CUDA_LOAD_H
#define DV_HAL_CUDA_LOAD_H

#include "dynvram.h"
#include "cuda_abi.h"

typedef struct dv__cu_api {
#define DV__CU_FIELD(name, ver, ret, params) dv_cu_pfn_##name name;
    DV_CU_SYMBOLS(DV__CU_FIELD)
#undef DV__CU_FIELD
    void *lib;          /* dv__lib_open handle */
    int driver_version; /* e.g. 13000 */
    char path[256];     /* the library that was opened */
} dv__cu_api_t;

/* Library name tried when DYNVRAM_CUDA_LIBRARY is not set. */
const char *dv__cu_default_library(void);

/*
 * Open `path` (NULL = $DYNVRAM_CUDA_LIBRARY, else the default name), resolve
 * every symbol and call cuInit(0).
 * [out] api     zeroed first; filled on DV_OK.
 * [out] reason  on failure, why (library not found, driver too old, symbol
 *               missing, cuInit failed with its CUDA error name).
 * Results: DV_OK; DV_ERROR_BACKEND_UNAVAILABLE (anything above; the library
 * is closed again). Thread-safe (no shared state).
 */
dv_result_t dv__cu_load(const char *path, dv__cu_api_t *api, char *reason,
                        size_t reason_len);

/* Close the library of a loaded table (NULL-safe) and zero it. */
void dv__cu_unload(dv__cu_api_t *api);

/* "CUDA_ERROR_OUT_OF_MEMORY (2): out of memory" for `code`, through the
 * table's cuGetErrorName / cuGetErrorString when it has them. */
void dv__cu_describe(const dv__cu_api_t *api, int code, char *buf,
                     size_t len);

#endif /* DV_HAL_CUDA_LOAD_H */
