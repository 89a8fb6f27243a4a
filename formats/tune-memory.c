/*
 * tune-memory.c - how much memory the machine has for a model: /proc/meminfo,
 * and the CUDA driver and Vulkan loader opened at run time, so that isq
 * needs neither toolkit to build and runs where neither is installed.
 */
#include "tune.h"

#include <dlfcn.h>

static int read_meminfo(struct isq_tune_memory *mem, struct isq_errbuf *e)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return isq_errbuf_set(e, ISQ_EIO, "/proc/meminfo: cannot read the memory size");
	char line[256];
	unsigned long long kb;
	int have_avail = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			mem->ram_total = (uint64_t)kb * 1024;
		else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
			mem->ram_free = (uint64_t)kb * 1024;
			have_avail = 1;
		}
	}
	fclose(f);
	if (!mem->ram_total)
		return isq_errbuf_set(e, ISQ_EIO, "/proc/meminfo: no MemTotal line");
	/* kernels before 3.14 have no MemAvailable: count all memory as usable rather than none */
	if (!have_avail)
		mem->ram_free = mem->ram_total;
	return 0;
}

/* The CUDA driver API as far as we call it; CUdevice is an int, CUresult 0 is success. */
typedef int (*cu_init_fn)(unsigned);
typedef int (*cu_count_fn)(int *);
typedef int (*cu_get_fn)(int *, int);
typedef int (*cu_name_fn)(char *, int, int);
typedef int (*cu_total_fn)(size_t *, int);
typedef int (*cu_busid_fn)(char *, int, int);
struct nvml_memory {
	unsigned long long total, free, used;
};
typedef int (*nvml_init_fn)(void);
typedef int (*nvml_by_bus_fn)(const char *, void **);
typedef int (*nvml_mem_fn)(void *, struct nvml_memory *);

/*
 * cuMemGetInfo would need a context (hundreds of milliseconds and a few
 * hundred MiB of device memory); NVML reads the free amount without one.
 */
static void nvml_free(const char *bus_id, struct isq_tune_memory *mem)
{
	void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return;
	nvml_init_fn init = (nvml_init_fn)dlsym(h, "nvmlInit_v2");
	nvml_by_bus_fn by_bus = (nvml_by_bus_fn)dlsym(h, "nvmlDeviceGetHandleByPciBusId_v2");
	nvml_mem_fn get_mem = (nvml_mem_fn)dlsym(h, "nvmlDeviceGetMemoryInfo");
	nvml_init_fn shutdown = (nvml_init_fn)dlsym(h, "nvmlShutdown");
	void *dev = NULL;
	struct nvml_memory mi;
	if (init && by_bus && get_mem && init() == 0) {
		if (by_bus(bus_id, &dev) == 0 && get_mem(dev, &mi) == 0 && mi.total) {
			mem->device_free = mi.free;
			mem->free_is_total = 0;
		}
		if (shutdown)
			shutdown();
	}
	dlclose(h);
}

static void probe_cuda(int device, struct isq_tune_memory *mem)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(mem->note, sizeof(mem->note), "no CUDA driver (libcuda.so.1 not found)");
		return;
	}
	cu_init_fn init = (cu_init_fn)dlsym(h, "cuInit");
	cu_count_fn count = (cu_count_fn)dlsym(h, "cuDeviceGetCount");
	cu_get_fn get = (cu_get_fn)dlsym(h, "cuDeviceGet");
	cu_name_fn name = (cu_name_fn)dlsym(h, "cuDeviceGetName");
	cu_total_fn total = (cu_total_fn)dlsym(h, "cuDeviceTotalMem_v2");
	cu_busid_fn busid = (cu_busid_fn)dlsym(h, "cuDeviceGetPCIBusId");
	int n = 0, dev = 0;
	size_t bytes = 0;
	if (!init || !count || !get || !total) {
		snprintf(mem->note, sizeof(mem->note), "libcuda.so.1 lacks the driver API");
	} else if (init(0) != 0 || count(&n) != 0 || n == 0) {
		snprintf(mem->note, sizeof(mem->note), "no CUDA device");
	} else if (device >= n) {
		snprintf(mem->note, sizeof(mem->note), "no CUDA device %d (%d found)", device, n);
	} else if (get(&dev, device) != 0 || total(&bytes, dev) != 0 || !bytes) {
		snprintf(mem->note, sizeof(mem->note), "CUDA device %d: cannot read its memory size", device);
	} else {
		mem->have_device = 1;
		mem->backend = ISQ_TUNE_CUDA;
		mem->device_total = mem->device_free = bytes;
		mem->free_is_total = 1;
		if (!name || name(mem->device_name, (int)sizeof(mem->device_name), dev) != 0)
			snprintf(mem->device_name, sizeof(mem->device_name), "CUDA device %d", device);
		char bus[32];
		if (busid && busid(bus, (int)sizeof(bus), dev) == 0)
			nvml_free(bus, mem);
	}
	dlclose(h);
}

/*
 * The few Vulkan 1.0/1.1 structures we touch, laid out as vulkan_core.h
 * declares them, so no Vulkan headers are needed to build.
 */
struct vk_app_info {
	int s_type;
	const void *next;
	const char *app_name;
	uint32_t app_version;
	const char *engine_name;
	uint32_t engine_version;
	uint32_t api_version;
};
struct vk_instance_info {
	int s_type;
	const void *next;
	uint32_t flags;
	const struct vk_app_info *app;
	uint32_t n_layers;
	const char *const *layers;
	uint32_t n_exts;
	const char *const *exts;
};
struct vk_memory_properties {
	uint32_t n_types;
	struct {
		uint32_t flags, heap;
	} types[32];
	uint32_t n_heaps;
	struct {
		uint64_t size;
		uint32_t flags;
	} heaps[16];
};
struct vk_memory_properties2 {
	int s_type;
	void *next;
	struct vk_memory_properties p;
};
struct vk_budget {
	int s_type;
	void *next;
	uint64_t budget[16];
	uint64_t usage[16];
};
struct vk_ext_props {
	char name[256];
	uint32_t spec;
};
#define VK_DEVICE_LOCAL 1u
#define VK_DEVICE_TYPE_CPU 4u
#define VK_ST_APP_INFO 0
#define VK_ST_INSTANCE_INFO 1
#define VK_ST_MEMORY_PROPERTIES2 1000059006
#define VK_ST_MEMORY_BUDGET 1000237000
#define VK_API_1_1 ((1u << 22) | (1u << 12))

typedef void (*vk_void_fn)(void);
typedef vk_void_fn (*vk_proc_fn)(void *, const char *);
typedef int (*vk_create_fn)(const struct vk_instance_info *, const void *, void **);
typedef void (*vk_destroy_fn)(void *, const void *);
typedef int (*vk_enum_fn)(void *, uint32_t *, void **);
typedef void (*vk_props_fn)(void *, void *);
typedef int (*vk_exts_fn)(void *, const char *, uint32_t *, struct vk_ext_props *);

static int vk_has_budget(vk_exts_fn exts, void *pd)
{
	uint32_t n = 0;
	if (!exts || exts(pd, NULL, &n, NULL) != 0 || !n)
		return 0;
	struct vk_ext_props *p = calloc(n, sizeof(*p));
	int found = 0;
	if (p && exts(pd, NULL, &n, p) >= 0)
		for (uint32_t i = 0; i < n && !found; i++)
			found = !strcmp(p[i].name, "VK_EXT_memory_budget");
	free(p);
	return found;
}

static void probe_vulkan(int device, struct isq_tune_memory *mem)
{
	void *h = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(mem->note, sizeof(mem->note), "no Vulkan loader (libvulkan.so.1 not found)");
		return;
	}
	vk_proc_fn gpa = (vk_proc_fn)dlsym(h, "vkGetInstanceProcAddr");
	vk_create_fn create = gpa ? (vk_create_fn)gpa(NULL, "vkCreateInstance") : NULL;
	void *inst = NULL;
	struct vk_app_info app = { VK_ST_APP_INFO, NULL, "isq-tune", 1, "isq", 1, VK_API_1_1 };
	struct vk_instance_info ci = { VK_ST_INSTANCE_INFO, NULL, 0, &app, 0, NULL, 0, NULL };
	if (!create || create(&ci, NULL, &inst) != 0 || !inst) {
		snprintf(mem->note, sizeof(mem->note), "no Vulkan driver (vkCreateInstance failed)");
		dlclose(h);
		return;
	}
	vk_destroy_fn destroy = (vk_destroy_fn)gpa(inst, "vkDestroyInstance");
	vk_enum_fn enumerate = (vk_enum_fn)gpa(inst, "vkEnumeratePhysicalDevices");
	vk_props_fn props = (vk_props_fn)gpa(inst, "vkGetPhysicalDeviceProperties");
	vk_props_fn memprops = (vk_props_fn)gpa(inst, "vkGetPhysicalDeviceMemoryProperties");
	vk_props_fn memprops2 = (vk_props_fn)gpa(inst, "vkGetPhysicalDeviceMemoryProperties2");
	vk_exts_fn exts = (vk_exts_fn)gpa(inst, "vkEnumerateDeviceExtensionProperties");
	uint32_t n = 0;
	void *pds[16];
	int found = -1;
	/* VkPhysicalDeviceProperties is 824 bytes; deviceType at 16, deviceName at 20 */
	union {
		uint64_t align;
		unsigned char b[2048];
	} pp;
	if (enumerate && props && memprops && enumerate(inst, &n, NULL) >= 0 && n) {
		n = ISQ_MIN(n, (uint32_t)ISQ_ARRAY_SIZE(pds));
		if (enumerate(inst, &n, pds) < 0)
			n = 0;
		/* software rasterizers (llvmpipe) report their RAM as device memory: not a GPU */
		for (uint32_t i = 0, gpu = 0; i < n && found < 0; i++) {
			memset(&pp, 0, sizeof(pp));
			props(pds[i], &pp);
			if (isq_le32(pp.b + 16) == VK_DEVICE_TYPE_CPU)
				continue;
			if ((int)gpu++ == device)
				found = (int)i;
		}
	}
	if (found < 0) {
		snprintf(mem->note, sizeof(mem->note), device ? "no Vulkan GPU %d" : "no Vulkan GPU", device);
	} else {
		struct vk_memory_properties2 mp2;
		struct vk_budget bud;
		memset(&mp2, 0, sizeof(mp2));
		memset(&bud, 0, sizeof(bud));
		int budget = memprops2 && vk_has_budget(exts, pds[found]);
		if (budget) {
			mp2.s_type = VK_ST_MEMORY_PROPERTIES2;
			mp2.next = &bud;
			bud.s_type = VK_ST_MEMORY_BUDGET;
			memprops2(pds[found], &mp2);
		} else {
			memprops(pds[found], &mp2.p);
		}
		/* the largest device-local heap is where weights go (integrated GPUs may list two) */
		uint32_t best = UINT32_MAX;
		for (uint32_t i = 0; i < mp2.p.n_heaps && i < 16; i++)
			if ((mp2.p.heaps[i].flags & VK_DEVICE_LOCAL) &&
			    (best == UINT32_MAX || mp2.p.heaps[i].size > mp2.p.heaps[best].size))
				best = i;
		if (best == UINT32_MAX) {
			snprintf(mem->note, sizeof(mem->note), "Vulkan device %d has no device-local memory", device);
		} else {
			mem->have_device = 1;
			mem->backend = ISQ_TUNE_VULKAN;
			mem->device_total = mp2.p.heaps[best].size;
			mem->device_free = mem->device_total;
			mem->free_is_total = 1;
			if (budget && bud.budget[best]) {
				uint64_t b = ISQ_MIN(bud.budget[best], mem->device_total);
				mem->device_free = b > bud.usage[best] ? b - bud.usage[best] : 0;
				mem->free_is_total = 0;
			}
			snprintf(mem->device_name, sizeof(mem->device_name), "%.127s", (const char *)pp.b + 20);
		}
	}
	if (destroy)
		destroy(inst, NULL);
	dlclose(h);
}

int isq_tune_memory_probe(enum isq_tune_backend b, int device, struct isq_tune_memory *mem, struct isq_errbuf *e)
{
	memset(mem, 0, sizeof(*mem));
	mem->backend = ISQ_TUNE_CPU;
	snprintf(mem->device_name, sizeof(mem->device_name), "cpu");
	int rc = read_meminfo(mem, e);
	if (b == ISQ_TUNE_CUDA)
		probe_cuda(device, mem);
	else if (b == ISQ_TUNE_VULKAN)
		probe_vulkan(device, mem);
	return rc;
}
