# The host backend is always built.
list(APPEND DV_HAL_SOURCES hal/host/host_stream.c hal/host/host_env.c)
if(WIN32)
  list(APPEND DV_HAL_SOURCES hal/host/host_win.c)
else()
  list(APPEND DV_HAL_SOURCES hal/host/host_posix.c)
endif()
