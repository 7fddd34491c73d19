# SPDX-License-Identifier: Apache-2.0
#
# Allocation graphs (include/dynvram_graph.h). Included from
# tests/CMakeLists.txt; paths relative to tests/.
#   <backend>.graph*  generic: graph/generic.cmake adds them to
#       DV_GENERIC_SUITES, so they run on every backend.
#   host.graph_capture   the capture rule on the host backend's simulated
#       streams (dv_host_stream_set_capturing).
add_executable(dv_test_graph_capture graph/test_graph_capture.c
  graph/graph_util.c)
target_include_directories(dv_test_graph_capture PRIVATE graph)
target_link_libraries(dv_test_graph_capture PRIVATE dv_test_support)
add_test(NAME host.graph_capture COMMAND dv_test_graph_capture --jobs 1)
set_tests_properties(host.graph_capture PROPERTIES
  ENVIRONMENT "DYNVRAM_BACKEND=host" TIMEOUT 300)
