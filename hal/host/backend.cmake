# SPDX-License-Identifier: Apache-2.0
# The host backend is always built: host.c over the platform's virtual
# memory layer (host_vm.h).
list(APPEND DV_HAL_HOST_SOURCES hal/host/host.c hal/host/host_stream.c
  hal/host/host_env.c hal/host/host_reg.c)
if(WIN32)
  list(APPEND DV_HAL_HOST_SOURCES hal/host/host_vm_win.c)
else()
  list(APPEND DV_HAL_HOST_SOURCES hal/host/host_vm_posix.c)
endif()
list(APPEND DV_HAL_BACKENDS host)
