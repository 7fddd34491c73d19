# SPDX-License-Identifier: Apache-2.0
# The CUDA backend: needs no CUDA SDK; libcuda is opened at run time.
list(APPEND DV_HAL_CUDA_SOURCES
  hal/cuda/cuda.c
  hal/cuda/cuda_ctx.c
  hal/cuda/cuda_load.c
  hal/cuda/cuda_mem.c
  hal/cuda/cuda_nvml.c
  hal/cuda/cuda_stream.c
  hal/cuda/cuda_stream_registry.c)
list(APPEND DV_HAL_DEFS DV_HAVE_CUDA=1)
list(APPEND DV_HAL_BACKENDS cuda)
