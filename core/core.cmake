# SPDX-License-Identifier: Apache-2.0
# The core: backend-neutral devices, VBARs, policy and fences over base and
# the HAL header.
# Listed bottom-up: each file calls only files above it in this list
# (tools/layers.py checks there is no cycle).
set(DV_CORE_SOURCES
  core/validate.c
  core/budget.c
  core/fence.c
  core/recovery.c
  core/evict.c
  core/stream.c
  core/fault.c
  core/schedule_ring.c
  core/schedule_plan.c
  core/prefetch.c
  core/schedule.c
  core/schedule_use.c
  core/schedule_check.c
  core/framework.c
  core/graph_space.c
  core/graph_mem.c
  core/graph_record.c
  core/graph.c
  core/graph_scope.c
  core/vbar.c
  core/io.c
  core/hostbuf_pin.c
  core/hostbuf.c
  core/modelfile.c
  core/devbuf.c
  core/reader_ring.c
  core/reader.c
  core/check.c
  core/device.c)
