# SPDX-License-Identifier: Apache-2.0
# cmake -DPROGRAM=path -DEXPECT=regex -P run_expect.cmake
# Runs PROGRAM; passes only if it exits 0 AND its output matches EXPECT
# (CTest's PASS_REGULAR_EXPRESSION alone would ignore the exit status).
execute_process(COMMAND ${PROGRAM} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "${PROGRAM}: output does not match '${EXPECT}'")
endif()
