# SPDX-License-Identifier: Apache-2.0
# The HIP backend (AMD GPUs). Needs no ROCm SDK: hal/hip/hip_abi.h declares
# the slice of the ABI it uses and the runtime is loaded at run time.
list(APPEND DV_HAL_HIP_SOURCES
  hal/hip/hip.c
  hal/hip/hip_lib.c
  hal/hip/hip_vmm.c)
if(WIN32)
  list(APPEND DV_HAL_HIP_SOURCES hal/hip/hip_os_win.c)
else()
  list(APPEND DV_HAL_HIP_SOURCES hal/hip/hip_os_posix.c)
endif()
list(APPEND DV_HAL_DEFS DV_HAVE_HIP=1)
list(APPEND DV_HAL_BACKENDS hip)
