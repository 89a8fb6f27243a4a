/*
 * imatrix-collect.h - importance matrices computed from calibration text.
 *
 * What is accumulated is llama.cpp's llama-imatrix statistic (notes §5.1):
 * for every linear weight W of a dense decoder and every token row x that W
 * multiplies, sum[j] += x[j]^2 for each input column j, and count += 1.  The
 * result lands in a struct isq_imatrix (imatrix.h) under GGUF tensor names,
 * ready for any of the three writers.
 *
 * The statistics come from the forward pass's observer hook (forward.h),
 * which sees each matmul input once per role: the one input of Wq, Wk and Wv
 * is credited to all three (llama.cpp stores three identical vectors too),
 * likewise Wgate and Wup.  The observer reads the input rows directly, so
 * the backend must keep activations in host memory (the CPU backend does;
 * isq_imatrix_compute refuses any other).
 *
 * Sums are kept in double while collecting and rounded to float once at the
 * end, so long runs do not lose the small terms llama.cpp's float sums drop;
 * counts are exact integers.
 *
 * Chunking (isq_imatrix_compute) is llama-imatrix's: the whole text is one
 * token sequence (BOS first when the tokenizer adds one), cut into
 * floor(n / chunk_size) chunks; each chunk is evaluated from an empty cache
 * with its first token replaced by BOS (when the tokenizer adds BOS), and
 * every token of the chunk contributes.  The tail shorter than a chunk is
 * not used.
 */
#ifndef ISQ_IMATRIX_COLLECT_H
#define ISQ_IMATRIX_COLLECT_H

#include "forward.h"
#include "imatrix.h"

enum isq_imatrix_collect_flags {
	/* Also collect the output projection ("output.weight", or
	 * "token_embd.weight" when tied), as llama-imatrix --process-output. */
	ISQ_IMATRIX_COLLECT_OUTPUT = 1 << 0,
};

/* One accumulator per (layer, role); see forward.h's enum isq_fw_role. */
struct isq_imatrix_slot {
	int64_t cols;
	double *sums;  /* cols */
	int64_t count; /* token rows seen */
};

struct isq_imatrix_collect {
	int64_t n_layer;
	int tied_output;
	unsigned flags;
	struct isq_imatrix_slot *slots; /* n_layer * 4 (QKV, ATTN_OUTPUT, FFN_GATE_UP, FFN_DOWN) */
	struct isq_imatrix_slot output;
	int64_t n_ignored; /* observer calls that matched no slot (a programmer error; tests check it is 0) */
};

/*
 * Prepare accumulators for the matrices of W (their column counts are taken
 * from the tensors themselves).  Returns 0, or ISQ_ENOMEM with a message in e.
 * FLAGS: enum isq_imatrix_collect_flags.
 */
int isq_imatrix_collect_init(struct isq_imatrix_collect *c, const struct isq_fw_weights *w, unsigned flags,
			     struct isq_errbuf *e);
void isq_imatrix_collect_release(struct isq_imatrix_collect *c);

/*
 * The observer (an isq_fw_observer; UD is the struct isq_imatrix_collect):
 * adds the squares of N_TOK rows of COLS floats at X to the slot of (LAYER,
 * ROLE).  X must be host memory.  A call whose layer, role or width matches
 * no slot is counted in n_ignored and otherwise ignored.
 */
void isq_imatrix_collect_observe(void *ud, int layer, enum isq_fw_role role, const float *x, int n_tok,
				 int64_t cols);

/*
 * Add what was collected to IM under GGUF names (blk.N.attn_q.weight, ...):
 * sums and counts add to existing entries of the same geometry; a slot that
 * saw no rows adds nothing.  IM's chunk and dataset fields are left alone.
 * Errors: ISQ_EINVAL (an existing entry of another geometry: the imatrix is
 * of another model; IM is then unchanged), ISQ_ENOMEM; message in im->err.
 */
int isq_imatrix_collect_finish(const struct isq_imatrix_collect *c, struct isq_imatrix *im);
/* Only the geometry check of finish: 0, or ISQ_EINVAL with the message in im->err. */
int isq_imatrix_collect_check(const struct isq_imatrix_collect *c, struct isq_imatrix *im);

/* Progress: called after each chunk with chunks done and the total. */
typedef void (*isq_imatrix_progress_fn)(void *ud, int64_t done, int64_t total);

struct isq_imatrix_params {
	int64_t chunk_size; /* tokens per chunk (llama.cpp's -c; default 512 when 0) */
	int64_t max_chunks; /* at most this many chunks; 0 = all */
	int32_t bos;        /* token that replaces each chunk's first; -1 = leave it */
	unsigned flags;     /* enum isq_imatrix_collect_flags */
	isq_imatrix_progress_fn progress;
	void *progress_ud;
};

/*
 * Run the chunks of IDS (N token ids, the whole tokenized text) through
 * model W on backend BE (a host-memory backend: "cpu") and add the
 * statistics to IM; im->chunk_count grows by the chunks evaluated and
 * im->chunk_size is set.  *n_chunks (may be NULL) receives that number.
 * Errors (message in e): ISQ_EINVAL (fewer than chunk_size tokens, a
 * non-host backend, a token id out of range), the forward pass's
 * (ISQ_EFORMAT, ISQ_EUNSUPPORTED, ISQ_ENOMEM), or finish's.
 */
int isq_imatrix_compute(struct isq_imatrix *im, const struct isq_fw_weights *w, struct isq_backend *be,
			const int32_t *ids, size_t n, const struct isq_imatrix_params *p, int64_t *n_chunks,
			struct isq_errbuf *e);

/* What isq_imatrix_from_text found, for the caller's messages. */
struct isq_imatrix_text_info {
	size_t n_tokens;     /* the whole text, BOS included */
	int64_t n_chunks;    /* chunks evaluated */
	int32_t bos;         /* what replaced each chunk's first token; -1 = nothing */
	int64_t n_ctx_train; /* the model's trained context (0 = unknown) */
	int n_threads;
};

/*
 * The whole job from paths, for isq-imatrix and isq-quantize
 * --calibration-file: open MODEL (weights.h: HF directory, safetensors or
 * GGUF) and its tokenizer, read TEXT ("-" = stdin; zstd is decompressed),
 * tokenize it as llama-imatrix does (BOS added when the tokenizer adds one;
 * text that spells a special token stays text), run isq_imatrix_compute on
 * a CPU backend with N_THREADS (< 1: 1) and put TEXT's name ("<stdin>" for
 * "-") first in im->datasets.  p->bos is ignored: the tokenizer decides it.
 * INFO may be NULL.  Errors (message in e, naming the file): the model's,
 * the tokenizer's, the text's (ISQ_EINVAL "the calibration text is empty"),
 * isq_imatrix_compute's.
 */
int isq_imatrix_from_text(struct isq_imatrix *im, const char *model, const char *text, int n_threads,
			  const struct isq_imatrix_params *p, struct isq_imatrix_text_info *info, struct isq_errbuf *e);

#endif
