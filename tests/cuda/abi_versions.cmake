# SPDX-License-Identifier: Apache-2.0
#
# cmake -DABI_HEADER=hal/cuda/cuda_abi.h -DTYPEDEFS=<sdk>/cudaTypedefs.h
#       -DPIN=12000 -P abi_versions.cmake
#
# abi_check.c proves each prototype in DV_CU_SYMBOLS equals the SDK typedef
# PFN_<name>_v<version> for the version written in the entry. This script
# proves that version is the right one: the newest ABI of that symbol at or
# below the pinned version, which is what cuGetProcAddress(name, PIN) returns.
# Per-thread-stream variants (_ptsz, _ptds) are not ours: we ask for legacy.
file(READ "${ABI_HEADER}" abi)
file(READ "${TYPEDEFS}" tdefs)
string(REGEX MATCHALL "X\\((cu[A-Za-z0-9_]+), ([0-9]+)," entries "${abi}")
list(LENGTH entries n)
if(n EQUAL 0)
  message(FATAL_ERROR "no DV_CU_SYMBOLS entries found in ${ABI_HEADER}")
endif()
set(bad 0)
foreach(e ${entries})
  string(REGEX REPLACE "X\\((cu[A-Za-z0-9_]+), ([0-9]+)," "\\1;\\2" p "${e}")
  list(GET p 0 name)
  list(GET p 1 ver)
  string(REGEX MATCHALL "PFN_${name}_v([0-9]+)\\)" found "${tdefs}")
  set(best 0)
  foreach(f ${found})
    string(REGEX REPLACE "PFN_${name}_v([0-9]+)\\)" "\\1" v "${f}")
    if(v LESS_EQUAL PIN AND v GREATER best)
      set(best ${v})
    endif()
  endforeach()
  if(NOT best EQUAL ver)
    message(SEND_ERROR "${name}: header says ABI ${ver}, SDK says ${best} at ${PIN}")
    math(EXPR bad "${bad} + 1")
  endif()
endforeach()
if(bad GREATER 0)
  message(FATAL_ERROR "${bad} of ${n} symbols pinned to the wrong ABI")
endif()
message(STATUS "all ${n} symbols use the newest ABI at or below ${PIN}")
