# SPDX-License-Identifier: Apache-2.0
# cmake "-DCOMMAND=prog|arg|..." -DRC=n -DEXPECT=regex [-DEXPECT2=regex]
#       -P expect.cmake
# Runs COMMAND (its words separated by |, so that add_test keeps them one
# argument); passes only if it exits with RC and its output (stdout and
# stderr together) matches EXPECT (and EXPECT2).
string(REPLACE "|" ";" cmd "${COMMAND}")
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE out)
message("${out}")
if(NOT rc STREQUAL "${RC}")
  message(FATAL_ERROR "exit status ${rc}, expected ${RC}")
endif()
foreach(re EXPECT EXPECT2)
  if(DEFINED ${re} AND NOT out MATCHES "${${re}}")
    message(FATAL_ERROR "the output does not match '${${re}}'")
  endif()
endforeach()
