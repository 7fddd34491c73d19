# SPDX-License-Identifier: Apache-2.0
#
# CUDA backend tests (included from tests/CMakeLists.txt; paths relative to
# tests/).
#   cuda.abi_check, cuda.abi_versions  hal/cuda/cuda_abi.h against the SDK's
#       cuda.h / cudaTypedefs.h. Need only the headers; skipped without them.
#   cuda.unavailable   no driver, a stub, an old or GPU-less driver: clean
#       DV_ERROR_BACKEND_UNAVAILABLE with the reason. Runs everywhere.
#   cuda-fake.*        the generic suites and test_cuda on the simulated
#       driver (tests/fakes/cuda/fake_cuda*.c, Linux): the backend's logic without a GPU;
#       cuda-fake.driver checks the simulated driver's own contract.
#   cuda.*             the generic suites and test_cuda on the real driver;
#       exit 77 (skipped) with the probe's reason when there is no GPU.

# ---- ABI checks ----
find_package(CUDAToolkit QUIET)
find_path(DV_CUDA_INCLUDE_DIR cuda.h
  HINTS ${CUDAToolkit_INCLUDE_DIRS} $ENV{CUDA_PATH}/include /usr/local/cuda/include)
if(DV_CUDA_INCLUDE_DIR AND EXISTS "${DV_CUDA_INCLUDE_DIR}/cudaTypedefs.h"
   AND CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  add_executable(dv_cuda_abi_check cuda/abi_check.c)
  target_include_directories(dv_cuda_abi_check PRIVATE ${PROJECT_SOURCE_DIR}
    ${PROJECT_SOURCE_DIR}/include)
  target_include_directories(dv_cuda_abi_check SYSTEM PRIVATE ${DV_CUDA_INCLUDE_DIR})
  add_test(NAME cuda.abi_check COMMAND dv_cuda_abi_check)
  add_test(NAME cuda.abi_versions COMMAND ${CMAKE_COMMAND}
    -DABI_HEADER=${PROJECT_SOURCE_DIR}/hal/cuda/cuda_abi.h
    -DTYPEDEFS=${DV_CUDA_INCLUDE_DIR}/cudaTypedefs.h -DPIN=12000
    -P ${CMAKE_CURRENT_SOURCE_DIR}/cuda/abi_versions.cmake)
else()
  message(STATUS "dynvram: no CUDA headers (cuda.h, cudaTypedefs.h): "
                 "the CUDA ABI check is skipped")
  add_test(NAME cuda.abi_check COMMAND ${CMAKE_COMMAND} -E echo
    "SKIP: CUDA SDK headers not found at configure time")
  set_tests_properties(cuda.abi_check PROPERTIES SKIP_REGULAR_EXPRESSION "SKIP:")
endif()

# ---- the backend on the real driver (skips without a GPU) ----
add_executable(dv_test_cuda cuda/test_cuda.c cuda/test_cuda_streams.c)
target_link_libraries(dv_test_cuda PRIVATE dv_test_support)
dv_add_backend_suite(cuda "DYNVRAM_BACKEND=cuda")
add_test(NAME cuda.backend COMMAND dv_test_cuda --jobs 1)
set_tests_properties(cuda.backend PROPERTIES ENVIRONMENT "DYNVRAM_BACKEND=cuda"
  SKIP_RETURN_CODE 77 TIMEOUT 300)

# ---- the simulated driver ----
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_library(dv_fake_cuda SHARED fakes/cuda/fake_cuda.c
    fakes/cuda/fake_cuda_mem.c fakes/cuda/fake_cuda_stream.c)
  target_include_directories(dv_fake_cuda PRIVATE ${PROJECT_SOURCE_DIR}
    ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(dv_fake_cuda PRIVATE Threads::Threads)
  set(DV_FAKE_CUDA_ENV "DYNVRAM_BACKEND=cuda"
    "DYNVRAM_CUDA_LIBRARY=$<TARGET_FILE:dv_fake_cuda>")
  dv_add_backend_suite(cuda-fake "${DV_FAKE_CUDA_ENV}")
  add_test(NAME cuda-fake.backend COMMAND dv_test_cuda --jobs 1)
  set_tests_properties(cuda-fake.backend PROPERTIES
    ENVIRONMENT "${DV_FAKE_CUDA_ENV}" SKIP_RETURN_CODE 77 TIMEOUT 300)
  # The simulated driver's own contract (handles looked up, dead ones never
  # reused, the entry points kept for later work).
  add_executable(dv_test_fake_cuda cuda/test_fake_cuda.c)
  target_include_directories(dv_test_fake_cuda PRIVATE ${PROJECT_SOURCE_DIR}
    ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(dv_test_fake_cuda PRIVATE dynvram_static
    PkgConfig::CRITERION)
  add_dependencies(dv_test_fake_cuda dv_fake_cuda)
  add_test(NAME cuda-fake.driver COMMAND dv_test_fake_cuda --jobs 1)
  set_tests_properties(cuda-fake.driver PROPERTIES
    ENVIRONMENT "${DV_FAKE_CUDA_ENV}" TIMEOUT 120)
endif()

# ---- unavailable drivers ----
add_executable(dv_test_cuda_unavailable cuda/test_cuda_unavailable.c)
target_include_directories(dv_test_cuda_unavailable PRIVATE ${PROJECT_SOURCE_DIR}
  ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(dv_test_cuda_unavailable PRIVATE dynvram_static
  PkgConfig::CRITERION)
set(DV_CUDA_UNAVAILABLE_ENV "")
if(TARGET dv_fake_cuda)
  list(APPEND DV_CUDA_UNAVAILABLE_ENV "DV_FAKE_CUDA_PATH=$<TARGET_FILE:dv_fake_cuda>")
endif()
find_library(DV_CUDA_STUB_LIBRARY cuda
  HINTS ${CUDAToolkit_LIBRARY_DIR}/stubs $ENV{CUDA_PATH}/lib64/stubs
        /usr/local/cuda/lib64/stubs NO_DEFAULT_PATH)
if(DV_CUDA_STUB_LIBRARY AND DV_CUDA_STUB_LIBRARY MATCHES "stubs")
  list(APPEND DV_CUDA_UNAVAILABLE_ENV "DV_CUDA_STUB_PATH=${DV_CUDA_STUB_LIBRARY}")
endif()
add_test(NAME cuda.unavailable COMMAND dv_test_cuda_unavailable --jobs 1)
set_tests_properties(cuda.unavailable PROPERTIES
  ENVIRONMENT "${DV_CUDA_UNAVAILABLE_ENV}" TIMEOUT 120)

# ---- two devices (issue 6): context binding across GPUs ----
#   cuda.multi       on the real driver; skipped (77) with fewer than 2 GPUs.
#   cuda-fake.multi  on the simulated driver with two devices.
# The generic two-device suite is cuda.multidev / cuda-fake.multidev above.
add_executable(dv_test_cuda_multi cuda/test_cuda_multi.c)
target_link_libraries(dv_test_cuda_multi PRIVATE dv_test_support)
add_test(NAME cuda.multi COMMAND dv_test_cuda_multi --jobs 1)
set_tests_properties(cuda.multi PROPERTIES ENVIRONMENT "DYNVRAM_BACKEND=cuda"
  SKIP_RETURN_CODE 77 TIMEOUT 300)
if(TARGET dv_fake_cuda)
  add_test(NAME cuda-fake.multi COMMAND dv_test_cuda_multi --jobs 1)
  set_tests_properties(cuda-fake.multi PROPERTIES
    ENVIRONMENT "${DV_FAKE_CUDA_ENV};DV_FAKE_CUDA_DEVICES=2"
    SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()

# ---- free memory from NVML (backend option nvml=1) ----
#   cuda.nvml       the real NVML on a GPU; skipped (77) without one.
#   cuda-fake.nvml  the simulated libcuda with the simulated NVML
#                   (fake_nvml.c): budgets, bus ids, missing or failing NVML.
add_executable(dv_test_cuda_nvml cuda/test_cuda_nvml.c)
target_link_libraries(dv_test_cuda_nvml PRIVATE dv_test_support ${CMAKE_DL_LIBS})
add_test(NAME cuda.nvml COMMAND dv_test_cuda_nvml --jobs 1)
set_tests_properties(cuda.nvml PROPERTIES ENVIRONMENT "DYNVRAM_BACKEND=cuda"
  SKIP_RETURN_CODE 77 TIMEOUT 120)
if(TARGET dv_fake_cuda)
  add_library(dv_fake_nvml SHARED cuda/fake_nvml.c)
  target_include_directories(dv_fake_nvml PRIVATE ${PROJECT_SOURCE_DIR}
    ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(dv_fake_nvml PRIVATE Threads::Threads)
  add_dependencies(dv_test_cuda_nvml dv_fake_nvml dv_fake_cuda)
  add_test(NAME cuda-fake.nvml COMMAND dv_test_cuda_nvml --jobs 1)
  set_tests_properties(cuda-fake.nvml PROPERTIES
    ENVIRONMENT "${DV_FAKE_CUDA_ENV};DV_FAKE_NVML=1;DYNVRAM_NVML_LIBRARY=$<TARGET_FILE:dv_fake_nvml>"
    SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
