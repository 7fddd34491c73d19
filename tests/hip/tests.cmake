# SPDX-License-Identifier: Apache-2.0
#
# HIP: the backend runs against a simulated HIP runtime
# (tests/fakes/hip/fake_hip*.c, libdv_fake_hip.so) that exports the same C ABI as libamdhip64 on host
# memory; DYNVRAM_HIP_LIBRARY points the backend at it. Linux only (the
# simulator needs memfd and /proc/self/maps).
#
#   hip.sim.*           the generic suites on the simulator
#   hip.sim.defects.*   the same with every simulated ROCm defect switched on
#                       (DVSIM_HIP_DEFECTS=all) and every workaround of the
#                       backend on (DYNVRAM_HIP_WORKAROUNDS=all: on Linux the
#                       Windows-only reuse of reservations is off by default)
#   hip.backend         backend-specific checks (tests/hip/test_hip.c)
#   hip.fallback.*      the library-name search, through LD_LIBRARY_PATH
#                       (with libdv_fake_hip_broken.so, which is no HIP runtime)
#   hip.abi             hal/hip/hip_abi.h against <hip/hip_runtime_api.h>,
#                       registered only where that header exists
#                       (Debian: libamdhip64-dev)
if(DV_WITH_HIP AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(_dv_fake ${PROJECT_SOURCE_DIR}/tests/fakes/hip)
  add_library(dv_fake_hip SHARED ${_dv_fake}/fake_hip.c ${_dv_fake}/fake_hip_mem.c
                                 ${_dv_fake}/fake_hip_stream.c)
  target_include_directories(dv_fake_hip PRIVATE ${PROJECT_SOURCE_DIR}
                             ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(dv_fake_hip PRIVATE Threads::Threads)

  set(DV_HIP_SIM_ENV
    "DYNVRAM_BACKEND=hip"
    "DYNVRAM_HIP_LIBRARY=$<TARGET_FILE:dv_fake_hip>"
    "DVSIM_HIP_CAPACITY=1G")
  dv_add_backend_suite(hip.sim "${DV_HIP_SIM_ENV}")
  dv_add_backend_suite(hip.sim.defects
    "${DV_HIP_SIM_ENV};DVSIM_HIP_DEFECTS=all;DYNVRAM_HIP_WORKAROUNDS=all")

  add_executable(dv_test_hip ${CMAKE_CURRENT_LIST_DIR}/test_hip.c
    ${CMAKE_CURRENT_LIST_DIR}/test_hip_defects.c ${CMAKE_CURRENT_LIST_DIR}/hip_test.c)
  target_include_directories(dv_test_hip PRIVATE ${PROJECT_SOURCE_DIR}
                             ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(dv_test_hip PRIVATE dynvram_static dv_fake_hip
                        PkgConfig::CRITERION Threads::Threads)
  target_compile_definitions(dv_test_hip PRIVATE
    "DV_HIP_SIM_PATH=\"$<TARGET_FILE:dv_fake_hip>\"")
  add_test(NAME hip.backend COMMAND dv_test_hip --jobs 1)
  set_tests_properties(hip.backend PROPERTIES TIMEOUT 300)

  # Library-name fallback, found through LD_LIBRARY_PATH with
  # DYNVRAM_HIP_LIBRARY unset: a folder holding libamdhip64.so.6 (the
  # simulator), and one holding libamdhip64.so.5 (a library without the HIP
  # symbols, which must not stop the search) and the unversioned
  # libamdhip64.so (the simulator).
  add_library(dv_fake_hip_broken SHARED ${_dv_fake}/fake_hip_broken.c)
  target_include_directories(dv_fake_hip_broken PRIVATE ${PROJECT_SOURCE_DIR}
                             ${PROJECT_SOURCE_DIR}/include)
  set(DV_HIP_FB ${CMAKE_CURRENT_BINARY_DIR}/hip_fallback)
  add_custom_command(TARGET dv_fake_hip POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E make_directory ${DV_HIP_FB}/v6 ${DV_HIP_FB}/unversioned
    COMMAND ${CMAKE_COMMAND} -E create_symlink $<TARGET_FILE:dv_fake_hip>
            ${DV_HIP_FB}/v6/libamdhip64.so.6
    COMMAND ${CMAKE_COMMAND} -E create_symlink $<TARGET_FILE:dv_fake_hip>
            ${DV_HIP_FB}/unversioned/libamdhip64.so)
  add_custom_command(TARGET dv_fake_hip_broken POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E make_directory ${DV_HIP_FB}/unversioned
    COMMAND ${CMAKE_COMMAND} -E create_symlink $<TARGET_FILE:dv_fake_hip_broken>
            ${DV_HIP_FB}/unversioned/libamdhip64.so.5)
  add_dependencies(dv_test_hip dv_fake_hip_broken)
  foreach(pair "v6:libamdhip64.so.6" "unversioned:libamdhip64.so")
    string(REPLACE ":" ";" pair ${pair})
    list(GET pair 0 dir)
    list(GET pair 1 name)
    add_test(NAME hip.fallback.${dir}
             COMMAND dv_test_hip --jobs 1 --filter hip_fallback/*)
    set_tests_properties(hip.fallback.${dir} PROPERTIES TIMEOUT 60
      ENVIRONMENT "DV_HIP_EXPECT_LIBRARY=${name}")
    # Prepend, keeping the caller's path (the test binary's own libraries,
    # e.g. Criterion, may live there).
    if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.22)
      set_property(TEST hip.fallback.${dir} PROPERTY ENVIRONMENT_MODIFICATION
        "LD_LIBRARY_PATH=path_list_prepend:${DV_HIP_FB}/${dir}")
    else()
      set_property(TEST hip.fallback.${dir} APPEND PROPERTY ENVIRONMENT
        "LD_LIBRARY_PATH=${DV_HIP_FB}/${dir}:$ENV{LD_LIBRARY_PATH}")
    endif()
  endforeach()

  find_path(DV_HIP_INCLUDE_DIR hip/hip_runtime_api.h)
  if(DV_HIP_INCLUDE_DIR)
    add_executable(dv_hip_abi_check ${CMAKE_CURRENT_LIST_DIR}/abi_check.c)
    target_include_directories(dv_hip_abi_check SYSTEM PRIVATE ${DV_HIP_INCLUDE_DIR})
    target_include_directories(dv_hip_abi_check PRIVATE ${PROJECT_SOURCE_DIR}
                               ${PROJECT_SOURCE_DIR}/include)
    # The header serves several platforms; this selects AMD's C API.
    target_compile_definitions(dv_hip_abi_check PRIVATE __HIP_PLATFORM_AMD__)
    add_test(NAME hip.abi COMMAND dv_hip_abi_check)
  else()
    message(STATUS "HIP headers not found (libamdhip64-dev): hip.abi not registered")
  endif()
endif()
