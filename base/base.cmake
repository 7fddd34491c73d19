# SPDX-License-Identifier: Apache-2.0
# The base layer: OS shims (one file per platform: os_*, threads in
# os_thread_*, files and address space in os_file_*), errors and log, the
# backends' native error record, the handle table.
set(DV_BASE_SOURCES
  base/error.c
  base/native.c
  base/handle.c
  base/options.c)
if(WIN32)
  list(APPEND DV_BASE_SOURCES base/os_win.c base/os_thread_win.c
       base/os_file_win.c)
else()
  list(APPEND DV_BASE_SOURCES base/os_posix.c base/os_thread_posix.c
       base/os_file_posix.c)
endif()
