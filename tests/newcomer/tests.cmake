# SPDX-License-Identifier: Apache-2.0
# What a newcomer reads first, kept true by tests:
#   examples.quickstart   the README's C example (examples/quickstart.c) builds
#                         with the project's warnings and runs on the host
#                         backend: resident layers are copied only once
#   readme.check          the README's copy of it equals the file, its links
#                         name files of the repository, its tables are whole,
#                         its sample of `dynvram demo` is what the demo prints
#   tools.test_inventory  tools/test_inventory.py counts every suite here
# The whole first hour (clone, install, build against the install, the
# tool's bad options) is newcomer.sh, run by .ci/newcomer.sh: it builds a
# second tree, too slow for a CTest entry.
add_executable(dv_example_quickstart ${PROJECT_SOURCE_DIR}/examples/quickstart.c)
target_link_libraries(dv_example_quickstart PRIVATE dynvram)
add_test(NAME examples.quickstart
  COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:dv_example_quickstart>
          "-DEXPECT=step 1: [1-9][0-9]* resident \\([1-9][0-9]* copied\\), [1-9][0-9]* streamed\nstep 2: [1-9][0-9]* resident \\(0 copied\\)"
          -P ${CMAKE_CURRENT_LIST_DIR}/run_expect.cmake)
set_tests_properties(examples.quickstart PROPERTIES
  ENVIRONMENT "DYNVRAM_BACKEND=host" TIMEOUT 60)

find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND AND NOT CMAKE_CROSSCOMPILING)
  if(DV_BUILD_TOOLS)
    set(_dv_readme_tool --tool $<TARGET_FILE:dynvram_tool>)
  endif()
  add_test(NAME readme.check
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/readme_check.py
            ${_dv_readme_tool} ${PROJECT_SOURCE_DIR})
  set_tests_properties(readme.check PROPERTIES TIMEOUT 300)
  add_test(NAME tools.test_inventory
    COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tools/test_inventory.py
            ${PROJECT_BINARY_DIR})
  set_tests_properties(tools.test_inventory PROPERTIES TIMEOUT 300
    ENVIRONMENT "DV_CTEST=${CMAKE_CTEST_COMMAND}")
endif()
