# SPDX-License-Identifier: Apache-2.0
#
# Host I/O suites of the host backend only (the generic ones are in
# generic.cmake):
#   host.io_file  model files on a real file system and the real page cache:
#                 mapping, bounce (RSS falls, addresses stay valid), mark
#                 cold (cached pages dropped, seen with mincore), UTF-8
#                 paths, empty files, native handles that are no readable
#                 regular file refused; the host backend's strict
#                 registration table.
if(NOT WIN32)
  add_executable(dv_test_io_file ${CMAKE_CURRENT_LIST_DIR}/test_io_file.c
    ${CMAKE_CURRENT_LIST_DIR}/iotest.c)
  target_link_libraries(dv_test_io_file PRIVATE dv_test_support)
  add_test(NAME host.io_file COMMAND dv_test_io_file --jobs 1)
  # Files go next to the build, on a disk-backed file system (a tmpfs
  # would keep "cold" pages in memory).
  set_tests_properties(host.io_file PROPERTIES TIMEOUT 300
    ENVIRONMENT "DYNVRAM_BACKEND=host;TMPDIR=${CMAKE_CURRENT_BINARY_DIR}")
endif()

# examples/load_model.c (the README's "Host I/O" example) builds with the
# project's warnings and reads a real file (this folder's tests.cmake) into
# device memory and a pinned host buffer on the host backend.
add_executable(dv_example_load_model ${PROJECT_SOURCE_DIR}/examples/load_model.c)
target_link_libraries(dv_example_load_model PRIVATE dynvram)
add_test(NAME examples.load_model
  COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:dv_example_load_model>
          -DARGS=${CMAKE_CURRENT_LIST_DIR}/tests.cmake
          "-DEXPECT=read [1-9][0-9]* bytes to the device and to a pinned host buffer \\(1 registration\\): identical"
          -P ${CMAKE_CURRENT_LIST_DIR}/run_example.cmake)
set_tests_properties(examples.load_model PROPERTIES
  ENVIRONMENT "DYNVRAM_BACKEND=host" TIMEOUT 60)
