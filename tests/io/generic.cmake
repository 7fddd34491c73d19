# SPDX-License-Identifier: Apache-2.0
#
# Host I/O suites that run on every backend (registered with the generic
# suites by tests/CMakeLists.txt: host.io_*, cuda-fake.io_*, hip.sim.io_*,
# ze.sim.io_*, ... and cuda.io_* on a GPU). Included before the suites are
# built; paths relative to tests/.
#   io_hostbuf  host buffers: growth, registrations, truncate rules, copies
#   io_read     the reader: files to host buffers and to device memory
#   io_devbuf   device buffers in the budget
#   io_inject   every HAL call of an I/O scenario fails in turn
foreach(s io_hostbuf io_read io_devbuf io_inject)
  list(APPEND DV_GENERIC_SUITES ${s})
  set(DV_SUITE_SOURCES_${s} io/test_${s}.c io/iotest.c)
endforeach()
