@echo off
rem SPDX-License-Identifier: Apache-2.0
rem
rem build_windows_rocm.bat - build dynvram with the HIP backend on Windows
rem (AMD GPUs through the HIP SDK's runtime) and install the Python package
rem into the active virtual environment.
rem
rem Usage (from any prompt; a Visual Studio developer prompt is found if this
rem is not one):
rem   build_windows_rocm.bat [--clang] [--no-python] [--python PATH\python.exe]
rem                          [--build-dir DIR] [--debug]
rem
rem   --clang       compile with the HIP SDK's clang (%HIP_PATH%\bin\clang.exe)
rem                 instead of MSVC's cl. Both need the Visual Studio C++
rem                 tools for the linker and the Windows SDK.
rem   --no-python   build the DLL only.
rem   --python      the interpreter to install into (default: the active
rem                 virtual environment's, or conda's).
rem   --build-dir   default: build-windows-rocm
rem   --debug       Debug instead of Release.
rem
rem No HIP header is needed to build (hal\hip\hip_abi.h declares what the
rem backend uses); the HIP runtime DLL (amdhip64_7.dll or amdhip64_6.dll, from
rem the HIP SDK or the AMD driver) is needed to run. See hal\hip\README.md.

setlocal EnableExtensions EnableDelayedExpansion
set "DV_ROOT=%~dp0"
if "%DV_ROOT:~-1%"=="\" set "DV_ROOT=%DV_ROOT:~0,-1%"
set "DV_BUILD=%DV_ROOT%\build-windows-rocm"
set "DV_CONFIG=Release"
set "DV_USE_CLANG=0"
set "DV_PYTHON_STEP=1"
set "DV_PY="

rem ---- arguments -------------------------------------------------------------
:args
if "%~1"=="" goto args_done
if /i "%~1"=="--clang" (set "DV_USE_CLANG=1" & shift & goto args)
if /i "%~1"=="--no-python" (set "DV_PYTHON_STEP=0" & shift & goto args)
if /i "%~1"=="--debug" (set "DV_CONFIG=Debug" & shift & goto args)
if /i "%~1"=="--python" (
    if "%~2"=="" goto usage
    set "DV_PY=%~2"
    shift & shift & goto args
)
if /i "%~1"=="--build-dir" (
    if "%~2"=="" goto usage
    set "DV_BUILD=%~f2"
    shift & shift & goto args
)
if /i "%~1"=="--help" goto usage
if /i "%~1"=="-h" goto usage
echo error: unknown argument "%~1"
goto usage

:usage
echo usage: %~nx0 [--clang] [--no-python] [--python PATH\python.exe] [--build-dir DIR] [--debug]
exit /b 2

:args_done

rem ---- the HIP SDK -------------------------------------------------------------
rem The SDK installer sets HIP_PATH (e.g. C:\Program Files\AMD\ROCm\6.4\).
if defined HIP_PATH goto hip_check
for /d %%D in ("%ProgramFiles%\AMD\ROCm\*") do set "HIP_PATH=%%~fD"
if defined HIP_PATH (
    echo HIP_PATH is not set; found the HIP SDK at "!HIP_PATH!"
    goto hip_check
)
echo HIP_PATH is not set and no HIP SDK was found under "%ProgramFiles%\AMD\ROCm".
set /p "HIP_PATH=Folder of the HIP SDK (empty to go on without it): "

:hip_check
set "DV_HIP_DLL="
if not defined HIP_PATH goto hip_dll_system
rem No quotes, no trailing backslash.
set "HIP_PATH=%HIP_PATH:"=%"
if "%HIP_PATH:~-1%"=="\" set "HIP_PATH=%HIP_PATH:~0,-1%"
if not exist "!HIP_PATH!\" (
    echo error: the HIP SDK folder "!HIP_PATH!" does not exist.
    echo        Install the HIP SDK ^(https://www.amd.com/en/developer/resources/rocm-hub/hip-sdk.html^)
    echo        or set HIP_PATH to its folder, e.g. set "HIP_PATH=C:\Program Files\AMD\ROCm\6.4"
    exit /b 1
)
for %%N in (amdhip64_7.dll amdhip64_6.dll) do (
    if not defined DV_HIP_DLL if exist "!HIP_PATH!\bin\%%N" set "DV_HIP_DLL=!HIP_PATH!\bin\%%N"
)
:hip_dll_system
rem The AMD display driver installs the runtime into System32 as well.
for %%N in (amdhip64_7.dll amdhip64_6.dll) do (
    if not defined DV_HIP_DLL if exist "%SystemRoot%\System32\%%N" set "DV_HIP_DLL=%SystemRoot%\System32\%%N"
)
if defined DV_HIP_DLL (
    echo HIP runtime: "!DV_HIP_DLL!"
) else (
    echo warning: no amdhip64_7.dll or amdhip64_6.dll found in the HIP SDK or System32.
    echo          The build does not need it, but dynvram will report the HIP backend
    echo          unavailable until one is on the DLL search path ^(or named by
    echo          DYNVRAM_HIP_LIBRARY^).
)

rem ---- compiler environment ----------------------------------------------------------
where cl >nul 2>nul
if not errorlevel 1 goto have_vs
set "DV_VSWHERE=%ProgramFiles(x86)%\Microsoft Visual Studio\Installer\vswhere.exe"
if not exist "%DV_VSWHERE%" goto no_vs
set "DV_VS="
for /f "usebackq tokens=*" %%I in (`"%DV_VSWHERE%" -latest -products * -requires Microsoft.VisualStudio.Component.VC.Tools.x86.x64 -property installationPath`) do set "DV_VS=%%I"
if not defined DV_VS goto no_vs
if not exist "%DV_VS%\VC\Auxiliary\Build\vcvars64.bat" goto no_vs
echo Setting up Visual Studio at "%DV_VS%"
call "%DV_VS%\VC\Auxiliary\Build\vcvars64.bat" >nul
where cl >nul 2>nul
if errorlevel 1 goto no_vs
goto have_vs

:no_vs
echo error: the Visual Studio C++ tools were not found.
echo        Install Visual Studio 2022 or its Build Tools with the workload
echo        "Desktop development with C++" (the HIP SDK needs it too), or run this script from an
echo        "x64 Native Tools Command Prompt".
exit /b 1

:have_vs
set "DV_CC=cl"
if "%DV_USE_CLANG%"=="0" goto cc_done
if not defined HIP_PATH (
    echo error: --clang needs the HIP SDK ^(its bin\clang.exe^); set HIP_PATH.
    exit /b 1
)
if not exist "!HIP_PATH!\bin\clang.exe" (
    echo error: "!HIP_PATH!\bin\clang.exe" does not exist; drop --clang to use MSVC.
    exit /b 1
)
set "DV_CC=!HIP_PATH!\bin\clang.exe"
:cc_done

where cmake >nul 2>nul
if errorlevel 1 (
    echo error: cmake was not found on PATH. Install CMake 3.20 or newer ^(or the
    echo        "C++ CMake tools for Windows" Visual Studio component^).
    exit /b 1
)
where ninja >nul 2>nul
if errorlevel 1 (
    echo error: ninja was not found on PATH. Install Ninja, e.g. with one of
    echo        "winget install Ninja-build.Ninja" or "pip install ninja", or add the
    echo        "C++ CMake tools for Windows" Visual Studio component, which ships it.
    exit /b 1
)

rem ---- configure and build ----------------------------------------------------------
rem Tests need Criterion and are not built here; warnings do not stop a user
rem build (CI builds with warnings as errors).
echo Configuring "%DV_BUILD%" ^(%DV_CONFIG%, compiler %DV_CC%^)
call cmake -S "%DV_ROOT%" -B "%DV_BUILD%" -G Ninja ^
    -DCMAKE_BUILD_TYPE=%DV_CONFIG% ^
    "-DCMAKE_C_COMPILER=%DV_CC%" ^
    -DDV_WITH_HIP=ON ^
    -DDV_BUILD_TESTS=OFF ^
    -DDV_BUILD_BENCH=OFF ^
    -DDV_WERROR=OFF
if errorlevel 1 (
    echo error: CMake configuration failed ^(see above^). If the compiler changed since
    echo        the last run, delete "%DV_BUILD%" and try again.
    exit /b 1
)
call cmake --build "%DV_BUILD%"
if errorlevel 1 (
    echo error: the build failed ^(see the compiler messages above^).
    exit /b 1
)
set "DV_DLL="
for /r "%DV_BUILD%" %%F in (dynvram.dll) do if exist "%%F" if not defined DV_DLL set "DV_DLL=%%F"
if not defined DV_DLL (
    echo error: the build finished but dynvram.dll is not in "%DV_BUILD%".
    exit /b 1
)
echo Built "%DV_DLL%"

rem ---- Python package ------------------------------------------------------------------
if "%DV_PYTHON_STEP%"=="0" goto done
if not exist "%DV_ROOT%\bindings\python\pyproject.toml" if not exist "%DV_ROOT%\bindings\python\setup.py" (
    echo note: bindings\python has no package to install; skipping the Python step.
    goto done
)
if defined DV_PY goto py_check
if defined VIRTUAL_ENV if exist "%VIRTUAL_ENV%\Scripts\python.exe" set "DV_PY=%VIRTUAL_ENV%\Scripts\python.exe"
if not defined DV_PY if defined CONDA_PREFIX if exist "%CONDA_PREFIX%\python.exe" set "DV_PY=%CONDA_PREFIX%\python.exe"
if not defined DV_PY (
    echo error: no active virtual environment ^(VIRTUAL_ENV / CONDA_PREFIX are unset^).
    echo        Activate the environment to install into ^(e.g. ComfyUI's venv\Scripts\activate^),
    echo        or pass --python PATH\python.exe ^(ComfyUI portable: python_embeded\python.exe^),
    echo        or --no-python to build the DLL only.
    exit /b 1
)
:py_check
if not exist "%DV_PY%" (
    echo error: the Python interpreter "%DV_PY%" does not exist.
    exit /b 1
)
rem "call": the interpreter may be a .bat shim (pyenv-win).
call "%DV_PY%" -c "import setuptools, wheel" >nul 2>nul
if errorlevel 1 (
    echo error: "%DV_PY%" lacks setuptools or wheel, which --no-build-isolation needs:
    echo        "%DV_PY%" -m pip install setuptools wheel
    exit /b 1
)
echo Installing the dynvram Python package with "%DV_PY%"
pushd "%DV_ROOT%"
call "%DV_PY%" -m pip install --no-build-isolation bindings\python
set "DV_PIP_RC=%ERRORLEVEL%"
popd
if not "%DV_PIP_RC%"=="0" (
    echo error: pip install of bindings\python failed ^(see above^).
    exit /b 1
)
call "%DV_PY%" -c "import dynvram" >nul 2>nul
if errorlevel 1 (
    echo error: the package installed but "import dynvram" fails in "%DV_PY%".
    exit /b 1
)
echo Installed the dynvram Python package.

:done
echo.
echo Done. To use the HIP backend: set DYNVRAM_BACKEND=hip ^(automatic selection also
echo finds it^); DYNVRAM_HIP_LIBRARY=full\path\to\amdhip64_6.dll picks a runtime DLL.
endlocal
exit /b 0
