/*
 * kld.h - a base model's saved log-probabilities, in llama-perplexity's .kld
 * layout (`--kl-divergence-base FILE`), so that a quantized model can be
 * compared with its base without loading the base again.
 *
 * What is saved follows llama-perplexity's chunking: the text tokenized once
 * (BOS first), chunks of n_ctx tokens evaluated with the chunk's first token
 * replaced by BOS, and the positions n_ctx/2 .. n_ctx-2 of each chunk scored
 * (each predicts the token after it): per_chunk = n_ctx - 1 - n_ctx/2 records
 * per chunk.  A record is the base's log-softmax over the vocabulary,
 * quantized to 16 bits between the largest logit and a floor 16 nats below
 * it.  Files llama.cpp writes load here, and files written here load in
 * llama.cpp, which stops reading after the last record and so never sees
 * isq's trailer.
 *
 * Byte layout (little-endian, no padding, no alignment; like llama.cpp, the
 * writer copies host values, so it assumes a little-endian host):
 *
 *   char     magic[8]       "_logits_"
 *   uint32   n_ctx          tokens per chunk
 *   int32    n_vocab
 *   int32    n_chunk
 *   int32    tokens[n_ctx * n_chunk]   the text's tokens as tokenized (the
 *                           first is BOS when the vocabulary adds one); the
 *                           per-chunk BOS is put in at evaluation time
 *   n_chunk * per_chunk records, in chunk then position order, each of
 *   nv = 2 * ceil(n_vocab / 2) + 4 uint16 values:
 *     float32  scale        (max_logit - min_logit) / 65535, in uint16 0..1
 *     float32  min_lp       min_logit - max_logit - log(sum exp(logit - max_logit)),
 *                           in uint16 2..3, where min_logit = max(smallest
 *                           logit, max_logit - 16)
 *     uint16   q[n_vocab]   round-half-even((logit - min_logit) / scale) for
 *                           logit > min_logit, else 0 (all 0 when scale is 0);
 *                           log p = scale * q + min_lp (float arithmetic);
 *                           one unused uint16 follows when n_vocab is odd
 *   isq's trailer (optional):
 *     char     magic[8]     "_isqnll_"
 *     uint64   n            = n_chunk * per_chunk
 *     float64  nll[n]       the base's exact -log p(next token) (double
 *                           log-softmax of the float logits), since the 16-bit
 *                           values clip every log p below max - 16 and would
 *                           bias the base's perplexity
 *     int32    top[n]       the base's exact argmax (first of equal maxima)
 *
 * Without the trailer (llama.cpp's files) the base's NLL and argmax are
 * taken from the 16-bit values, as llama-perplexity does.
 */
#ifndef ISQ_KLD_H
#define ISQ_KLD_H

#include "io.h"

#define ISQ_KLD_MAGIC "_logits_"
#define ISQ_KLD_TRAILER_MAGIC "_isqnll_"

/* A .kld file opened for reading (mapped; records are decoded on demand). */
struct isq_kld {
	uint32_t n_ctx;
	int32_t n_vocab;
	int32_t n_chunk;
	int64_t per_chunk;      /* records per chunk: n_ctx - 1 - n_ctx/2 */
	int64_t n_records;      /* n_chunk * per_chunk */
	size_t nv;              /* uint16 values per record */
	const int32_t *tokens;  /* n_ctx * n_chunk, checked to be in [0, n_vocab); may be unaligned: read with memcpy */
	int has_trailer;        /* 1: nll[] and top[] below are the exact values */
	struct isq_errbuf err;
	/* private */
	struct isq_map map;
	const uint8_t *records;
	const uint8_t *nll;
	const uint8_t *top;
};

/*
 * Open PATH ("-" = stdin; zstd is decompressed).  Checks the magic, the
 * sizes (the file holds exactly the header, the tokens and the records, and
 * optionally a complete trailer) and every token id.  Returns 0, or a
 * negative status with the message in k->err: the I/O errors of
 * isq_map_open, ISQ_EFORMAT ("base.kld: not a llama-perplexity .kld file (bad
 * magic)", "base.kld: truncated: 1032 bytes of records missing", ...).
 * k is released on failure (isq_kld_release on it is a no-op).
 */
int isq_kld_open(struct isq_kld *k, const char *path);
/* The same over caller-owned memory (borrowed until release). */
int isq_kld_open_memory(struct isq_kld *k, const void *data, uint64_t size);
void isq_kld_release(struct isq_kld *k);

/* Token i of the saved text (0 <= i < n_ctx * n_chunk). */
int32_t isq_kld_token(const struct isq_kld *k, int64_t i);

/*
 * Decode record R (0 <= r < n_records) into n_vocab log-probabilities LP, as
 * llama-perplexity reads them (float: scale * q + min_lp).  Returns 0, or
 * ISQ_EFORMAT for a record whose scale or min_lp is not finite, or a
 * negative scale.
 */
int isq_kld_record(const struct isq_kld *k, int64_t r, float *lp);

/*
 * The base's NLL of the scored token and its argmax for record R: exact from
 * the trailer when there is one, else from the 16-bit values (-lp[target],
 * the first index of the largest lp), where LP is record R as decoded by
 * isq_kld_record.  TARGET is the token record R predicts.
 */
void isq_kld_base(const struct isq_kld *k, int64_t r, const float *lp, int32_t target, double *nll, int32_t *top);

/* Number of uint16 values in a record for a vocabulary of n_vocab. */
size_t isq_kld_record_len(int32_t n_vocab);

/*
 * Encode one row of N_VOCAB float logits into REC (isq_kld_record_len values)
 * exactly as llama-perplexity does; returns the row's exact -log p(target)
 * computed in double, and its argmax in *top.
 */
double isq_kld_encode(const float *logits, int32_t n_vocab, int32_t target, uint16_t *rec, int32_t *top);

/* Writing a .kld file: begin, one add per record in order, finish. */
struct isq_kld_writer {
	struct isq_out *out;
	uint32_t n_ctx;
	int32_t n_vocab, n_chunk;
	int64_t n_records, n_done;
	/* private */
	uint16_t *rec;
	double *nll;
	int32_t *top;
};

/*
 * Write the header and the N_CTX * N_CHUNK tokens to OUT (opened by the
 * caller, who commits or aborts it).  Returns 0, ISQ_EINVAL for sizes that
 * do not fit the layout (n_ctx < 3, n_vocab < 1, n_chunk < 1) or a token out
 * of range, ISQ_ENOMEM, or OUT's write error (message in out->err).
 */
int isq_kld_writer_begin(struct isq_kld_writer *w, struct isq_out *out, uint32_t n_ctx, int32_t n_vocab,
			 int32_t n_chunk, const int32_t *tokens);
/* Encode and write the next record from a row of logits and the token it predicts.  0 or OUT's error. */
int isq_kld_writer_add(struct isq_kld_writer *w, const float *logits, int32_t target);
/* Write the trailer; ISQ_EINVAL if fewer records than n_chunk * per_chunk were added.  Frees w's memory. */
int isq_kld_writer_finish(struct isq_kld_writer *w);
/* Free w's memory (after a failure; finish does it on success).  Safe twice. */
void isq_kld_writer_release(struct isq_kld_writer *w);

#endif
