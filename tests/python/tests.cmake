# SPDX-License-Identifier: Apache-2.0
# The Python suite: pytest on the host backend against the package that
# bindings/python builds into ${PROJECT_BINARY_DIR}/python. Needs Debian's
# python3-dev (to build the extension), python3-pytest and python3-numpy;
# run_pytest.py reports a missing piece as a skip (exit 77) and an empty
# collection as a failure.
if(NOT DEFINED DV_PYTHON)
  if(EXISTS /usr/bin/python3)
    set(DV_PYTHON /usr/bin/python3 CACHE FILEPATH "Python interpreter for the bindings")
  else()
    find_program(DV_PYTHON NAMES python3 python)
  endif()
endif()
if(DV_PYTHON AND NOT WIN32)
  set(_dv_py_env
    "PYTHONPATH=${PROJECT_BINARY_DIR}/python"
    "DV_FAKE_CUDART=${PROJECT_BINARY_DIR}/bindings/interpose/libdv_fake_cudart.so"
    "DYNVRAM_BACKEND=host"
    "DYNVRAM_LOG=warning")
  # The simulated libcuda and NVML (tests/cuda), for the comfy_aimdo tests
  # of the CUDA path (interposer, nvml_pressure) without a GPU.
  if(TARGET dv_fake_cuda AND TARGET dv_fake_nvml)
    list(APPEND _dv_py_env "DV_FAKE_CUDA=$<TARGET_FILE:dv_fake_cuda>"
         "DV_FAKE_NVML_LIB=$<TARGET_FILE:dv_fake_nvml>")
  endif()
  if(DV_SANITIZE)
    # The extension is instrumented but the interpreter is not: the ASan
    # runtime has to be loaded first. CPython's own allocations are not
    # freed at exit, so leak checking is off for this test.
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                    OUTPUT_VARIABLE _dv_asan OUTPUT_STRIP_TRAILING_WHITESPACE)
    # Torch's own native code is not sanitizer-clean under a preloaded
    # ASan runtime: its CPU tests run in the plain build only.
    list(APPEND _dv_py_env "LD_PRELOAD=${_dv_asan}" "ASAN_OPTIONS=detect_leaks=0"
         "DV_TEST_NO_TORCH=1")
  endif()
  add_test(NAME python.pytest
           COMMAND ${DV_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/run_pytest.py)
  set_tests_properties(python.pytest PROPERTIES
    ENVIRONMENT "${_dv_py_env}" SKIP_RETURN_CODE 77 TIMEOUT 300)
  # The README's install of dynvram + the comfy_aimdo drop-in into a venv,
  # and the drop-in and a stand-in original replacing each other.
  add_test(NAME python.comfy_install
           COMMAND ${DV_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/run_pytest.py
                   -k test_readme_install_and_replacement)
  set_tests_properties(python.comfy_install PROPERTIES
    ENVIRONMENT "${_dv_py_env};DV_TEST_INSTALL=1" SKIP_RETURN_CODE 77
    TIMEOUT 900)
  # The comfy_aimdo drop-in against the native API on the host backend
  # (report only: CI timings are noisy; the 1 us target is a GPU one).
  add_test(NAME python.comfy_bench
           COMMAND ${DV_PYTHON} ${PROJECT_SOURCE_DIR}/bench/comfy_bench.py
                   --backend host --iterations 20000 --steps 3
                   --max-extra-ns 0 --out ${PROJECT_BINARY_DIR}/comfy_bench)
  set_tests_properties(python.comfy_bench PROPERTIES
    ENVIRONMENT "${_dv_py_env}" TIMEOUT 300)
  add_test(NAME python.pyfault_bench
           COMMAND ${DV_PYTHON} ${PROJECT_SOURCE_DIR}/bench/pyfault.py
                   --backend host --iterations 20000 --max-ns 0)
  set_tests_properties(python.pyfault_bench PROPERTIES
    ENVIRONMENT "${_dv_py_env}" TIMEOUT 120)
  if(NOT DV_SANITIZE)
    # bench/recovery.py on the host backend: the rule, not the timing (a
    # squeezed model is whole again with recovery, half offloaded without).
    add_test(NAME bench.recovery.host
             COMMAND ${DV_PYTHON} ${PROJECT_SOURCE_DIR}/bench/recovery.py --dry-run)
    set_tests_properties(bench.recovery.host PROPERTIES
      ENVIRONMENT "${_dv_py_env}" TIMEOUT 120)
    # bench/offload.py (W1) on the host backend: every mode runs, streaming
    # copies exactly its streamed weights and spreads them.
    add_test(NAME bench.offload.host
             COMMAND ${DV_PYTHON} ${PROJECT_SOURCE_DIR}/bench/offload.py --dry-run
                     --modes resident,naive,prefix,dynvram,dynvram-norec,dynvram-stream,dynvram-stream-norec,hand,hand-prefix)
    set_tests_properties(bench.offload.host PROPERTIES
      ENVIRONMENT "${_dv_py_env}" TIMEOUT 120)
    # bench/w2.py (two models taking turns) on the host backend: after the
    # first turn every switch copies no more than Belady's MIN.
    add_test(NAME bench.w2.host
             COMMAND ${DV_PYTHON} ${PROJECT_SOURCE_DIR}/bench/w2.py --dry-run
                     --modes dynvram,dynvram-norec,dynvram-stream,dynvram-stream-norec)
    set_tests_properties(bench.w2.host PROPERTIES
      ENVIRONMENT "${_dv_py_env}" TIMEOUT 120)
    # bench/w1_real.py with a small Llama-shaped torch model on the host
    # backend (transformers is not needed): tied and untied, logits equal.
    add_test(NAME bench.w1_real.host
             COMMAND ${DV_PYTHON} ${PROJECT_SOURCE_DIR}/bench/w1_real.py --dry-run)
    set_tests_properties(bench.w1_real.host PROPERTIES
      ENVIRONMENT "${_dv_py_env}" TIMEOUT 120)
  endif()
endif()
