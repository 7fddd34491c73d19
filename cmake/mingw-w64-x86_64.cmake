# SPDX-License-Identifier: Apache-2.0
#
# Cross-compile dynvram for 64-bit Windows with mingw-w64 from Linux:
#   cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
# Debian/Ubuntu package: gcc-mingw-w64-x86-64. Set MINGW_PREFIX to use a
# toolchain under another triplet prefix (e.g. x86_64-w64-mingw32ucrt).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

if(DEFINED ENV{MINGW_PREFIX} AND NOT "$ENV{MINGW_PREFIX}" STREQUAL "")
  set(DV_MINGW_PREFIX "$ENV{MINGW_PREFIX}")
else()
  set(DV_MINGW_PREFIX x86_64-w64-mingw32)
endif()

# Debian ships the compiler as <prefix>-gcc (a -posix / -win32 pair behind
# alternatives); either thread model works: dynvram uses Win32 threads.
set(CMAKE_C_COMPILER ${DV_MINGW_PREFIX}-gcc)
set(CMAKE_RC_COMPILER ${DV_MINGW_PREFIX}-windres)
set(CMAKE_AR ${DV_MINGW_PREFIX}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${DV_MINGW_PREFIX}-ranlib CACHE FILEPATH "")

set(CMAKE_FIND_ROOT_PATH /usr/${DV_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Programs built here run under Wine, if at all.
find_program(DV_WINE NAMES wine64 wine PATHS /usr/lib/wine)
if(DV_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${DV_WINE})
endif()

# The DLL and programs must need nothing beyond Windows' own DLLs: link
# libgcc (emulated TLS for _Thread_local lives there) statically instead of
# importing libgcc_s_seh-1.dll.
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static-libgcc")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-static-libgcc")
