/*
 * windows.h (fake) - the slice of the Win32 API that hal/host/host_vm_win.c
 * uses, declared for Linux so the Windows host backend's logic can be tested
 * under Criterion and the sanitizers. fake_win.c implements it on mmap and
 * memfd, enforcing the placeholder rules of VirtualAlloc2 / MapViewOfFile3 /
 * UnmapViewOfFile2 / VirtualFree strictly (see fake_win.c). Only for tests.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_TESTS_FAKE_WIN_WINDOWS_H
#define DV_TESTS_FAKE_WIN_WINDOWS_H

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

#define WINAPI
#define TRUE 1
#define FALSE 0

typedef int BOOL;
typedef uint32_t DWORD;
typedef uint32_t ULONG;
typedef uint64_t ULONG64;
typedef size_t SIZE_T;
typedef void *PVOID;
typedef void *HANDLE;
typedef void *HMODULE;
typedef const wchar_t *LPCWSTR;
typedef void (*FARPROC)(void);

typedef struct _SYSTEM_INFO {
    DWORD dwPageSize;
    DWORD dwAllocationGranularity;
} SYSTEM_INFO;

#define INVALID_HANDLE_VALUE ((HANDLE)(intptr_t)-1)

#define MEM_RESERVE 0x00002000u
#define MEM_RELEASE 0x00008000u
#define PAGE_NOACCESS 0x01u
#define PAGE_READWRITE 0x04u
#define SEC_COMMIT 0x08000000u

#define ERROR_NOT_ENOUGH_MEMORY 8u
#define ERROR_OUTOFMEMORY 14u
#define ERROR_INVALID_PARAMETER 87u
#define ERROR_INVALID_ADDRESS 487u
#define ERROR_COMMITMENT_LIMIT 1455u

#define FORMAT_MESSAGE_IGNORE_INSERTS 0x00000200u
#define FORMAT_MESSAGE_FROM_SYSTEM 0x00001000u

DWORD GetLastError(void);
void SetLastError(DWORD code);
DWORD FormatMessageA(DWORD flags, const void *source, DWORD code, DWORD lang,
                     char *buf, DWORD size, void *args);
void GetSystemInfo(SYSTEM_INFO *si);
HMODULE GetModuleHandleW(LPCWSTR name);
FARPROC GetProcAddress(HMODULE mod, const char *name);
HANDLE GetCurrentProcess(void);
BOOL VirtualFree(PVOID addr, SIZE_T size, DWORD type);
HANDLE CreateFileMappingW(HANDLE file, void *attrs, DWORD protect,
                          DWORD size_high, DWORD size_low, LPCWSTR name);
BOOL CloseHandle(HANDLE h);

#endif
