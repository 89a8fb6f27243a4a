/*
 * imatrix.h - importance matrices in the three formats the peers write.
 *
 * In memory an imatrix is what llama.cpp's GGUF form stores: per weight
 * tensor, the raw sum of squared input activations per input column
 * (n_mat x n_per_row; n_mat = experts, 1 for dense) and the number of token
 * rows per matrix.  The importance a quantizer uses is sum / count.
 *
 * GGUF (llama.cpp's default since 2025): a GGUF v3 file with
 *   general.type = "imatrix", imatrix.datasets (string array),
 *   imatrix.chunk_count (u32), imatrix.chunk_size (u32), and per weight
 *   "<name>.in_sum2" F32 [n_per_row, n_mat] and "<name>.counts" F32 [1, n_mat]
 *   (1-D for dense weights), sorted by name.
 * Legacy .dat (llama.cpp --output-format dat):
 *   i32 n_entries; per entry { i32 name_len; name; i32 ncall; i32 nval;
 *   f32 values[nval] } with values = mean square x ncall; then optionally
 *   i32 chunk_count, i32 dataset_len, dataset bytes.
 * .cimatrix (mistral.rs): u64 n_entries; per entry { u64 key_len; key (the
 *   layer's module path, e.g. "model.layers.0.mlp.down_proj"); u64 n; f32[n] }
 *   with values = mean square x ncalls.  We write entries sorted by key.
 * Reading .dat and .cimatrix gives sum = value and count = the call count
 * (1 for .cimatrix), which preserves the importance (sum / count) exactly.
 *
 * Entries are keyed by GGUF tensor names ("blk.0.ffn_down.weight"); names in
 * HF form (cimatrix keys) are mapped on load and back on writing.
 */
#ifndef ISQ_IMATRIX_H
#define ISQ_IMATRIX_H

#include "io.h"

enum isq_imatrix_format {
	ISQ_IMATRIX_GGUF,
	ISQ_IMATRIX_DAT,
	ISQ_IMATRIX_CIMATRIX,
};

struct isq_imatrix_entry {
	char *name;        /* GGUF tensor name */
	int64_t n_per_row; /* input columns */
	int64_t n_mat;     /* experts (1 = dense) */
	float *sums;       /* n_mat * n_per_row */
	float *counts;     /* n_mat */
};

struct isq_imatrix {
	struct isq_imatrix_entry *entries; /* sorted by name */
	size_t n;
	char **datasets;
	size_t n_datasets;
	int64_t chunk_count;
	int64_t chunk_size;
	enum isq_imatrix_format format; /* what was read */
	struct isq_errbuf err;
};

void isq_imatrix_init(struct isq_imatrix *im);
void isq_imatrix_release(struct isq_imatrix *im);

/* "gguf", "dat", "cimatrix"; and the format a path's extension names (GGUF by default). */
const char *isq_imatrix_format_name(enum isq_imatrix_format f);
int isq_imatrix_format_parse(const char *s, enum isq_imatrix_format *f);
enum isq_imatrix_format isq_imatrix_format_from_path(const char *path);

/*
 * Read PATH ("-" = stdin): GGUF by its magic, .cimatrix by extension, else
 * legacy .dat.  Every length and count is checked against the file size.
 */
int isq_imatrix_read(struct isq_imatrix *im, const char *path);
int isq_imatrix_read_memory(struct isq_imatrix *im, const void *data, uint64_t size, int is_cimatrix);

/* Write in format f to an open output. */
int isq_imatrix_write(const struct isq_imatrix *im, enum isq_imatrix_format f, struct isq_out *out,
		      struct isq_errbuf *e);

/* The entry for a GGUF or HF tensor name, or NULL. */
const struct isq_imatrix_entry *isq_imatrix_find(const struct isq_imatrix *im, const char *name);

/*
 * Importance of matrix `mat` (expert) of an entry into out[n_per_row]:
 * sum / count, or all ones for a matrix that saw no rows.
 */
void isq_imatrix_importance(const struct isq_imatrix_entry *en, int64_t mat, float *out);

/*
 * Add an entry (copies name; takes sums/counts as zero-filled arrays of the
 * given geometry) and return it, or NULL on ENOMEM / geometry mismatch with
 * an existing entry of that name (then the existing one is returned only if
 * it matches).  Keeps entries sorted, so the returned pointer (and any
 * earlier one) is valid only until the next entry is added.
 */
struct isq_imatrix_entry *isq_imatrix_get_or_add(struct isq_imatrix *im, const char *name, int64_t n_per_row,
						 int64_t n_mat);

/* dst += src (sums and counts; chunk counts add; datasets are appended). ISQ_EINVAL on geometry mismatch. */
int isq_imatrix_merge(struct isq_imatrix *dst, const struct isq_imatrix *src);

#endif
