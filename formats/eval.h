/*
 * eval.h - scoring a model on a text: perplexity as llama-perplexity computes
 * it, the KL divergence of its next-token distributions from a base model's
 * (run alongside, or saved in a .kld file), and the --per-document method.
 *
 * The measuring functions run the forward pass; they never print.  Progress
 * goes through an optional callback, failures come back as a negative
 * enum isq_status with the whole message (paths included) in the errbuf.
 */
#ifndef ISQ_EVAL_H
#define ISQ_EVAL_H

#include "isq.h"
#include "forward.h"
#include "kld.h"
#include "tokenizer.h"
#include "weights.h"

/* Running sums over scored tokens; means and standard errors as llama-perplexity gives them. */
struct isq_eval_acc {
	double n, s, s2;
};

void isq_eval_acc_add(struct isq_eval_acc *a, double v);
/* The mean, 0 for no values. */
double isq_eval_acc_mean(const struct isq_eval_acc *a);
/* Standard error of the mean: sqrt((E[v^2] - E[v]^2) / (N - 1)); 0 under two values. */
double isq_eval_acc_err(const struct isq_eval_acc *a);

/*
 * Log-softmax of N logits X into LP, summed in double as llama.cpp does;
 * returns the argmax (the first of a tie).
 */
int64_t isq_eval_log_softmax(const float *x, int64_t n, double *lp);

/*
 * KL(base || model) = sum exp(LPB) * (LPB - LP) over N log-probabilities,
 * exact in double (the value may round a little below 0 for equal rows).
 */
double isq_eval_kl(const double *lpb, const double *lp, int64_t n);

/*
 * llama-perplexity's percentile F (0..1) of N >= 1 sorted values: linear
 * between the two nearest.
 */
double isq_eval_percentile(const double *v, size_t n, double f);

/*
 * The next document of the text [*P, END): it runs to the next line that is
 * "<|endoftext|>" (blanks around it allowed) or to the end, and comes back
 * in [*A, *B) stripped of surrounding whitespace; *P moves past the
 * separator.  Returns 1 when a document was taken (it may be empty), 0 at
 * the end.
 */
int isq_eval_next_doc(const char **p, const char *end, const char **a, const char **b);

/*
 * --per-document windows: a document of N tokens predicts N - 1 next
 * tokens, fed as consecutive windows of at most C inputs.  Returns the
 * length of the window whose first input is AT (0 when AT is past the last).
 */
int64_t isq_eval_window_len(int64_t n, int64_t c, int64_t at);

/* One model ready to evaluate chunks: weights, tokenizer, forward context. */
struct isq_eval_model {
	const char *path;
	struct isq_weights w;
	struct isq_tokenizer *tok;
	struct isq_fw_ctx *fw;
	int64_t n_ctx;
	int ctx_beyond_train; /* n_ctx is longer than the model was trained for (w.fw.cfg.n_ctx_train) */
};

/*
 * Open PATH (HF directory, safetensors or GGUF) with its tokenizer (a GGUF's
 * own, or the tokenizer.json beside it) and a forward context for chunks of
 * N_CTX tokens in one batch, its KV cache in KV_TYPE (ISQ_TYPE_F32 or
 * ISQ_TYPE_F16, llama.cpp's default).  PATH is borrowed.  Returns 0 or a
 * negative status; M is released on failure.
 */
int isq_eval_model_open(struct isq_eval_model *m, const char *path, struct isq_backend *be, int64_t n_ctx,
			enum isq_type kv_type,
			struct isq_errbuf *e);
void isq_eval_model_close(struct isq_eval_model *m);

/* The text as token ids: one span per document (per-document), else one span. */
struct isq_eval_text {
	int32_t *ids;
	size_t n;
	size_t *start; /* n_spans + 1 offsets into ids */
	size_t n_spans;
};

/*
 * Read PATH ('-' is stdin, .zst decompressed) and tokenize it with M's
 * tokenizer: whole (BOS if the vocabulary adds one, special-token text
 * literal) or, with PER_DOC, document by document.  Returns 0, ISQ_EINVAL
 * when PER_DOC finds no document, or the read or tokenizer error.
 */
int isq_eval_text_load(struct isq_eval_text *t, const struct isq_eval_model *m, const char *path, int per_doc,
		       struct isq_errbuf *e);
void isq_eval_text_release(struct isq_eval_text *t);

/* What a measurement gives. */
struct isq_eval_result {
	int64_t n_tokens, n_chunks, n_docs, scored;
	struct isq_eval_acc nll, nll_base, kl, dp2; /* dp2: squared difference of p(target) */
	int64_t same_top;                           /* predictions whose argmax is the base's */
	double kl_max, kl_median, kl_p90, kl_p95, kl_p99;
	int base_exact; /* the base's NLL from its exact log-softmax, not from 16-bit values */
	double seconds;
};

/* Top-1 agreement with the base in percent, and its standard error as llama-perplexity gives it. */
double isq_eval_top1_pct(const struct isq_eval_result *r);
double isq_eval_top1_err_pct(const struct isq_eval_result *r);

/* Progress after chunk or document K (from 1), with the perplexity so far. */
typedef void (*isq_eval_progress_fn)(void *ud, int64_t k, double ppl);

/* How to measure. */
struct isq_eval_params {
	int64_t n_ctx;          /* tokens per chunk (the models' n_ctx) */
	int64_t max_chunks;     /* 0: all */
	enum isq_type kv_type;  /* the models' KV cache: ISQ_TYPE_F32 (0) or ISQ_TYPE_F16 */
	int per_doc;            /* --per-document instead of llama-perplexity's chunks */
	const char *text_path;  /* for messages */
	const struct isq_kld *kld;  /* base from a saved file (chunks only) */
	const char *kld_path;       /* for messages */
	struct isq_kld_writer *kw;  /* save MODEL's log-probabilities (chunks only); the caller commits */
	isq_eval_progress_fn progress; /* optional; called per chunk, or per 100 documents */
	void *ud;
};

/*
 * Measure M over the token ids IDS[0..N) in llama-perplexity's chunks,
 * against BASE, P->kld or neither, writing P->kw when set.  Fills *R.
 * Returns 0, ISQ_EINVAL for a text under two chunks or a corrupt .kld
 * record, ISQ_ENOMEM, or the forward pass's or writer's error.
 */
int isq_eval_chunks(struct isq_eval_model *m, struct isq_eval_model *base, const int32_t *ids, size_t n,
		    const struct isq_eval_params *p, struct isq_eval_result *r, struct isq_errbuf *e);

/*
 * Measure M over T (against BASE when given) by P's method: chunks of the
 * one span, or every token of each document.  ISQ_EINVAL when the two
 * vocabularies differ; otherwise as isq_eval_chunks.
 */
int isq_eval_measure(struct isq_eval_model *m, struct isq_eval_model *base, const struct isq_eval_text *t,
		     const struct isq_eval_params *p, struct isq_eval_result *r, struct isq_errbuf *e);

#endif
