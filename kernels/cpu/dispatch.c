/* dispatch.c - CPU feature detection, once per process. */
#include "cpu.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static int detected = -1, avx2, avx512;

static void detect(void)
{
	if (detected >= 0)
		return;
#if defined(__x86_64__) || defined(__i386__)
	/* cpuid directly: clang's __builtin_cpu_supports does not know "f16c",
	 * and the OS must also have enabled the YMM/ZMM state (XCR0). */
	unsigned a, b, c, d;
	if (__get_cpuid(1, &a, &b, &c, &d)) {
		int fma = (c >> 12) & 1, f16c = (c >> 29) & 1, osxsave = (c >> 27) & 1;
		unsigned long long xcr0 = 0;
		if (osxsave) {
			unsigned lo, hi;
			__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
			xcr0 = ((unsigned long long)hi << 32) | lo;
		}
		int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0;
		if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
			avx2 = ymm && fma && f16c && ((b >> 5) & 1);
			avx512 = avx2 && zmm && ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
		}
	}
#endif
	const char *env = getenv("ISQ_FORCE_REF");
	if (env && *env && strcmp(env, "0"))
		avx2 = avx512 = 0;
	detected = 1;
}

int isq_cpu_has_avx2(void)
{
	detect();
	return avx2;
}

int isq_cpu_has_avx512(void)
{
	detect();
	return avx512;
}

const char *isq_cpu_features(void)
{
	detect();
	return avx512 ? "avx2 fma f16c avx512" : avx2 ? "avx2 fma f16c" : "scalar";
}
