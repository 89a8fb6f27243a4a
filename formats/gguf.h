/*
 * gguf.h - reading and writing GGUF v3 (llama.cpp's model container).
 *
 * On-disk layout (all integers little-endian; a string is u64 length + bytes,
 * no terminator):
 *
 *   "GGUF"  u32 version (= 3)  i64 n_tensors  i64 n_kv
 *   n_kv x      key (string)  i32 value type  value
 *   n_tensors x name (string, < 64 bytes)  u32 n_dims (1..4)
 *               i64 ne[n_dims] (ne[0] = row length, innermost first)
 *               i32 ggml type  u64 offset (from the start of the data section)
 *   zero padding to a multiple of ALIGN
 *   data section: each tensor's bytes, zero-padded to a multiple of ALIGN
 *
 * Value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (1 byte),
 * 8 string, 9 array (i32 element type, u64 count, elements; arrays of arrays
 * are refused, as ggml does), 10 u64, 11 i64, 12 f64.
 * ALIGN = general.alignment (u32, a power of two) or 32.
 *
 * The reader refuses what llama.cpp refuses: bad magic, a version other than 3
 * (and says "byte-swapped file" for a big-endian one), absurd counts, strings
 * or arrays past the end of the file, duplicate keys or tensor names, names of
 * 64 bytes or more, unknown type ids, a row length that is not a multiple of
 * the block size, dims that are negative or overflow, and tensor offsets that
 * are not exactly the running ALIGN-padded sum (llama.cpp's rule), or data
 * past the end of the file.
 *
 * Shapes here are ggml's: ne[0] is the row length.  GGUF ne = [in, out] is the
 * same matrix safetensors calls [out, in].
 */
#ifndef ISQ_GGUF_H
#define ISQ_GGUF_H

#include "io.h"

#define ISQ_GGUF_MAX_DIMS 4
#define ISQ_GGUF_DEFAULT_ALIGNMENT 32

enum isq_gguf_vtype {
	ISQ_GGUF_U8 = 0,
	ISQ_GGUF_I8 = 1,
	ISQ_GGUF_U16 = 2,
	ISQ_GGUF_I16 = 3,
	ISQ_GGUF_U32 = 4,
	ISQ_GGUF_I32 = 5,
	ISQ_GGUF_F32 = 6,
	ISQ_GGUF_BOOL = 7,
	ISQ_GGUF_STRING = 8,
	ISQ_GGUF_ARRAY = 9,
	ISQ_GGUF_U64 = 10,
	ISQ_GGUF_I64 = 11,
	ISQ_GGUF_F64 = 12,
	ISQ_GGUF_VTYPE_COUNT,
};

/* "u32", "string", ... */
const char *isq_gguf_vtype_name(enum isq_gguf_vtype t);

struct isq_gguf_str {
	uint64_t len;
	const char *data; /* not NUL-terminated in a mapped file; see isq_gguf_kv_str */
};

/*
 * One metadata value.  For scalars the value is in the union; for strings in
 * str; for arrays, arr_type/arr_n describe the elements and arr_data points
 * at their encoded bytes (numbers: packed LE; strings: length-prefixed) in
 * the mapped file or in writer-owned memory.
 */
struct isq_gguf_kv {
	char *key;
	enum isq_gguf_vtype type;
	union {
		uint64_t u64;
		int64_t i64;
		double f64;
	} v;             /* every integer/bool widened; f32 widened to double */
	struct isq_gguf_str str;
	enum isq_gguf_vtype arr_type;
	uint64_t arr_n;
	const uint8_t *arr_data;
	uint64_t arr_bytes;
};

struct isq_gguf_tensor {
	char *name;
	int n_dims;
	int64_t ne[ISQ_GGUF_MAX_DIMS]; /* missing dims are 1 */
	uint32_t type;                 /* ggml type id == enum isq_type for ggml types */
	uint64_t offset;               /* relative to the data section */
	uint64_t nbytes;
	uint64_t n_elements;
	const uint8_t *data;           /* reader: zero-copy view */
};

struct isq_gguf {
	uint32_t version;
	struct isq_gguf_kv *kv;
	size_t n_kv;
	struct isq_gguf_tensor *tensors;
	size_t n_tensors;
	uint32_t alignment;
	uint64_t data_offset; /* start of the data section in the file */
	uint64_t file_size;
	struct isq_errbuf err;
	/* private */
	struct isq_map map;
	void *names; /* hash of tensor names */
};

struct isq_gguf *isq_gguf_new(void);
void isq_gguf_free(struct isq_gguf *g);

/* Open PATH ("-" = stdin, read fully) and validate it.  Errors name the key or tensor. */
int isq_gguf_open(struct isq_gguf *g, const char *path);
/* Parse an image in memory (not copied). */
int isq_gguf_open_memory(struct isq_gguf *g, const void *data, uint64_t size);

const struct isq_gguf_kv *isq_gguf_find_kv(const struct isq_gguf *g, const char *key);
const struct isq_gguf_tensor *isq_gguf_find_tensor(const struct isq_gguf *g, const char *name);

/* Typed getters: 0, ISQ_ENOTFOUND, or ISQ_EFORMAT when the stored type does not convert. */
int isq_gguf_get_u64(const struct isq_gguf *g, const char *key, uint64_t *out);
int isq_gguf_get_i64(const struct isq_gguf *g, const char *key, int64_t *out);
int isq_gguf_get_f64(const struct isq_gguf *g, const char *key, double *out);
/* A malloc'd NUL-terminated copy of a string value (caller frees), or NULL. */
char *isq_gguf_get_str(const struct isq_gguf *g, const char *key);
/*
 * Element i of an array value: number as double / as int64, or string (a
 * view; *len set).  Return 0 or ISQ_EINVAL (index or type mismatch).  String
 * arrays are walked from the start: iterate with isq_gguf_arr_iter for speed.
 */
int isq_gguf_arr_num(const struct isq_gguf_kv *kv, uint64_t i, double *out);
struct isq_gguf_arr_iter {
	const struct isq_gguf_kv *kv;
	uint64_t i;
	uint64_t pos;
};
void isq_gguf_arr_iter_init(struct isq_gguf_arr_iter *it, const struct isq_gguf_kv *kv);
/* Next string element: 0 with s and len set, or ISQ_ENOTFOUND at the end. */
int isq_gguf_arr_next_str(struct isq_gguf_arr_iter *it, const char **s, uint64_t *len);

/*
 * Writer.  Add the metadata and tensor infos first; the header (with every
 * offset) is computed from the declared sizes, so the file can stream to a
 * pipe: isq_gguf_writer_begin() writes the header, then each tensor's bytes
 * follow in declaration order through isq_gguf_writer_write(), padding is
 * added by the writer.  Keys and tensors are written in the order added.
 * Setting a key that exists replaces its value in place.
 */
struct isq_gguf_writer;
struct isq_gguf_writer *isq_gguf_writer_new(void);
void isq_gguf_writer_free(struct isq_gguf_writer *w);
const char *isq_gguf_writer_errmsg(const struct isq_gguf_writer *w);

int isq_gguf_set_u32(struct isq_gguf_writer *w, const char *key, uint32_t v);
int isq_gguf_set_i32(struct isq_gguf_writer *w, const char *key, int32_t v);
int isq_gguf_set_u64(struct isq_gguf_writer *w, const char *key, uint64_t v);
int isq_gguf_set_i64(struct isq_gguf_writer *w, const char *key, int64_t v);
int isq_gguf_set_f32(struct isq_gguf_writer *w, const char *key, float v);
int isq_gguf_set_f64(struct isq_gguf_writer *w, const char *key, double v);
int isq_gguf_set_bool(struct isq_gguf_writer *w, const char *key, int v);
int isq_gguf_set_str(struct isq_gguf_writer *w, const char *key, const char *v);
/* Any scalar type by its enum (u8, i8, u16, i16 included); value bits as in struct isq_gguf_kv. */
int isq_gguf_set_scalar(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t, uint64_t bits);
/* Numeric array: n elements of type t, packed little-endian at data (copied). */
int isq_gguf_set_arr(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t, const void *data,
		     uint64_t n);
/* String array (copied). */
int isq_gguf_set_arr_str(struct isq_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copy a key/value from a reader, whatever its type. */
int isq_gguf_set_kv(struct isq_gguf_writer *w, const struct isq_gguf_kv *kv);
/* Remove a key if present. */
void isq_gguf_del(struct isq_gguf_writer *w, const char *key);

/* Declare a tensor: ggml type id and ggml-order dims (ne[0] = row length). */
int isq_gguf_writer_add_tensor(struct isq_gguf_writer *w, const char *name, uint32_t type, int n_dims,
			       const int64_t *ne);
/* Total file size the declared content will produce. */
uint64_t isq_gguf_writer_size(const struct isq_gguf_writer *w);
int isq_gguf_writer_begin(struct isq_gguf_writer *w, struct isq_out *out);
int isq_gguf_writer_write(struct isq_gguf_writer *w, const void *data, size_t n);
/* Checks every declared byte arrived and writes the final padding.  Does not commit `out`. */
int isq_gguf_writer_finish(struct isq_gguf_writer *w);

#endif
