/*
 * sweep.h - isq-bench --sweep: quantize a model to several types (or take
 * peers' GGUF files) and measure each against the model over one text.
 *
 * Row 0 is the model itself (KL 0 by definition); each type is quantized
 * along isq-quantize's plan into a temporary GGUF, measured, and removed
 * before the next.  Nothing is printed: progress comes through callbacks,
 * failures as a negative enum isq_status with the message in the errbuf.
 */
#ifndef ISQ_SWEEP_H
#define ISQ_SWEEP_H

#include "eval.h"
#include "plan.h"

/* One row: a type quantized here (with or without the imatrix), a peer's GGUF file, or the model itself. */
struct isq_sweep_row {
	char label[64];
	const char *series; /* "base", "isq", "isq + imatrix", "llama.cpp" */
	const char *path;   /* a peer's file; NULL for ours */
	struct isq_type_request req;
	int imatrix;        /* quantized with the imatrix */
	uint64_t bytes;     /* file size (a directory: the tensors' bytes) */
	double bpw;         /* bits per weight over the tensors the file holds */
	int fallbacks;      /* tensors the plan could not give the requested type */
	struct isq_eval_result r;
};

struct isq_sweep {
	struct isq_sweep_row *rows;
	size_t n_rows;
	/* private: the peers' paths point into it */
	char *list;
};

/*
 * Parse a --sweep list (comma-separated types or GGUF paths) into SW's rows,
 * row 0 the base, before any work, so that a misspelt type fails early.  An
 * entry naming an existing file is a peer's GGUF; with WITH_IMATRIX every
 * type gets a second row quantized with it.  Returns 0, ISQ_EINVAL for an
 * empty entry or an unknown type (no "--sweep: " in the message), or
 * ISQ_ENOMEM.  Release SW either way.
 */
int isq_sweep_parse(struct isq_sweep *sw, const char *list, int with_imatrix, struct isq_errbuf *e);
void isq_sweep_release(struct isq_sweep *sw);

struct isq_sweep_params {
	const char *model;      /* the base: F32, F16 or BF16 weights */
	struct isq_backend *be;
	const char *imatrix;    /* importance weights file, or NULL */
	int threads;            /* quantizer threads */
	struct isq_eval_params eval; /* text_path, n_ctx, max_chunks, per_doc, progress */
	/* optional: each model once open (the base first), and each row once measured */
	void (*on_model)(void *ud, const struct isq_eval_model *m);
	void (*on_row)(void *ud, const struct isq_sweep *sw, size_t i);
	void *ud;
};

/*
 * Measure every row of SW, filling bytes, bpw, fallbacks and r.  The
 * temporary directory (in $TMPDIR, else /tmp) is gone when this returns.
 * Returns 0, ISQ_EUNSUPPORTED for an already quantized base, or the first
 * failure of opening, quantizing or measuring.
 */
int isq_sweep_run(struct isq_sweep *sw, const struct isq_sweep_params *p, struct isq_errbuf *e);

#endif
