# SPDX-License-Identifier: Apache-2.0
# cmake -DPROGRAM=path -DARGS=arg -DEXPECT=regex -P run_example.cmake
# Runs PROGRAM ARGS; passes only if it exits 0 AND its output matches EXPECT.
execute_process(COMMAND ${PROGRAM} ${ARGS} RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "${PROGRAM}: output does not match '${EXPECT}'")
endif()
