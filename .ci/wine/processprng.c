/*
 * Test-only stand-in for Windows' bcryptprimitives.dll, for the Wine smoke
 * test (.ci/wine-smoke.sh); never shipped. Go >= 1.24's Windows runtime
 * takes its random bytes from ProcessPrng, which Debian's Wine 8.0 lacks:
 * without it a Go program dies at start ("bcryptprimitives.dll not found").
 * This one fills the buffer from advapi32's RtlGenRandom
 * (SystemFunction036), which Wine has. Built with Debian's
 * gcc-mingw-w64-x86-64-win32 and copied into the Wine prefix's system32,
 * the only place the Go runtime loads it from.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG n = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        length -= n;
    }
    return TRUE;
}
