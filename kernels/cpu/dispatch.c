/* dispatch.c - CPU feature detection, once per process. */
#include "cpu.h"

#include <stdlib.h>
#include <string.h>

static int detected = -1, avx2, avx512;

static void detect(void)
{
	if (detected >= 0)
		return;
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
	avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		 __builtin_cpu_supports("avx512vl");
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
