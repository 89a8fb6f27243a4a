/*
 * fake-cuda.c - stands in for libcuda.so.1 and libnvidia-ml.so.1 so that
 * isq-tune's CUDA probe and GPU fit rules can be tested on machines without
 * a GPU.  ISQ_FAKE_CUDA_TOTAL and ISQ_FAKE_CUDA_FREE give the memory in
 * bytes; the driver API reports the total, NVML the free amount.
 */
#include <stdlib.h>
#include <string.h>

static unsigned long long env_bytes(const char *name)
{
	const char *s = getenv(name);
	return s ? strtoull(s, NULL, 10) : 0;
}

int cuInit(unsigned flags)
{
	return flags ? 1 : 0;
}

int cuDeviceGetCount(int *n)
{
	*n = 1;
	return 0;
}

int cuDeviceGet(int *dev, int ordinal)
{
	*dev = ordinal;
	return ordinal == 0 ? 0 : 101;
}

int cuDeviceGetName(char *name, int len, int dev)
{
	strncpy(name, "Fake GPU", (size_t)len);
	return 0;
}

int cuDeviceTotalMem_v2(size_t *bytes, int dev)
{
	*bytes = (size_t)env_bytes("ISQ_FAKE_CUDA_TOTAL");
	return 0;
}

int cuDeviceGetPCIBusId(char *id, int len, int dev)
{
	strncpy(id, "0000:01:00.0", (size_t)len);
	return 0;
}

struct nvml_memory {
	unsigned long long total, free, used;
};

int nvmlInit_v2(void)
{
	return 0;
}

int nvmlShutdown(void)
{
	return 0;
}

int nvmlDeviceGetHandleByPciBusId_v2(const char *id, void **dev)
{
	*dev = (void *)1;
	return strcmp(id, "0000:01:00.0") ? 1 : 0;
}

int nvmlDeviceGetMemoryInfo(void *dev, struct nvml_memory *m)
{
	m->total = env_bytes("ISQ_FAKE_CUDA_TOTAL");
	m->free = env_bytes("ISQ_FAKE_CUDA_FREE");
	m->used = m->total - m->free;
	return 0;
}
