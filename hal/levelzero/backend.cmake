# SPDX-License-Identifier: Apache-2.0
# The Level Zero backend: loads the Level Zero loader at run time and needs
# no oneAPI SDK to build.
list(APPEND DV_HAL_LEVELZERO_SOURCES hal/levelzero/ze_lib.c hal/levelzero/ze.c
  hal/levelzero/ze_stream.c)
list(APPEND DV_HAL_DEFS DV_HAVE_LEVELZERO=1)
list(APPEND DV_HAL_BACKENDS levelzero)
