/*
 * tensor-error.h - what quantization does to each weight tensor of a model,
 * measured without running the model (isq-bench --tensors and --quant).
 *
 * For one -t value, the tensors are those isq-quantize would quantize, with
 * the types it would store: a plain type is applied to every linear weight
 * with no promotion (isq-quantize --pure), so that types compare like for
 * like; a llama.cpp mixture (q4_k_m, ...) follows its rules.  Either way the
 * shape fallbacks of plan.h apply, and each row says which type was stored.
 *
 *   struct isq_tensor_report r;
 *   isq_tensor_error_measure(model, "q4_k", imatrix, pool, ISQ_TENSOR_ERROR, &r, &e);
 *   ... r.rows[i] per tensor, r.total over all ...
 *   isq_tensor_report_release(&r);
 *
 * Error: every row is quantized and dequantized, with the importance vector
 * when the imatrix has one for the tensor and the type uses it (as
 * isq-quantize does), and sums are kept in double:
 *   RMSE          sqrt(sum (x - q)^2 / N)
 *   weighted RMSE sqrt(sum w (x - q)^2 / sum w), w = importance of x's column
 *                 (imatrix sum / count); rows without an imatrix entry have w = 1
 *   cosine        sum xq / sqrt(sum x^2 sum q^2)
 * The total pools the sums of all tensors, so it weights each by its size:
 * its RMSE is the root of the size-weighted mean square error, and its
 * cosine is the size-weighted mean of the tensors' cosines.  Its weighted
 * RMSE pools only the tensors the imatrix has an entry for.
 *
 * Speed (ISQ_TENSOR_SPEED): the time spent in the quantizer alone (reading
 * and widening the source to float is not counted), every thread of the pool
 * on one tensor at a time; MB/s counts the input as fp16 bytes (2 per
 * element), as llama.cpp's figures do (llamacpp-notes §8.3).
 *
 * Threads: for the error, tensors are spread over the pool's threads (each
 * tensor on one); for the speed, the rows of each tensor are.  Results do not
 * depend on the thread count.
 */
#ifndef ISQ_TENSOR_ERROR_H
#define ISQ_TENSOR_ERROR_H

#include "imatrix.h"
#include "plan.h"
#include "thread.h"

enum isq_tensor_measure_flags {
	ISQ_TENSOR_ERROR = 1 << 0, /* quantize, dequantize, compare */
	ISQ_TENSOR_SPEED = 1 << 1, /* time the quantizer */
	/* the imatrix weighs the error only, the quantizer does not see it: what an imatrix buys, measured by its own yardstick */
	ISQ_TENSOR_WEIGH_ONLY = 1 << 2,
};

/* Sums over the elements of one tensor (or of all of them, in the total). */
struct isq_tensor_row {
	char name[96];         /* GGUF name (or HF name for raw safetensors), as the plan gives it */
	enum isq_type type;    /* stored type, after any shape fallback */
	int fallback;          /* 1: not the requested type (plan.h's fallbacks) */
	int weighted;          /* 1: an imatrix entry weighted it (and fed the quantizer if the type uses one) */
	uint64_t n;            /* elements */
	uint64_t bytes;        /* quantized size */
	double se, wse, wsum;  /* sum (x-q)^2, sum w (x-q)^2, sum w */
	double xx, qq, xq;     /* sum x^2, q^2, xq */
	double cos_sum;        /* total only: sum over tensors of n * cosine */
	double seconds;        /* ISQ_TENSOR_SPEED: wall seconds in the quantizer */
};

struct isq_tensor_report {
	struct isq_type_request req; /* the -t value, parsed */
	struct isq_tensor_row *rows; /* plan order */
	size_t n;
	struct isq_tensor_row total; /* name "total"; type = the requested base type */
	int n_weighted;              /* tensors an imatrix entry weighted */
};

/*
 * Measure every tensor of M that isq-quantize would quantize, at TYPE (a -t
 * value: type, shorthand or mixture).  IM may be NULL; POOL may be NULL
 * (one thread).  M must not be streamed (an archive).  Returns 0, or
 * ISQ_EINVAL (unknown type, a model with nothing to quantize, an imatrix
 * entry of the wrong length, non-finite weights), ISQ_EUNSUPPORTED (a
 * type the quantizers cannot produce) or ISQ_ENOMEM, with the message in *e.
 */
int isq_tensor_error_measure(const struct isq_model *m, const char *type, const struct isq_imatrix *im,
			     struct isq_pool *pool, unsigned flags, struct isq_tensor_report *r,
			     struct isq_errbuf *e);
void isq_tensor_report_release(struct isq_tensor_report *r);

/* The figures of a row (or the total), from its sums. */
double isq_tensor_rmse(const struct isq_tensor_row *t);
double isq_tensor_wrmse(const struct isq_tensor_row *t);
double isq_tensor_cosine(const struct isq_tensor_row *t); /* the total: size-weighted mean */
double isq_tensor_bpw(const struct isq_tensor_row *t);
double isq_tensor_mb_per_s(const struct isq_tensor_row *t); /* fp16-equivalent MB (10^6 bytes) per second */

#endif
