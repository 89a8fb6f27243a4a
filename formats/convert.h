/*
 * convert.h - streaming a model through the quantizers.
 *
 * A plan entry's output bytes are produced in row chunks: each worker thread
 * widens its rows of the source tensor to float (applying the llama Q/K row
 * permutation when the plan asks for it), quantizes them into its slice of
 * the chunk buffer, and the chunk is handed to a sink in row order.  Input
 * pages are dropped once consumed.  Memory is bounded by the chunk buffer and
 * one float row block per worker, whatever the model size; the bytes do not
 * depend on the thread count.
 */
#ifndef ISQ_CONVERT_H
#define ISQ_CONVERT_H

#include "imatrix.h"
#include "plan.h"
#include "progress.h"
#include "thread.h"

/* Receives consecutive output bytes of one tensor; returns 0 or a negative status. */
typedef int (*isq_sink_fn)(void *ctx, const void *data, size_t n);

struct isq_convert_stats {
	double err_sum;     /* sum of (w * (x - q)^2), w = importance or 1 */
	double ref_sum;     /* sum of (w * x^2) */
	double wsum;        /* sum of w */
	uint64_t n;
};

struct isq_converter {
	const struct isq_model *model;
	struct isq_pool *pool;
	const struct isq_imatrix *imatrix; /* NULL: none */
	int measure_error;                 /* fill per-tensor error statistics */
	struct isq_progress *progress;     /* NULL: none; counts source bytes */
	uint64_t progress_done;
	size_t chunk_bytes;                /* target output bytes per chunk (default 8 MiB) */
	/*
	 * A streamed model (an archive; NULL otherwise): source bytes are read
	 * through isq_model_read() a chunk at a time, so entries and their
	 * sources must be converted in the order of model->tensors[].  It is
	 * the same model as `model`.
	 */
	struct isq_model *stream;
	struct isq_errbuf err;
};

/*
 * Produce the bytes of plan entry `en` into sink.  The importance vector is
 * looked up by the entry's output name, then its source name; a vector whose
 * length is not the row length is an error.  *st (optional) receives error
 * statistics when measure_error is set.  Errors name the tensor:
 * "tensor 'blk.0.attn_q.weight': non-finite value nan at row 3, column 17".
 */
int isq_convert_entry(struct isq_converter *c, const struct isq_plan_entry *en, isq_sink_fn sink, void *sink_ctx,
		      struct isq_convert_stats *st);

/*
 * Only source E of a stacked entry (expert E of n_src): its rows_per_src rows
 * of output bytes, which belong at E * (nbytes / n_src) in the tensor.
 * Statistics are added to *st (not reset).  For a streamed model whose
 * experts lie apart in the stream.
 */
int isq_convert_part(struct isq_converter *c, const struct isq_plan_entry *en, int e, isq_sink_fn sink,
		     void *sink_ctx, struct isq_convert_stats *st);

/* Widen `nrows` rows of a source tensor, starting at `row`, to float (no permutation). */
int isq_tensor_rows_to_f32(const struct isq_model_tensor *t, int64_t row, int64_t nrows, float *dst);

/*
 * general.name for the model at PATH: its directory's or file's base name,
 * less .safetensors, .gguf or an archive suffix (an archive of a directory
 * names the model as the directory would); "model" for NULL.
 */
void isq_convert_model_name(const char *path, char *out, size_t n);

/* The keys a quantized GGUF gets beyond the model's own; every field is optional. */
struct isq_gguf_meta {
	const struct isq_imatrix *imatrix; /* quantize.imatrix.* keys; NULL: none */
	const char *imatrix_name;          /* quantize.imatrix.file (NULL: "") */
	const char *auto_type;             /* quantize.auto_type (isq-quantize -t auto); NULL or "": none */
	/*
	 * Out: what a tool should warn about, "PATH: tokenizer has 32001
	 * tokens, config.json vocab_size is 32000" or "PATH: no tokenizer keys
	 * written: ..."; the library prints nothing.
	 */
	char warnings[2][768];
	int n_warnings;
};

/*
 * The metadata of a quantized GGUF, into writer W before its tensors: a GGUF
 * input's keys (less split.* and general.alignment), or config.json's
 * hparams with general.name = isq_convert_model_name(m->path) and m->tokenizer's keys padded to vocab_size (none,
 * and a warning, when the tokenizer cannot be written); then
 * general.file_type, general.quantization_version, the keys of META (may be
 * NULL) and quantize.fallbacks listing plan P's fallbacks.  Works for a
 * streamed model too: it reads no tensor data.  Returns 0 or a negative
 * status with the message in *e ("tokenizer: ..." or the writer's).
 */
int isq_convert_gguf_metadata(struct isq_gguf_writer *w, const struct isq_model *m, const struct isq_plan *p,
			      struct isq_gguf_meta *meta, struct isq_errbuf *e);

/* What isq_convert_gguf wrote. */
struct isq_convert_gguf_result {
	uint64_t bytes;        /* file size */
	uint64_t tensor_bytes; /* sum of the tensors' data sizes (plan total) */
	uint64_t params;       /* elements of the tensors written */
	int n_fallbacks;
	char label[16];        /* the type as requested, canonical ("q4_k_m") */
};

/*
 * Quantize an opened (not streamed) model M to a GGUF file at OUTPUT along
 * plan PO (its format must be GGUF), with isq_convert_gguf_metadata's keys
 * (the imatrix keys from IM, named IM_NAME; IM may be NULL; its warnings are
 * dropped).  Written to a
 * temporary file and renamed (nothing is left behind on failure).  Returns 0
 * or a negative status with the message in *e.
 */
int isq_convert_gguf(const struct isq_model *m, const struct isq_plan_opts *po, const struct isq_imatrix *im,
		     const char *im_name, struct isq_pool *pool, const char *output,
		     struct isq_convert_gguf_result *res, struct isq_errbuf *e);

#endif
