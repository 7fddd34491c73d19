# SPDX-License-Identifier: Apache-2.0
#
# Level Zero: the backend runs against a simulated Level Zero *driver*
# (tests/fakes/levelzero/fake_ze*.c, libdv_fake_ze.so) that the real Level
# Zero loader loads through ZE_ENABLE_ALT_DRIVERS, so every call goes
# through the loader
# (and, for ze.validation.*, through its validation layer). Needs the
# Level Zero headers to build the simulation (Debian: libze-dev) and the
# loader to run (libze1); without the loader every test here skips (77).
#
# Environment of the suites:
#   ZES_ENABLE_SYSMAN=1     the driver answers Sysman on core handles, so the
#                           backend reports free memory (see hal/levelzero/ze.c)
#   DVSIM_ZE_CAPACITY=1G    the simulated device's memory (like the host
#                           backend's 1 GiB in the suites)
#   DVSIM_ZE_STRICT=1       (ze.backend only) zeContextDestroy aborts on leaked
#                           driver objects; not for the generic suites, whose
#                           injected release failures leak on purpose
# DVSIM_ZE_EVENT_DELAY=N (events report NOT_READY N times before their
# signal shows) is used by test_ze.c only: the generic suites assume fences
# recorded on an idle stream complete at once.
if(DV_WITH_LEVELZERO AND UNIX AND NOT APPLE)
  find_path(DV_ZE_INCLUDE_DIR level_zero/ze_api.h)
  find_library(DV_ZE_LOADER NAMES ze_loader libze_loader.so.1)
  if(NOT DV_ZE_INCLUDE_DIR)
    message(STATUS "Level Zero headers not found: Level Zero simulation tests not built")
  else()
    set(_dv_fake ${PROJECT_SOURCE_DIR}/tests/fakes/levelzero)
    add_library(dv_fake_ze SHARED ${_dv_fake}/fake_ze.c ${_dv_fake}/fake_ze_mem.c
                                  ${_dv_fake}/fake_ze_queue.c)
    target_include_directories(dv_fake_ze PRIVATE ${DV_ZE_INCLUDE_DIR})
    target_link_libraries(dv_fake_ze PRIVATE Threads::Threads)

    set(DV_ZE_SIM_ENV
      "DYNVRAM_BACKEND=levelzero"
      "ZE_ENABLE_ALT_DRIVERS=$<TARGET_FILE:dv_fake_ze>"
      "ZES_ENABLE_SYSMAN=1"
      "DVSIM_ZE_CAPACITY=1G")
    dv_add_backend_suite(ze.sim "${DV_ZE_SIM_ENV}")

    # The loader's validation layer checks every argument and handle.
    if(DV_ZE_LOADER)
      get_filename_component(DV_ZE_LIBDIR ${DV_ZE_LOADER} DIRECTORY)
      find_library(DV_ZE_VALIDATION_LAYER NAMES ze_validation_layer
                   libze_validation_layer.so.1 HINTS ${DV_ZE_LIBDIR})
    endif()
    if(DV_ZE_VALIDATION_LAYER)
      dv_add_backend_suite(ze.validation "${DV_ZE_SIM_ENV};ZE_ENABLE_VALIDATION_LAYER=1;ZE_ENABLE_PARAMETER_VALIDATION=1")
    else()
      message(STATUS "Level Zero validation layer not found: ze.validation.* not registered")
    endif()

    # Backend-specific checks. Criterion's own main: every test probes the
    # backend itself (and skips when the loader is absent), in a fresh
    # process, so a test may change the environment before the first load.
    add_executable(dv_test_ze ${CMAKE_CURRENT_LIST_DIR}/test_ze.c)
    target_include_directories(dv_test_ze PRIVATE ${PROJECT_SOURCE_DIR}
                               ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(dv_test_ze PRIVATE dynvram_static PkgConfig::CRITERION
      ${CMAKE_DL_LIBS})
    add_dependencies(dv_test_ze dv_fake_ze)
    add_test(NAME ze.backend COMMAND dv_test_ze --jobs 1)
    set_tests_properties(ze.backend PROPERTIES TIMEOUT 300 ENVIRONMENT
      "ZE_ENABLE_ALT_DRIVERS=$<TARGET_FILE:dv_fake_ze>;ZES_ENABLE_SYSMAN=1;DVSIM_ZE_CAPACITY=1G;DVSIM_ZE_STRICT=1")
    if(DV_ZE_VALIDATION_LAYER)
      add_test(NAME ze.backend.validation COMMAND dv_test_ze --jobs 1)
      set_tests_properties(ze.backend.validation PROPERTIES TIMEOUT 300 ENVIRONMENT
        "ZE_ENABLE_ALT_DRIVERS=$<TARGET_FILE:dv_fake_ze>;ZES_ENABLE_SYSMAN=1;DVSIM_ZE_CAPACITY=1G;DVSIM_ZE_STRICT=1;ZE_ENABLE_VALIDATION_LAYER=1;ZE_ENABLE_PARAMETER_VALIDATION=1")
    endif()

    # ABI check: our ze_abi.h against the real headers (compile-time).
    add_executable(dv_ze_abi_check ${CMAKE_CURRENT_LIST_DIR}/abi_check.c)
    target_include_directories(dv_ze_abi_check PRIVATE ${DV_ZE_INCLUDE_DIR}
                               ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
    add_test(NAME ze.abi COMMAND dv_ze_abi_check)
  endif()
endif()
