# SPDX-License-Identifier: Apache-2.0
# The base layer: OS shims (one file per platform), errors and log, the
# backends' native error record, the handle table.
set(DV_BASE_SOURCES
  base/error.c
  base/native.c
  base/handle.c
  base/options.c)
if(WIN32)
  list(APPEND DV_BASE_SOURCES base/os_win.c)
else()
  list(APPEND DV_BASE_SOURCES base/os_posix.c)
endif()
