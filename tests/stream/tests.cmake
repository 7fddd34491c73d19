# SPDX-License-Identifier: Apache-2.0
# Streaming schedules (include/dynvram_stream.h). Included from
# tests/CMakeLists.txt; paths relative to tests/.
#   <backend>.stream           bytes, placement, plan, ring, wrap, skips: on
#                              every backend (dv_add_generic_suite)
#   <backend>.stream_badinput  every new call's bad input, state untouched
#   stream.host                host streams with pending work: slots never
#                              overwritten early, one fence per range
#   stream.inject              every HAL call of a streaming scenario fails
#                              in turn: no leak, invariants hold
add_library(dv_stream_util STATIC stream/stream_util.c)
target_link_libraries(dv_stream_util PUBLIC dv_test_support)
target_include_directories(dv_stream_util PUBLIC stream)

dv_add_generic_suite(stream stream/test_stream.c)
target_link_libraries(dv_test_stream PRIVATE dv_stream_util)

# Host streams with pending work, through the spying HAL (host only).
add_executable(dv_test_stream_host stream/test_stream_host.c stream/spy.c)
target_link_libraries(dv_test_stream_host PRIVATE dv_stream_util)
add_test(NAME stream.host COMMAND dv_test_stream_host --jobs 1)
set_tests_properties(stream.host PROPERTIES TIMEOUT 300)

dv_add_generic_suite(stream_inject stream/test_stream_inject.c)
dv_add_generic_suite(stream_badinput stream/test_stream_badinput.c)
target_link_libraries(dv_test_stream_badinput PRIVATE dv_stream_util)
