# SPDX-License-Identifier: Apache-2.0
#
# The model-based tester and the tools that run the Criterion suites under
# ThreadSanitizer and valgrind (included from tests/CMakeLists.txt; paths
# relative to tests/). See tests/model/README.md.
#   dv_model          the random API-sequence tester (host backend)
#   dv_model_fuzz     the same model driven by libFuzzer (clang only)
#   dv_crshim_<suite> tests/core/test_<suite>.c run in-process by a minimal
#                     Criterion stand-in (Criterion's forking runner does not
#                     start under TSan and hides valgrind errors in workers)
#   model.*           quick CTest runs: a fixed seed set, threads, the shim,
#                     the fuzzer's corpus

set(DV_MODEL_SOURCES
  model/model_core.c model/model_observe.c model/model_policy.c
  model/model_ops.c model/model_devops.c model/model_bad.c model/model_seq.c
  model/model_recovery.c model/model_steps.c model/model_graph.c
  model/model_threads.c model/model_io.c model/model_iocheck.c
  model/model_ioread.c model/model_sched.c model/model_file.c)

add_executable(dv_model model/model_main.c ${DV_MODEL_SOURCES})
target_include_directories(dv_model PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(dv_model PRIVATE dynvram_static Threads::Threads)

# Dead and junk handles included (the default), messages cleared on success.
add_test(NAME model.host COMMAND dv_model --seed 1 --sequences 60 --calls 1000
         --clear-check 1 --quiet)
add_test(NAME model.host.long COMMAND dv_model --seed 5000 --sequences 4
         --calls 20000 --clear-check 1 --quiet)
add_test(NAME model.threads COMMAND dv_model --seed 1 --sequences 3
         --calls 4000 --threads 4 --clear-check 1 --quiet)
set_tests_properties(model.host model.host.long model.threads PROPERTIES
                     TIMEOUT 300)

# ---- the Criterion suites, in-process ---------------------------------------
add_library(dv_crshim STATIC model/crshim/crshim.c support/inject.c
            support/testdev.c)
target_include_directories(dv_crshim BEFORE PUBLIC
  ${CMAKE_CURRENT_SOURCE_DIR}/model/crshim)
target_include_directories(dv_crshim PUBLIC support ${PROJECT_SOURCE_DIR}
  ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(dv_crshim PUBLIC dynvram_static Threads::Threads)
foreach(s conformance policy recovery inject badinput handles threads multidev
          host)
  add_executable(dv_crshim_${s} core/test_${s}.c)
  target_link_libraries(dv_crshim_${s} PRIVATE dv_crshim)
endforeach()
# The host I/O suites too (their threads run under TSan in CI).
foreach(s io_hostbuf io_read io_devbuf io_inject)
  add_executable(dv_crshim_${s} io/test_${s}.c io/iotest.c)
  target_link_libraries(dv_crshim_${s} PRIVATE dv_crshim)
endforeach()
# The stand-in itself runs in CI: one suite through it.
add_test(NAME model.crshim COMMAND dv_crshim_badinput)
set_tests_properties(model.crshim PROPERTIES SKIP_RETURN_CODE 77)

# ---- libFuzzer (clang with -fsanitize=fuzzer) ----------------------------------
if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND NOT WIN32)
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS -fsanitize=fuzzer)
  set(CMAKE_REQUIRED_LINK_OPTIONS -fsanitize=fuzzer)
  check_c_source_compiles("#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }"
    DV_HAVE_LIBFUZZER)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
endif()
if(DV_HAVE_LIBFUZZER)
  # The library once more, instrumented for the fuzzer's coverage: the
  # same sources and settings as the layer targets of the top CMakeLists.
  set(dv_fuzz_lib_sources ${PROJECT_SOURCE_DIR}/hal/registry.c)
  foreach(f ${DV_BASE_SOURCES} ${DV_CORE_SOURCES})
    list(APPEND dv_fuzz_lib_sources ${PROJECT_SOURCE_DIR}/${f})
  endforeach()
  foreach(b ${DV_HAL_BACKENDS})
    string(TOUPPER ${b} B)
    foreach(f ${DV_HAL_${B}_SOURCES})
      if(IS_ABSOLUTE ${f})
        list(APPEND dv_fuzz_lib_sources ${f})
      else()
        list(APPEND dv_fuzz_lib_sources ${PROJECT_SOURCE_DIR}/${f})
      endif()
    endforeach()
  endforeach()
  add_library(dv_model_fuzz_lib STATIC ${dv_fuzz_lib_sources})
  target_include_directories(dv_model_fuzz_lib PUBLIC
    ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/base/include
    ${PROJECT_SOURCE_DIR})
  target_compile_definitions(dv_model_fuzz_lib PRIVATE ${DV_LAYER_DEFS}
    ${DV_HAL_DEFS})
  target_compile_options(dv_model_fuzz_lib PRIVATE -fsanitize=fuzzer-no-link)
  target_link_libraries(dv_model_fuzz_lib PUBLIC ${DV_SYSTEM_LIBS})
  add_executable(dv_model_fuzz model/model_fuzz.c ${DV_MODEL_SOURCES})
  target_compile_options(dv_model_fuzz PRIVATE -fsanitize=fuzzer-no-link)
  target_link_options(dv_model_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_libraries(dv_model_fuzz PRIVATE dv_model_fuzz_lib Threads::Threads)
  # Every input of the committed corpus once (a regression run).
  add_test(NAME model.fuzz.corpus COMMAND dv_model_fuzz -runs=0
           ${CMAKE_CURRENT_SOURCE_DIR}/model/corpus)
endif()
