# SPDX-License-Identifier: Apache-2.0
#
# tests/windows on a non-Windows build: hal/host/host.c over host_vm_win.c, compiled against
# a strict fake of the Win32 memory manager (tests/fakes/win: fake_win.c,
# include/windows.h)
# and tested with Criterion, so the Windows backend's placeholder logic runs
# in every CI (and under the sanitizers). The real thing is checked by
# .ci/mingw.sh (cross build, Wine) and by the smoke programs on Windows.
if(NOT WIN32)
  add_executable(dv_test_host_win
    ${CMAKE_CURRENT_LIST_DIR}/test_host_win.c
    ${PROJECT_SOURCE_DIR}/tests/fakes/win/fake_win.c
    ${PROJECT_SOURCE_DIR}/hal/host/host.c
    ${PROJECT_SOURCE_DIR}/hal/host/host_vm_win.c)
  # The fake <windows.h> comes first; this copy of host.c's getter and the
  # Windows VM layer are renamed so they do not collide with the POSIX ones
  # inside dynvram_static.
  target_include_directories(dv_test_host_win BEFORE PRIVATE
    ${PROJECT_SOURCE_DIR}/tests/fakes/win/include
    ${PROJECT_SOURCE_DIR}/tests/fakes/win ${CMAKE_CURRENT_LIST_DIR}
    ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include
    ${PROJECT_SOURCE_DIR}/base/include)
  target_compile_definitions(dv_test_host_win PRIVATE
    dv_hal_host=dv__test_hal_host_win dv__host_vm_ops=dv__test_host_vm_win)
  target_link_libraries(dv_test_host_win PRIVATE dynvram_static
    PkgConfig::CRITERION)
  add_test(NAME windows.host_win COMMAND dv_test_host_win --jobs 1)
  set_tests_properties(windows.host_win PROPERTIES TIMEOUT 300)
endif()
