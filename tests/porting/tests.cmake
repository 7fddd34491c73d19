# SPDX-License-Identifier: Apache-2.0
#
# The porting kit (docs/porting.md) in every test run. CI also builds the
# template against the installed package and runs the installed runner on
# it (.ci/porting.sh); these entries keep both working between CI runs,
# under the sanitizers and clang too.
#   example.*             the generic suites on the template backend
#                         (examples/backend), built here from its sources
#                         with only the public headers on its include path
#   conformance.example   `dynvram conformance` on it: every suite passes
#   conformance.host      ... on the host backend loaded as a library
#   conformance.broken    ... on the template with a deliberate defect
#                         (DV_EXAMPLE_BREAK=map: map reports success and
#                         maps nothing): the runner must fail
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(_dv_ex ${PROJECT_SOURCE_DIR}/examples/backend)
  add_library(dv_example_backend MODULE ${_dv_ex}/example_backend.c
    ${_dv_ex}/example_mem.c ${_dv_ex}/example_stream.c)
  target_include_directories(dv_example_backend PRIVATE ${DV_PUBLIC_INCLUDE})
  target_link_libraries(dv_example_backend PRIVATE Threads::Threads)
  dv_add_backend_suite(example
    "DYNVRAM_BACKEND=$<TARGET_FILE:dv_example_backend>")
endif()

if(TARGET dv_example_backend AND TARGET dynvram_tool)
  set(_dv_run $<TARGET_FILE:dynvram_tool>|conformance|--suites-dir|$<TARGET_FILE_DIR:dv_test_conformance>)
  set(_dv_expect ${CMAKE_CURRENT_LIST_DIR}/expect.cmake)
  set(_dv_all "conformance +[0-9]+ +0 .*multidev +[0-9]+ +0 ")
  add_test(NAME conformance.example COMMAND ${CMAKE_COMMAND}
    "-DCOMMAND=${_dv_run}|--hal-library|$<TARGET_FILE:dv_example_backend>"
    -DRC=0 "-DEXPECT=${_dv_all}" "-DEXPECT2=result: PASS" -P ${_dv_expect})
  add_test(NAME conformance.host COMMAND ${CMAKE_COMMAND}
    "-DCOMMAND=${_dv_run}|--hal-library|$<TARGET_FILE:dv_hal_host_lib>"
    -DRC=0 "-DEXPECT=${_dv_all}" "-DEXPECT2=result: PASS" -P ${_dv_expect})
  # The deliberate defect must show: failed cases named, exit status 1.
  add_test(NAME conformance.broken COMMAND ${CMAKE_COMMAND}
    "-DCOMMAND=${CMAKE_COMMAND}|-E|env|DV_EXAMPLE_BREAK=map|${_dv_run}|--hal-library|$<TARGET_FILE:dv_example_backend>|--suite|conformance|--suite|multidev"
    -DRC=1 "-DEXPECT=conformance: [1-9][0-9]* failed"
    "-DEXPECT2=result: FAIL" -P ${_dv_expect})
  add_test(NAME conformance.usage COMMAND ${CMAKE_COMMAND}
    "-DCOMMAND=${_dv_run}|--hal-library|$<TARGET_FILE:dv_example_backend>|--suite|nosuch"
    -DRC=2 "-DEXPECT=--suite 'nosuch': not one of conformance policy" -P ${_dv_expect})
  set_tests_properties(conformance.example conformance.host
    conformance.broken conformance.usage PROPERTIES TIMEOUT 600)
endif()
