/*
 * nvml_abi.h - the few NVML types and entry points the CUDA backend uses
 * (free memory counting other processes), so the build needs no SDK.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Taken from NVML's documented C ABI: every entry point returns an
 * nvmlReturn_t (0 = NVML_SUCCESS); nvmlMemory_t is the version-1 struct of
 * three unsigned long long fields, in this order. The library is opened at
 * run time (libnvidia-ml.so.1, nvml.dll).
 */
#ifndef DV_HAL_NVML_ABI_H
#define DV_HAL_NVML_ABI_H

typedef int dv_nvml_return;
typedef struct dv_nvml_device_st *dv_nvml_device;

typedef struct dv_nvml_memory {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} dv_nvml_memory;

#define DV_NVML_SUCCESS 0
/* NVML's bus id buffer size (NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE). */
#define DV_NVML_PCI_BUS_ID_LEN 32

/* X(name, return_type, parameter_list) */
#define DV_NVML_SYMBOLS(X)                                                     \
    X(nvmlInit_v2, dv_nvml_return, (void))                                     \
    X(nvmlShutdown, dv_nvml_return, (void))                                    \
    X(nvmlErrorString, const char *, (dv_nvml_return result))                  \
    X(nvmlDeviceGetHandleByPciBusId_v2, dv_nvml_return,                        \
      (const char *bus_id, dv_nvml_device *device))                            \
    X(nvmlDeviceGetMemoryInfo, dv_nvml_return,                                 \
      (dv_nvml_device device, dv_nvml_memory * memory))

#define DV__NVML_PFN(name, ret, params) typedef ret(*dv_nvml_pfn_##name) params;
DV_NVML_SYMBOLS(DV__NVML_PFN)
#undef DV__NVML_PFN

#endif /* DV_HAL_NVML_ABI_H */
