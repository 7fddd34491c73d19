# SPDX-License-Identifier: Apache-2.0
#
# tests/windows on a non-Windows build: hal/host/host_win.c compiled against
# a strict fake of the Win32 memory manager (fakewin.c, fakewin/windows.h)
# and tested with Criterion, so the Windows backend's placeholder logic runs
# in every CI (and under the sanitizers). The real thing is checked by
# .ci/mingw.sh (cross build, Wine) and by the smoke programs on Windows.
if(NOT WIN32)
  add_executable(dv_test_host_win
    ${CMAKE_CURRENT_LIST_DIR}/test_host_win.c
    ${CMAKE_CURRENT_LIST_DIR}/fakewin.c
    ${PROJECT_SOURCE_DIR}/hal/host/host_win.c)
  # The fake <windows.h> comes first; host_win.c's getter is renamed so it
  # does not collide with host_posix.c's inside dynvram_static.
  target_include_directories(dv_test_host_win BEFORE PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/fakewin ${CMAKE_CURRENT_LIST_DIR}
    ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
  target_compile_definitions(dv_test_host_win PRIVATE
    dv_hal_host=dv__test_hal_host_win)
  target_link_libraries(dv_test_host_win PRIVATE dynvram_static
    PkgConfig::CRITERION)
  add_test(NAME windows.host_win COMMAND dv_test_host_win --jobs 1)
  set_tests_properties(windows.host_win PROPERTIES TIMEOUT 300)
endif()
