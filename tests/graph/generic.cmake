# SPDX-License-Identifier: Apache-2.0
# Generic suites of the allocation graphs (include/dynvram_graph.h): they
# run on every backend, like tests/core's (tests/CMakeLists.txt), with the
# helpers of graph_util.c. Paths relative to tests/.
foreach(s graph graph_pressure graph_random graph_inject graph_badinput)
  list(APPEND DV_GENERIC_SUITES ${s})
  set(DV_SUITE_SOURCES_${s} graph/test_${s}.c graph/graph_util.c)
endforeach()
