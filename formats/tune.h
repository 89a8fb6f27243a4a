/*
 * tune.h - how big each quantization of a model will be, whether it fits the
 * memory of the machine, and which one to use (isq-tune, and `-t auto`).
 *
 * Sizes are not estimated from bits per weight: for every candidate type the
 * plan isq-quantize would follow is built (formats/plan.h: promotions,
 * fallbacks, tied embeddings, mixtures), the GGUF header isq-quantize would
 * write is laid out by the GGUF writer (metadata keys, tensor infos,
 * alignment), and the tensors' padded sizes are added.  Only config.json and
 * the safetensors/GGUF headers are read; the tensor data is never touched
 * (the file is mapped, and the pages of the data are never faulted in).
 *
 * Memory: CPU RAM from /proc/meminfo (MemTotal, MemAvailable); CUDA through
 * the driver library loaded at run time (libcuda.so.1: cuDeviceTotalMem; the
 * free amount from NVML's libnvidia-ml.so.1 when it loads, matched by PCI bus
 * id, else the total); Vulkan from the device-local memory heaps of the
 * physical device (libvulkan.so.1 loaded at run time; CPU-type devices such
 * as llvmpipe are skipped).  A missing library or device is not an error: the
 * probe reports no device and the caller sizes for CPU memory.
 *
 * Fit (as mistral.rs's auto device mapper decides it, notes §3.4): on a GPU
 * the usable memory is the free memory less max(2 %, 512 MiB); the
 * non-layer tensors (embedding, output, final norm), the GGUF header, an
 * activation estimate and the KV cache for the context stay on the device,
 * then whole layers are placed while they fit.  Fits: every layer on the
 * device.  Hybrid: some layers in CPU RAM, and everything fits the two
 * together.  Too large: not even that.  On the CPU backend the model, KV
 * cache and activations must fit MemAvailable (no reserve), else too large.
 *
 * KV cache: F16 keys and values (llama.cpp's default), per layer
 * kv_heads x head_dim x 2 x 2 bytes per token, the head dims from
 * config.json; layers with a sliding window hold at most the window.
 *
 * Recommendation (notes §3.6 with isq's changes): the preferred list of the
 * profile (quality: q8_0 q6_k q5_k q4_k q3_k q2_k; balanced: q6_k q5_k q4_k
 * q3_k; fast: q4_k q3_k q2_k; or the -t types).  quality (without -t)
 * recommends no quantization when the model fits unquantized, else the
 * first preferred type that fits or is hybrid; balanced and fast take the
 * first preferred type that fits, then the first that is hybrid.  When no
 * preferred type qualifies, the first of the whole candidate list that
 * fits, then hybrid.
 */
#ifndef ISQ_TUNE_H
#define ISQ_TUNE_H

#include "plan.h"
#include "thread.h"

enum isq_tune_backend { ISQ_TUNE_CPU, ISQ_TUNE_CUDA, ISQ_TUNE_VULKAN };
enum isq_tune_profile { ISQ_TUNE_QUALITY, ISQ_TUNE_BALANCED, ISQ_TUNE_FAST };
enum isq_tune_fit { ISQ_TUNE_FITS, ISQ_TUNE_HYBRID, ISQ_TUNE_TOO_LARGE };
/* mistral.rs's fixed tiers (notes §3.5). */
enum isq_tune_quality {
	ISQ_TUNE_BASELINE,
	ISQ_TUNE_NEAR_LOSSLESS,
	ISQ_TUNE_GOOD,
	ISQ_TUNE_ACCEPTABLE,
	ISQ_TUNE_DEGRADED,
};

/* "cpu" "cuda" "vulkan"; "quality" ...; "fits" "hybrid" "too-large"; "baseline" "near-lossless" ... */
const char *isq_tune_backend_name(enum isq_tune_backend b);
const char *isq_tune_profile_name(enum isq_tune_profile p);
const char *isq_tune_fit_name(enum isq_tune_fit f);
const char *isq_tune_quality_name(enum isq_tune_quality q);
/* Parse the names above; 0 or ISQ_EINVAL. */
int isq_tune_backend_parse(const char *s, enum isq_tune_backend *b);
int isq_tune_profile_parse(const char *s, enum isq_tune_profile *p);
enum isq_tune_quality isq_tune_quality_of(enum isq_type t);
/*
 * mistral.rs's IsqType spelling of t ("Q4K", "Q8_0", "AFQ4", "F8E4M3"), or
 * NULL for a type mistral.rs's ISQ does not have (iq4_nl, f16, ...).
 */
const char *isq_tune_mrs_name(enum isq_type t);

/* ---- memory ------------------------------------------------------------------------ */

struct isq_tune_memory {
	enum isq_tune_backend backend; /* what was sized for: CPU when the device was not found */
	int have_device;               /* a GPU was found (CUDA or Vulkan) */
	int free_is_total;             /* the free amount could not be read; total is used */
	char device_name[128];         /* "NVIDIA H200", "cpu" */
	uint64_t device_total;         /* bytes of device memory (0 on the CPU backend) */
	uint64_t device_free;
	uint64_t ram_total;            /* MemTotal */
	uint64_t ram_free;             /* MemAvailable */
	char note[160];                /* why the device was not used ("" when it was) */
};

/*
 * Probe the memory of device `device` of backend b.  Always fills *mem; an
 * absent driver, library or device is not an error (mem->backend falls back
 * to ISQ_TUNE_CPU with the reason in mem->note).  Returns ISQ_EIO only when
 * /proc/meminfo cannot be read.
 */
int isq_tune_memory_probe(enum isq_tune_backend b, int device, struct isq_tune_memory *mem, struct isq_errbuf *e);

/* ---- exact sizes ------------------------------------------------------------------- */

/*
 * Add to w the metadata isq-quantize writes for model m quantized by plan p,
 * without its imatrix and -t auto keys: isq_convert_gguf_metadata (convert.h)
 * with no extras, its warnings dropped.  0 or a negative status, with the
 * message in *e.
 */
int isq_tune_gguf_metadata(struct isq_gguf_writer *w, const struct isq_model *m, const struct isq_plan *p,
			   struct isq_errbuf *e);

struct isq_tune_size {
	uint64_t file_bytes;      /* the GGUF file isq-quantize writes */
	uint64_t header_bytes;    /* header and its padding */
	uint64_t global_bytes;    /* padded tensors outside the blocks (embedding, output, norms) */
	uint64_t *layer_bytes;    /* n_layers padded per-block sums (malloc'd) */
	int n_layers;
	uint64_t params;          /* elements written */
	int n_fallbacks;
	char label[16];           /* the request's canonical name: "q4_k", "q4_k_m" */
};

/*
 * The size of `isq-quantize -m PATH -t o->type [o's other options] -o x.gguf`
 * for a model opened with isq_model_open(m, PATH) or, for an archive,
 * isq_model_open_stream (only headers are used).  Errors as isq_plan_build's
 * (bad type, a type GGUF cannot hold); ISQ_EUNSUPPORTED for already-quantized
 * weights and ISQ_EFORMAT for a directory without config.json (isq-quantize
 * refuses both).  Release with isq_tune_size_release.
 */
int isq_tune_size(const struct isq_model *m, const struct isq_plan_opts *o, struct isq_tune_size *s,
		  struct isq_errbuf *e);
void isq_tune_size_release(struct isq_tune_size *s);

/* ---- the report -------------------------------------------------------------------- */

struct isq_tune_opts {
	enum isq_tune_profile profile;
	int64_t ctx;              /* context to reserve; 0 = min(4096, max_position_embeddings) */
	const char *const *types; /* -t: the preferred list instead of the profile's (added to the candidates) */
	int n_types;
	enum isq_target target;   /* how numeric shorthands resolve */
};

struct isq_tune_candidate {
	int is_none;              /* unquantized: the source's own type */
	enum isq_type type;       /* base type (the source type for None) */
	char label[16];           /* canonical: "q6_k", "q4_k_m", "bf16" */
	char isq[16];             /* mistral.rs name ("Q6K"); the label upper-cased when it has none; "" for None */
	char isq_name[32];        /* "None (BF16)", "Q6K", "Q4_K_M" */
	struct isq_tune_size size;
	double vram_fraction;     /* size / device (or RAM) total; 1.0 when there is no total */
	uint64_t max_context;     /* tokens of KV cache that fit beside the weights */
	int context_is_model_max; /* max_context was capped at max_position_embeddings */
	enum isq_tune_quality quality;
	double measured_error;    /* after isq_tune_measure: relative RMSE over the sampled rows; else -1 */
	enum isq_tune_fit fit;
	int device_layers;        /* layers on the device (hybrid on a GPU), else -1 */
	int recommended;
};

struct isq_tune_report {
	struct isq_tune_candidate *c;
	size_t n;
	int recommended;          /* index into c, or -1 when nothing fits */
	struct isq_tune_memory mem;
	enum isq_tune_profile profile;
	enum isq_target target;
	int64_t ctx;              /* the context reserved */
	uint64_t kv_bytes;        /* KV cache for ctx */
	uint64_t kv_bytes_per_token; /* full-attention layers only */
	uint64_t act_bytes;       /* activation estimate */
	int64_t max_position;
	char warnings[8][192];
	int n_warnings;
	char notes[8][192];
	int n_notes;
};

/*
 * Size every candidate (None, q8_0, q6_k, q5_k, q4_k, q3_k, q2_k, then any
 * o->types not among them), judge its fit against *mem, and pick the
 * recommendation.  ISQ_EINVAL for a bad type in o->types or a ctx < 0;
 * ISQ_EUNSUPPORTED/ISQ_EFORMAT when the model cannot be quantized (no
 * config.json, quantized weights).  A model that fits nowhere is not an
 * error: r->recommended is -1 and a warning says so.
 */
int isq_tune_run(const struct isq_model *m, const struct isq_tune_opts *o, const struct isq_tune_memory *mem,
		 struct isq_tune_report *r, struct isq_errbuf *e);
void isq_tune_report_release(struct isq_tune_report *r);

/*
 * --measure: replace the fixed quality tiers by measured ones.  For every
 * candidate, `rows` evenly spaced rows of each quantized tensor (per expert
 * for stacked experts) are read, quantized to the type the plan gives that
 * tensor, decoded, and the squared error summed, each tensor weighted by its
 * row count: measured_error = sqrt(sum (x - q)^2 / sum x^2), 0 for None.
 * Tiers: near-lossless up to 1 %, good up to 4 %, acceptable up to 8 %,
 * degraded above (on stories260K's trained weights q8_0 measures 0.5 %, 4-bit
 * types 5-6 %).  Each sampled row is read once and quantized to every
 * candidate's type; tensors are shared out over `pool` (NULL: inline), and
 * the result does not depend on the thread count.  This reads tensor data,
 * so m must not be a streamed archive.  Errors: the plan's, ISQ_ENOMEM, or a
 * row that cannot be decoded or quantized (ISQ_EINVAL naming the tensor).
 */
int isq_tune_measure(const struct isq_model *m, struct isq_tune_report *r, int rows, struct isq_pool *pool,
		     struct isq_errbuf *e);
/* The tier a measured relative RMSE falls in (the thresholds above). */
enum isq_tune_quality isq_tune_quality_of_error(double rel_rmse);

/*
 * `-t auto` for isq-quantize and isq-run: the balanced recommendation for
 * target's memory (cpu: RAM; cuda, vulkan: device 0; metal: RAM), written
 * as a canonical -t value ("q6_k"; balanced never picks the unquantized
 * None unless nothing else fits) into type[n].  Prints nothing: the caller
 * reports the choice.
 * ISQ_ENOTFOUND when no candidate fits; other errors as isq_tune_run.
 */
int isq_tune_recommend(const struct isq_model *m, enum isq_target target, char *type, size_t n, struct isq_errbuf *e);

#endif
