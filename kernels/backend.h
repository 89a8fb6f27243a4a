/*
 * backend.h - where a decoder's arithmetic runs.
 *
 * The forward pass (forward.h) is written once against this interface; a
 * backend supplies memory and the handful of operations a dense Llama-family
 * decoder needs.  The CPU backend is the reference: every other backend
 * (CUDA, Vulkan) is tested by running the same model through both and
 * comparing logits.
 *
 * Memory.  Activations, the KV cache and derived tables live in buffers the
 * backend allocates (alloc/free); the forward pass never dereferences them,
 * it only passes them to operations and copies in and out with write/read.
 * On the CPU a buffer is plain host memory; on a GPU it is device memory.
 * Pointer arithmetic on a buffer (base + offset in elements) is allowed: a
 * backend must accept such interior pointers in every operation.
 *
 * Weights.  A struct isq_fw_tensor describes a row-major matrix in any type
 * of the type table (kernels/types.h).  weight_load turns a host view (for
 * example a memory-mapped GGUF tensor) into one the backend can compute
 * with: the CPU keeps the view as is (zero copy), a GPU uploads it.
 * Vectors (norm weights, biases) are F32 buffers.
 *
 * Operations.  Each works on n_tok rows at once (a prompt batch, or a single
 * token while generating) and is synchronous from the caller's view: when it
 * returns, the result is visible to the next operation (a GPU backend may
 * queue work and synchronize in read).  Operations cannot fail: everything
 * they need is reserved up front (reserve), so a failure is a programmer
 * error.  Results must not depend on the thread count.
 *
 * Errors from the fallible entry points (new, reserve, alloc, weight_load)
 * are negative isq_status codes with a message in the errbuf.
 */
#ifndef ISQ_BACKEND_H
#define ISQ_BACKEND_H

#include "types.h"

/* A weight matrix, rows x cols, row-major; each row is row_bytes of `type`. */
struct isq_fw_tensor {
	enum isq_type type;
	int64_t rows, cols;
	size_t row_bytes;
	const void *data; /* host or device memory, depending on who made it */
	/*
	 * 0: rows as described.  Otherwise a backend's own arrangement of the
	 * same values, made by its weight_load (the CPU's Q4_0x8 interleave,
	 * kernels/cpu/repack.h); only that backend's operations read it.
	 */
	int layout;
	/*
	 * Host matrices only: data lies in a read-only file mapping, so once a
	 * backend holds its own copy (repacked, or on a device) the file pages
	 * can leave memory (isq_pages_drop).
	 */
	int file_backed;
};

/* The geometry of one attention call (see ops->attention). */
struct isq_attn_shape {
	int n_tok;        /* query rows in this call */
	int64_t pos0;     /* position of the first of them */
	int n_head, n_head_kv, head_dim;
	int64_t n_ctx;    /* rows the cache holds */
	enum isq_type kv_type; /* ISQ_TYPE_F32 or ISQ_TYPE_F16 */
};

struct isq_backend;

struct isq_backend_ops {
	/*
	 * Make room for the largest operation: matmul inputs of up to n_tok
	 * rows of max_cols, attention over up to n_ctx positions.  Called once
	 * before any operation; may be called again with larger values.
	 */
	int (*reserve)(struct isq_backend *be, int n_tok, int64_t max_cols, int64_t n_ctx, struct isq_errbuf *e);
	/* Zeroed buffer of n bytes, or NULL (ISQ_ENOMEM in e). */
	void *(*alloc)(struct isq_backend *be, size_t n, struct isq_errbuf *e);
	void (*free)(struct isq_backend *be, void *buf); /* NULL is a no-op */
	void (*write)(struct isq_backend *be, void *dst, const void *src, size_t n); /* host -> buffer */
	void (*read)(struct isq_backend *be, void *dst, const void *src, size_t n);  /* buffer -> host */
	/* A host weight view made usable here; weight_unload undoes it. */
	int (*weight_load)(struct isq_backend *be, const struct isq_fw_tensor *host, struct isq_fw_tensor *dev,
			   struct isq_errbuf *e);
	void (*weight_unload)(struct isq_backend *be, struct isq_fw_tensor *dev);

	/* out[i] = row ids[i] of w, widened to F32 (ids are host memory). */
	void (*get_rows)(struct isq_backend *be, const struct isq_fw_tensor *w, const int32_t *ids, int n,
			 float *out);
	/* Per row of n: y = x / sqrt(mean(x^2) + eps) * w.  x and y may be the same. */
	void (*rms_norm)(struct isq_backend *be, const float *x, const float *w, float *y, int64_t n, int64_t rows,
			 float eps);
	/*
	 * y[t] = W x[t] (+ bias), t < n_tok: x is n_tok x w->cols, y n_tok x
	 * w->rows.  The CPU quantizes x to the weight type's vec_dot_type
	 * first, as ggml does, so quantized weights see quantized activations.
	 */
	void (*matmul)(struct isq_backend *be, const struct isq_fw_tensor *w, const float *bias, const float *x,
		       float *y, int n_tok);
	/*
	 * Rotate n_tok rows of n_head heads of head_dim in place; row t is at
	 * position pos0 + t; pair i turns by pos * inv_freq[i] (inv_freq:
	 * head_dim/2 floats in a buffer).  neox: pairs (i, i + head_dim/2)
	 * (rotate_half); otherwise adjacent pairs (2i, 2i+1).
	 */
	void (*rope)(struct isq_backend *be, float *x, int n_tok, int n_head, int head_dim, int64_t pos0,
		     const float *inv_freq, int neox);
	/*
	 * Store k and v (n_tok rows of n_head_kv * head_dim) at rows pos0.. of
	 * the layer's caches, then causal attention of q (n_tok rows of n_head *
	 * head_dim) over positions 0..pos0+t, softmax(q.k / sqrt(head_dim)) v,
	 * into out (same shape as q).  Query head h reads kv head
	 * h / (n_head / n_head_kv) (GQA/MQA).
	 */
	void (*attention)(struct isq_backend *be, const struct isq_attn_shape *s, const float *q, const float *k,
			  const float *v, void *k_cache, void *v_cache, float *out);
	/* gate[i] = silu(gate[i]) * up[i], i < n. */
	void (*swiglu)(struct isq_backend *be, float *gate, const float *up, int64_t n);
	/* y[i] += x[i], i < n. */
	void (*add)(struct isq_backend *be, float *y, const float *x, int64_t n);

	void (*destroy)(struct isq_backend *be);
};

struct isq_backend {
	const struct isq_backend_ops *ops;
	const char *name; /* "cpu" */
	int n_threads;
	void *priv;
};

/*
 * Open backend NAME ("cpu"; "cuda" and "vulkan" when built in) with
 * n_threads worker threads (CPU; < 1 means 1).  ISQ_EINVAL for a name no
 * build knows, ISQ_EUNSUPPORTED for one this build lacks; both messages list
 * what is available.
 */
int isq_backend_new(const char *name, int n_threads, struct isq_backend **out, struct isq_errbuf *e);
void isq_backend_free(struct isq_backend *be); /* NULL is a no-op */
/* The backends built in, space separated: "cpu". */
const char *isq_backend_list(void);

/* The CPU backend itself (isq_backend_new("cpu") calls it). */
int isq_backend_cpu_new(int n_threads, struct isq_backend **out, struct isq_errbuf *e);

#endif
