/*
 * safetensors.h - reading and writing safetensors files and sharded models.
 *
 * On-disk layout (https://github.com/huggingface/safetensors, little-endian):
 *
 *   u64        N = length of the JSON header in bytes
 *   N bytes    UTF-8 JSON object:
 *                { "__metadata__": { "key": "string value", ... },   (optional)
 *                  "tensor name": { "dtype": "BF16", "shape": [512, 64],
 *                                   "data_offsets": [begin, end] }, ... }
 *              padded with spaces (0x20) so that 8 + N is a multiple of 8
 *   data       the byte buffer; data_offsets are relative to its start,
 *              [begin, end) with end - begin = dtype size * prod(shape)
 *
 * Shapes are row-major, outermost first (PyTorch order): a linear layer's
 * weight is [out_features, in_features].  A sharded model is a directory with
 * model.safetensors.index.json, whose "weight_map" maps tensor names to shard
 * file names in the same directory.
 *
 * The reader validates everything before handing out a tensor: header length
 * against the file size and ISQ_ST_MAX_HEADER, well-formed JSON, known dtypes,
 * shapes (non-negative, product without overflow), offsets in bounds, ordered,
 * non-overlapping and equal to dtype size * element count, unique names (also
 * across shards), and that every tensor the index names exists in its shard.
 * Tensor data is a zero-copy view into the mapped file.
 */
#ifndef ISQ_SAFETENSORS_H
#define ISQ_SAFETENSORS_H

#include "io.h"

#define ISQ_ST_MAX_DIMS 8
/* A header larger than this is refused (the reference implementation caps at 100 MB). */
#define ISQ_ST_MAX_HEADER (100u * 1024 * 1024)

/* Every dtype of the safetensors spec. */
enum isq_st_dtype {
	ISQ_ST_BOOL,
	ISQ_ST_U8,
	ISQ_ST_I8,
	ISQ_ST_F8_E5M2,
	ISQ_ST_F8_E4M3,
	ISQ_ST_F8_E8M0,
	ISQ_ST_I16,
	ISQ_ST_U16,
	ISQ_ST_F16,
	ISQ_ST_BF16,
	ISQ_ST_I32,
	ISQ_ST_U32,
	ISQ_ST_F32,
	ISQ_ST_I64,
	ISQ_ST_U64,
	ISQ_ST_F64,
	ISQ_ST_C64,
	ISQ_ST_F4,      /* 4-bit, two per byte: byte length is ceil(n/2) */
	ISQ_ST_F6_E2M3, /* 6-bit, packed: byte length is ceil(6n/8) */
	ISQ_ST_F6_E3M2,
	ISQ_ST_DTYPE_COUNT,
};

/* "BF16"; NULL for an out-of-range value. */
const char *isq_st_dtype_name(enum isq_st_dtype d);
/* Parse a dtype name exactly as the spec spells it; ISQ_EFORMAT if unknown. */
int isq_st_dtype_parse(const char *s, enum isq_st_dtype *out);
/* Bits per element (1 for BOOL counts as 8). */
unsigned isq_st_dtype_bits(enum isq_st_dtype d);
/* Byte length of n elements; ISQ_EFORMAT on overflow. */
int isq_st_dtype_nbytes(enum isq_st_dtype d, uint64_t n, uint64_t *bytes);
/*
 * The isq type of the same element encoding (F32, F16, BF16, F64, I8..I64,
 * F8_E4M3 -> ISQ_TYPE_FP8), or ISQ_TYPE_NONE.  Declared as int to keep this
 * header free of kernels/types.h.
 */
int isq_st_dtype_to_type(enum isq_st_dtype d);

struct isq_st_tensor {
	char *name;
	enum isq_st_dtype dtype;
	int n_dims;
	int64_t shape[ISQ_ST_MAX_DIMS]; /* row-major, outermost first */
	uint64_t n_elements;
	uint64_t nbytes;
	uint64_t file_offset; /* absolute offset of the data in its shard file */
	const uint8_t *data;  /* zero-copy view, valid while the handle is open */
	int shard;            /* index into the shard list */
};

struct isq_st_kv {
	char *key;
	char *value;
};

struct isq_safetensors {
	struct isq_st_tensor *tensors; /* in data order, shard by shard */
	size_t n_tensors;
	struct isq_st_kv *metadata;    /* __metadata__ of the first shard, in file order */
	size_t n_metadata;
	char **shard_paths;            /* n_shards paths as opened */
	struct isq_map *shards;
	int n_shards;
	uint64_t header_size;          /* JSON header bytes of the first shard */
	struct isq_errbuf err;
	/* private */
	void *index;
};

struct isq_safetensors *isq_st_new(void);
void isq_st_free(struct isq_safetensors *st); /* NULL is fine */

/*
 * Open PATH: a .safetensors file ("-" = stdin), a model.safetensors.index.json,
 * or a directory holding model.safetensors or model.safetensors.index.json (or
 * exactly one *.safetensors file).  Returns 0 or a negative status with the
 * message in st->err, naming the file and tensor ("model-00002-of-00002.safetensors:
 * tensor 'lm_head.weight': data offset past end of file").
 */
int isq_st_open(struct isq_safetensors *st, const char *path);
/* Parse one safetensors image held in memory (not copied; fuzzers, tests). */
int isq_st_open_memory(struct isq_safetensors *st, const void *data, uint64_t size);
/*
 * Shards known by their headers only, for inputs read as a stream (an
 * archive): h[i].bytes holds at least the first 8 + N bytes of shard i,
 * h[i].file_size is the shard's whole size.  Everything is validated as for
 * isq_st_open, but tensors' data pointers are NULL and shards[] are empty
 * maps: the caller reads the bytes at file_offset itself.
 */
struct isq_st_header {
	const char *label;    /* names the shard in messages and shard_paths */
	const uint8_t *bytes;
	uint64_t len;
	uint64_t file_size;
};
int isq_st_open_headers(struct isq_safetensors *st, int n, const struct isq_st_header *h);
/* Look a tensor up by name (hash lookup); NULL if absent. */
const struct isq_st_tensor *isq_st_find(const struct isq_safetensors *st, const char *name);
/* The __metadata__ value for KEY, or NULL. */
const char *isq_st_meta(const struct isq_safetensors *st, const char *key);

/*
 * Streaming writer.  Declare every tensor first (name, dtype, shape) and the
 * metadata; isq_st_writer_begin() then writes the header, and the tensors'
 * bytes follow in declaration order through isq_st_writer_write() (any chunk
 * sizes; the writer checks that exactly the declared byte count arrives).
 * The JSON header lists __metadata__ first, then tensors in declaration
 * order, so the same calls always give the same bytes.
 *
 *   struct isq_st_writer *w = isq_st_writer_new();
 *   isq_st_writer_meta(w, "format", "pt");
 *   isq_st_writer_add(w, "a.weight", ISQ_ST_F32, 2, (int64_t[]){4, 8});
 *   isq_st_writer_begin(w, &out);
 *   isq_st_writer_write(w, data, 128);
 *   isq_st_writer_finish(w);        // checks completeness; does not commit `out`
 *   isq_st_writer_free(w);
 */
struct isq_st_writer;
struct isq_st_writer *isq_st_writer_new(void);
void isq_st_writer_free(struct isq_st_writer *w);
int isq_st_writer_meta(struct isq_st_writer *w, const char *key, const char *value);
int isq_st_writer_add(struct isq_st_writer *w, const char *name, enum isq_st_dtype dtype, int n_dims,
		      const int64_t *shape);
int isq_st_writer_begin(struct isq_st_writer *w, struct isq_out *out);
int isq_st_writer_write(struct isq_st_writer *w, const void *data, size_t n);
int isq_st_writer_finish(struct isq_st_writer *w);
const char *isq_st_writer_errmsg(const struct isq_st_writer *w);

#endif
