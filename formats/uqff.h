/*
 * uqff.h - mistral.rs's UQFF 1.2 directories: writing, reading, verifying.
 *
 * A UQFF export is a directory (isq-uqff(5); mistral.rs 0.9.2):
 *
 *   <stem>-0.uqff, <stem>-1.uqff, ...   one shard set per output type
 *   residual.safetensors                the tensors that are not layer entries
 *   config.json                         the model's, every "quantization_config" removed
 *   tokenizer.json, tokenizer_config.json, chat_template.jinja,
 *   generation_config.json, processor_config.json, preprocessor_config.json
 *                                       copied when the model has them
 *   uqff_report.json                    what was written (schema 1)
 *
 * The stem is mistral.rs's spelling of the type ("q4k", "q8_0", "afq4",
 * "hqq4", "fp8"), which its `--from-uqff q4k` lookup expects; `-o
 * path/name.uqff` (one type only) writes path/name-0.uqff, ...
 *
 * Every shard, and residual.safetensors, is a plain safetensors file
 * (safetensors.h) with this __metadata__, in this order (mistral.rs's order is
 * a hash map's; ours is fixed so that runs give the same bytes):
 *   "uqff.producer": "isq", "uqff.version": "1.2.0",
 *   "uqff.producer.isq.version": "0.1.0"
 * Tensors are laid out as the Rust safetensors crate lays them out: sorted
 * by dtype, descending in the crate's order (I64 F64 F32 U32 I32 BF16 F16
 * I16 F8_E4M3 U8 for the dtypes UQFF uses), ties by name (bytes ascending),
 * with no padding between tensors.
 *
 * The first shard of a set starts with three U32 scalars (shape []):
 *   uqff.version.major = 1, uqff.version.minor = 2, uqff.version.patch = 0
 * Then one entry per layer, keys ascending; a layer with key K (the module
 * path: "model.layers.0.self_attn.q_proj", "model.embed_tokens") is:
 *
 *   K.weight.format   U8 []    0 GGML, 1 Unquant, 2 HQQ, 3 FP8, 4 AFQ, 5 F8Q8, 6 MXFP4
 *   format 0 (GGML block types):
 *     K.weight        U8 [nbytes]  ggml's block stream, row by row
 *     K.weight.dtype  U32 []       ggml type id: 2 3 6 7 8 9 10..15 (IQ ids refused)
 *     K.weight.shape  U32 [rank]   logical shape, [out, in] or [E, out, in]
 *     K.bias          F32 [out]    optional
 *   format 1 (dense):
 *     K.weight        F32/F16/BF16, the logical shape
 *     K.bias          the same dtype, optional
 *   formats 2..6: the tensors mrs.h describes; K.bias optional (F32 for HQQ)
 * No other K.weight.* tensor may exist (mistral.rs matches the exact set).
 *
 * Shards are cut by data bytes only: before a tensor is appended, a
 * non-empty shard that it would take past the cap (10 GiB by default) is
 * closed; a shard that reaches the cap is closed after the append.  So one
 * layer's tensors may span two shards; a reader merges a set's shards.
 *
 * Mixture of experts: per-expert HF tensors (Mixtral's
 * "P.experts.N.w1/w3/w2", or "P.experts.N.gate_proj/up_proj/down_proj")
 * become three stacked rank-3 entries "P.experts.gate_proj", ".up_proj",
 * ".down_proj" of shape [E, out, in], as mistral.rs canonicalises them.
 *
 * Errors: library functions return 0 or a negative isq_status with the
 * message in the handle's errbuf (or *e), naming the file and tensor.
 */
#ifndef ISQ_UQFF_H
#define ISQ_UQFF_H

#include "convert.h"
#include "mrs.h"

#define ISQ_UQFF_VERSION_MAJOR 1
#define ISQ_UQFF_VERSION_MINOR 2
#define ISQ_UQFF_VERSION_PATCH 0
#define ISQ_UQFF_DEFAULT_SHARD_SIZE (10ull * 1024 * 1024 * 1024)

enum isq_uqff_format {
	ISQ_UQFF_GGUF = 0,
	ISQ_UQFF_UNQUANT = 1,
	ISQ_UQFF_HQQ = 2,
	ISQ_UQFF_FP8 = 3,
	ISQ_UQFF_AFQ = 4,
	ISQ_UQFF_F8Q8 = 5,
	ISQ_UQFF_MXFP4 = 6,
};

/*
 * mistral.rs's name of a type as shard stems and report labels spell it
 * ("q4k", "q8_0", "afq4", "fp8", "mxfp4"; "f32", "f16", "bf16" for floats);
 * NULL for a type UQFF cannot hold (IQ4_NL, IQ4_XS, ...).
 */
const char *isq_uqff_type_label(enum isq_type t);
/* The UQFF format tag that stores type t, or -1 (IQ types and the like). */
int isq_uqff_format_of(enum isq_type t);
/*
 * The crate's sort rank of a safetensors dtype (higher is written first).
 * Exposed for tests, which build shard images by hand.
 */
int isq_uqff_dtype_rank(enum isq_st_dtype d);

/* ---- writing ------------------------------------------------------------------------------ */

/*
 * The plans a -t value writes: one, or two for a numeric shorthand with a
 * second variant (QnK and AFQn, the target's preferred one first), as
 * mistral.rs writes both into one directory.  o->format must be
 * ISQ_FORMAT_UQFF.  *n gets 1 or 2; release each with isq_plan_release.
 * Errors as isq_plan_build().
 */
int isq_uqff_plans_build(const struct isq_model *m, const struct isq_plan_opts *o, struct isq_plan plans[2], int *n,
			 struct isq_errbuf *e);

struct isq_uqff_write_opts {
	const struct isq_model *model;   /* the source, F32/F16/BF16 weights */
	const struct isq_plan *const *plans; /* one per output type, built with ISQ_FORMAT_UQFF */
	int n_plans;
	const char *output;              /* a directory, or PATH/NAME.uqff (n_plans == 1) */
	uint64_t shard_size;             /* 0: ISQ_UQFF_DEFAULT_SHARD_SIZE */
	struct isq_pool *pool;           /* NULL: single-threaded */
	const struct isq_imatrix *imatrix; /* NULL: none */
	struct isq_progress *progress;   /* NULL: none */
	const char *base_model;          /* the report's "base_model"; NULL: omitted */
	/*
	 * NULL, or a GGUF (opened with isq_model_open) whose tensors hold the
	 * quantized weights already, as isq-quantize wrote them from the same
	 * model and plan: its bytes are copied (llama's Q/K rows put back in
	 * checkpoint order) instead of quantizing.  Every layer must be a GGML or
	 * dense type there, of the plan's type (ISQ_EINVAL names the first that
	 * is not).
	 */
	const struct isq_model *from_gguf;
	/*
	 * 1: the output is itself a temporary (isq-pack-uqff --tar): on success
	 * its files and directory stay recorded for removal on a signal (see
	 * isq_uqff_stage_add), until the caller forgets them.
	 */
	int keep_recorded;
};

struct isq_uqff_write_result {
	uint64_t bytes;        /* all files written */
	size_t n_layers;       /* per type */
	int n_fallbacks;       /* summed over types, as the report counts them */
	char dir[4096];        /* the directory written */
};

/*
 * Find the -t value isq-quantize used for a GGUF of model m: o->type when
 * set, else every type and mixture whose llama_ftype is the GGUF's
 * general.file_type (with and without --pure); the first plan whose every
 * quantized tensor has the GGUF's type and size is built into *plan (with
 * ISQ_FORMAT_UQFF).  ISQ_EINVAL when none matches.
 */
int isq_uqff_plan_for_gguf(const struct isq_model *m, const struct isq_model *gguf, const struct isq_plan_opts *o,
			   struct isq_plan *plan, struct isq_errbuf *e);

/*
 * Quantize the model once per plan and write the UQFF directory.  The
 * whole directory is built in a hidden staging directory beside (or,
 * when the target exists, inside) the target and moved into place at the
 * end; on any error the staging directory is removed and the target is
 * untouched.  An existing target keeps its other files; shards of the
 * written stems are replaced.  ISQ_EINVAL for an output path that cannot
 * take the request (several types and a .uqff name), ISQ_EUNSUPPORTED for
 * a type UQFF cannot hold; I/O and quantizer errors as their modules say.
 */
int isq_uqff_write(const struct isq_uqff_write_opts *o, struct isq_uqff_write_result *res, struct isq_errbuf *e);

/*
 * Interrupted writes.  isq_uqff_write builds the directory in a hidden
 * staging directory; it records that directory and every file it creates
 * there (before creating it) in a table that a signal handler may read, and
 * forgets them when it returns.  Tools that stage files of their own (the
 * --tar directory of isq-pack-uqff) record them with isq_uqff_stage_add.
 *
 * isq_uqff_stage_add: record path (a file, or a directory when is_dir) for
 *   removal on a signal.  Normal context only; 0 or ISQ_ENOMEM.
 * isq_uqff_stage_forget: forget every recorded path (removes nothing).
 * isq_uqff_stage_cleanup: async-signal-safe: unlink every recorded file,
 *   then rmdir every recorded directory, newest first; then forget them.
 * isq_uqff_install_signal_handlers: for SIGINT, SIGTERM and SIGHUP, a
 *   handler that runs isq_uqff_stage_cleanup and then the handler that was
 *   there before (io.c's, which removes pending isq_out temporaries and
 *   re-raises), or restores the default action and re-raises, so the
 *   process still dies by the signal.  A signal set to "ignore" stays
 *   ignored.  Call it after isq_io_install_signal_handlers (isq_tool_parse).
 * isq_uqff_pool_new: isq_pool_new(n) whose workers start with those three
 *   signals blocked, so that the main thread takes them and the writer can
 *   hold them off while it renames its staged files.  NULL: out of memory.
 */
int isq_uqff_stage_add(const char *path, int is_dir);
void isq_uqff_stage_forget(void);
void isq_uqff_stage_cleanup(void);
void isq_uqff_install_signal_handlers(void);
struct isq_pool *isq_uqff_pool_new(int n);

/*
 * Archive the files of directory dir (not recursive; the UQFF layout is
 * flat) into out as a pax tar, zstd-compressed when zstd is set, each file
 * under "<prefix>/name".  Names are sorted and times, owners and modes
 * fixed, so the same directory gives the same bytes.  The caller commits
 * or aborts out.  Returns 0, ISQ_EIO (message names the file) or ISQ_ENOMEM.
 */
int isq_uqff_tar(const char *dir, const char *prefix, int zstd, struct isq_out *out, struct isq_errbuf *e);

/* ---- reading -------------------------------------------------------------------------------- */

/* One tensor of a shard set (a view into a mapped shard). */
struct isq_uqff_tensor {
	const char *name;
	enum isq_st_dtype dtype;
	int rank;
	int64_t shape[ISQ_ST_MAX_DIMS];
	uint64_t nbytes;
	const uint8_t *data;
	int shard;             /* index into the set's shard list */
};

/* One layer entry, recognised and checked. */
struct isq_uqff_layer {
	char *key;
	enum isq_uqff_format format;
	enum isq_type type;    /* GGML type (format 0), F32/F16/BF16 (1) or the mrs.h type */
	char label[16];        /* mistral.rs's stored label: "q4k", "unquant", "afq4" */
	int rank;
	uint64_t shape[ISQ_MRS_MAX_RANK]; /* logical shape of the weight */
	uint64_t numel;
	uint64_t nbytes;       /* the entry's bytes, bias included */
	const struct isq_uqff_tensor *weight;
	const struct isq_uqff_tensor *bias; /* NULL: none */
	struct isq_mrs_layout mrs;          /* formats 2..6 */
};

struct isq_uqff_set {
	char *stem;            /* "q4k"; the file name for a shard outside the <stem>-<n> scheme */
	char **shard_paths;
	int n_shards;
	struct isq_safetensors **shards;
	struct isq_uqff_tensor *tensors; /* every shard's, merged, by name */
	size_t n_tensors;
	struct isq_uqff_layer *layers;   /* keys ascending */
	size_t n_layers;
	uint32_t version[3];
};

struct isq_uqff {
	char *path;                      /* as opened */
	char *dir;                       /* the directory (of the shard, for a single shard) */
	struct isq_uqff_set *sets;       /* stems ascending */
	int n_sets;
	struct isq_safetensors *residual; /* NULL when the directory has none */
	struct isq_errbuf err;
};

/*
 * Open a UQFF directory (every *.uqff in it, grouped into sets by stem;
 * residual.safetensors if present) or one shard file, and check each set
 * as mistral.rs's loader does: pre-1.0 sets (all names numeric) refused,
 * the three version scalars present and U32, major 1, minor <= 2, no
 * duplicate name across a set's shards (the version scalars may repeat
 * with equal values), every K.weight.* tensor in a layer with a format
 * tag, the exact suffix set, dtypes and shapes of each format, byte sizes
 * against the shape, and a gap-free shard numbering.  Returns 0 or
 * ISQ_EFORMAT (ISQ_ENOTFOUND: no shard) with the first problem in u->err.
 */
int isq_uqff_open(struct isq_uqff *u, const char *path);
void isq_uqff_release(struct isq_uqff *u);

/*
 * Everything isq_uqff_open checks, plus uqff_report.json when present
 * (schema 1, unique quants, every listed shard present and claimed once,
 * layer counts and stored-label counts equal to the shards'), the residual
 * not repeating a layer's tensors, and config.json parsing.  0 or
 * ISQ_EFORMAT with the first problem.
 */
int isq_uqff_verify(struct isq_uqff *u);

/* Find a layer by key in a set; NULL if absent. */
const struct isq_uqff_layer *isq_uqff_find_layer(const struct isq_uqff_set *s, const char *key);

/*
 * Decode a layer's weight into dst (numel floats).  Returns 0, or
 * ISQ_EUNSUPPORTED for a GGML type without a decoder.
 */
int isq_uqff_dequantize(const struct isq_uqff_layer *l, float *dst, struct isq_errbuf *e);

/*
 * Recognise the layers of one shard image held in memory (fuzzers, tests):
 * the image must parse as safetensors and hold a valid set (as above); each
 * layer is then decoded into dst when its numel <= dst_cap.  *n_layers gets
 * the layer count.  Returns 0 or a negative status.
 */
int isq_uqff_check_memory(const void *data, uint64_t size, float *dst, uint64_t dst_cap, size_t *n_layers,
			  struct isq_errbuf *e);

#endif
