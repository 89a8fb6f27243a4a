/*
 * gguf.h - reading and writing GGUF (llama.cpp's model container), v3.
 *
 * On-disk layout (all integers little-endian; a string is u64 length + bytes,
 * no terminator):
 *
 *   "GGUF"  u32 version (= 3)  i64 n_tensors  i64 n_kv
 *   n_kv x      key (string, not empty)  i32 value type  value
 *   n_tensors x name (string, < 64 bytes)  u32 n_dims (1..4)
 *               i64 ne[n_dims] (ne[0] = row length, innermost first)
 *               i32 ggml type  u64 offset (from the start of the data section)
 *   zero padding to a multiple of ALIGN (writers always add it; ggml's
 *     reader skips it only when n_tensors > 0, and so does ours)
 *   data section: each tensor's bytes, zero-padded to a multiple of ALIGN
 *
 * Value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (1 byte),
 * 8 string, 9 array (i32 element type, u64 count, elements; arrays of arrays
 * are refused, as ggml does), 10 u64, 11 i64, 12 f64.
 * ALIGN = general.alignment (u32, a non-zero power of two) or 32.
 *
 * Reader.  The file is mapped (or, for "-", read whole) and never copied:
 * strings, arrays and tensor data are views into it, valid until
 * isq_gguf_free() or the next open.  It refuses what llama.cpp (ggml's
 * gguf.cpp) refuses: bad magic; version 0, 1 or above 3 (2 and 3 share this
 * layout and are read); a big-endian file, reported as "byte-swapped"
 * (its version reads with zero low 16 bits); negative counts, or counts that
 * cannot fit in the file (every KV takes at least 14 bytes, every tensor info
 * 32), checked before anything is allocated; empty keys, duplicate keys,
 * unknown value types, arrays of arrays; strings and arrays that run past the
 * end of the file, strings over ISQ_GGUF_MAX_STRING bytes and arrays over
 * ISQ_GGUF_MAX_ARRAY elements; a general.alignment that is not a u32 power of
 * two; tensor names of 64 bytes or more, and duplicates; n_dims outside 1..4
 * (ggml's reader takes 0, its writer never writes it); negative dims, and element counts or
 * byte sizes that overflow; ggml type ids the type table does not know
 * (including the removed 4, 5, 31-33, 36-38); a row length that is not a
 * multiple of the block size; a tensor offset that is not exactly the
 * running ALIGN-padded sum of the sizes before it (llama.cpp's rule, so
 * tensors never overlap); and tensor data past the end of the file (the
 * last tensor's padding may be missing).  Keys
 * and names holding a NUL byte are refused too (ggml would cut them short).
 * Every failure is ISQ_EFORMAT (or ISQ_ENOMEM) with a one-line message in
 * g->err naming the key or tensor: "tensor 'blk.0.attn_q.weight': offset 64
 * is not the expected 96".  Control bytes in names are shown as '?'.
 *
 * Shapes here are ggml's: ne[0] is the row length.  GGUF ne = [in, out] is the
 * same matrix safetensors calls [out, in].
 */
#ifndef ISQ_GGUF_H
#define ISQ_GGUF_H

#include "io.h"

#define ISQ_GGUF_MAX_DIMS 4
#define ISQ_GGUF_DEFAULT_ALIGNMENT 32
#define ISQ_GGUF_MAX_NAME 64                          /* a tensor name is shorter than this */
#define ISQ_GGUF_MAX_STRING (UINT64_C(1) << 30)       /* bytes in one string, as ggml */
#define ISQ_GGUF_MAX_ARRAY (UINT64_C(1) << 30)        /* elements in one array, as ggml */

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

/* "u32", "string", ...; "?" for an unknown value. */
const char *isq_gguf_vtype_name(enum isq_gguf_vtype t);

struct isq_gguf_str {
	uint64_t len;
	const char *data; /* not NUL-terminated in a mapped file; see isq_gguf_get_str */
};

/*
 * One metadata value.  For scalars the value is in the union; for strings in
 * str; for arrays, arr_type/arr_n describe the elements and arr_data points
 * at their encoded bytes (numbers: packed LE; strings: length-prefixed;
 * arr_bytes in all) in the mapped file or in writer-owned memory.
 */
struct isq_gguf_kv {
	char *key;
	enum isq_gguf_vtype type;
	union {
		uint64_t u64;
		int64_t i64;
		double f64;
	} v;             /* integers widened (signed ones sign-extended into i64); bool 0 or 1; f32 widened to double */
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
	const uint8_t *data;           /* reader: zero-copy view of nbytes bytes */
};

struct isq_gguf {
	uint32_t version;
	struct isq_gguf_kv *kv;        /* in file order */
	size_t n_kv;
	struct isq_gguf_tensor *tensors; /* in file order */
	size_t n_tensors;
	uint32_t alignment;
	uint64_t data_offset; /* start of the data section in the file (end of the header when n_tensors is 0) */
	uint64_t file_size;
	struct isq_errbuf err;
	/* private */
	struct isq_map map;
	void *names; /* hash indexes of the keys and the tensor names */
};

/* A zeroed handle (NULL when out of memory); one handle can open several files in turn. */
struct isq_gguf *isq_gguf_new(void);
void isq_gguf_free(struct isq_gguf *g);

/*
 * Open PATH ("-" = stdin, read fully; zstd is undone, see isq_map_open) and
 * validate it.  Returns 0, ISQ_EFORMAT (see the reader rules above), or
 * isq_map_open's codes (ISQ_EIO, ISQ_ENOTFOUND, ...).  The message in g->err
 * starts with the path ("<stdin>" for "-").  On failure g holds no file.
 */
int isq_gguf_open(struct isq_gguf *g, const char *path);
/*
 * Parse an image in memory (not copied: it must outlive g's use of it).
 * Same checks and codes; the message does not name a path.
 */
int isq_gguf_open_memory(struct isq_gguf *g, const void *data, uint64_t size);

/* Lookups by exact name (hashed), or NULL. */
const struct isq_gguf_kv *isq_gguf_find_kv(const struct isq_gguf *g, const char *key);
const struct isq_gguf_tensor *isq_gguf_find_tensor(const struct isq_gguf *g, const char *name);

/*
 * Typed getters: 0, ISQ_ENOTFOUND, or ISQ_EFORMAT when the stored type does
 * not convert.  u64/i64 take any integer type or bool whose value fits (a
 * negative value is not a u64; a u64 above INT64_MAX is not an i64); f64
 * takes floats and integers.
 */
int isq_gguf_get_u64(const struct isq_gguf *g, const char *key, uint64_t *out);
int isq_gguf_get_i64(const struct isq_gguf *g, const char *key, int64_t *out);
int isq_gguf_get_f64(const struct isq_gguf *g, const char *key, double *out);
/* A malloc'd NUL-terminated copy of a string value (caller frees), or NULL (absent, not a string, no memory). */
char *isq_gguf_get_str(const struct isq_gguf *g, const char *key);
/*
 * Element i of a numeric (or bool) array: as double, or exactly as int64
 * (integer and bool elements only; a u64 above INT64_MAX does not fit).
 * Return 0 or ISQ_EINVAL (not such an array, index out of range, no fit).
 * String arrays are walked from the start with isq_gguf_arr_iter.
 */
int isq_gguf_arr_num(const struct isq_gguf_kv *kv, uint64_t i, double *out);
int isq_gguf_arr_i64(const struct isq_gguf_kv *kv, uint64_t i, int64_t *out);
struct isq_gguf_arr_iter {
	const struct isq_gguf_kv *kv;
	uint64_t i;
	uint64_t pos;
};
void isq_gguf_arr_iter_init(struct isq_gguf_arr_iter *it, const struct isq_gguf_kv *kv);
/*
 * Next string element (a view, not NUL-terminated): 0 with s and len set, or
 * ISQ_ENOTFOUND at the end (or when kv is not a string array).  ISQ_EFORMAT
 * if a hand-made kv's encoding does not hold arr_n strings within arr_bytes.
 */
int isq_gguf_arr_next_str(struct isq_gguf_arr_iter *it, const char **s, uint64_t *len);

/*
 * Writer.  Add the metadata and tensor infos first; the header (with every
 * offset) is computed from the declared sizes, so the file can stream to a
 * pipe: isq_gguf_writer_begin() writes the header and its padding, then
 * each tensor's bytes follow in declaration order through
 * isq_gguf_writer_write() (in chunks of any size, across tensor
 * boundaries); the writer adds the zero padding after each tensor.  Keys and
 * tensors are written in the order added; setting a key that exists replaces
 * its value (and type) in place.  The layout is ggml's: version 3, ALIGN from
 * general.alignment if set (it must be a u32 non-zero power of two, or begin
 * fails) else 32, n_dims written as ggml_n_dims (trailing dims of 1 dropped,
 * at least 1), bools as 0/1, and the header padded to ALIGN even with no
 * tensors, as gguf_write_to_file does.  Copying every KV and tensor of a
 * llama.cpp file in order therefore gives the same bytes.
 *
 * Every function returns 0 or a negative code with a one-line message for
 * isq_gguf_writer_errmsg(): ISQ_EINVAL for a bad argument or a call out of
 * order (naming the key or tensor), ISQ_ENOMEM, or the output's code
 * (ISQ_EIO, ISQ_ENOSPC, ISQ_EPIPE) with its message.  A failed set or add
 * leaves the writer as it was.
 */
struct isq_gguf_writer;
struct isq_gguf_writer *isq_gguf_writer_new(void);
void isq_gguf_writer_free(struct isq_gguf_writer *w);
const char *isq_gguf_writer_errmsg(const struct isq_gguf_writer *w);

/* Keys must be non-empty; strings at most ISQ_GGUF_MAX_STRING bytes. */
int isq_gguf_set_u32(struct isq_gguf_writer *w, const char *key, uint32_t v);
int isq_gguf_set_i32(struct isq_gguf_writer *w, const char *key, int32_t v);
int isq_gguf_set_u64(struct isq_gguf_writer *w, const char *key, uint64_t v);
int isq_gguf_set_i64(struct isq_gguf_writer *w, const char *key, int64_t v);
int isq_gguf_set_f32(struct isq_gguf_writer *w, const char *key, float v);
int isq_gguf_set_f64(struct isq_gguf_writer *w, const char *key, double v);
int isq_gguf_set_bool(struct isq_gguf_writer *w, const char *key, int v);
int isq_gguf_set_str(struct isq_gguf_writer *w, const char *key, const char *v);
/*
 * Any scalar type by its enum (u8, i8, u16, i16 included).  bits is the
 * value's on-disk encoding in the low bytes: integers in two's complement
 * (truncated to the width), f32 and f64 as their IEEE bit patterns, bool
 * nonzero = true.
 */
int isq_gguf_set_scalar(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t, uint64_t bits);
/* Numeric (or bool) array: n elements of type t, packed little-endian at data (copied; NULL if n is 0). */
int isq_gguf_set_arr(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t, const void *data,
		     uint64_t n);
/* String array of NUL-terminated strings (copied). */
int isq_gguf_set_arr_str(struct isq_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/*
 * Copy a key/value from a reader, whatever its type, arrays included (tools
 * copy metadata this way).  The value is re-encoded from the kv: an f32
 * comes back bit for bit except for a signaling NaN.  A hand-made kv whose
 * array bytes do not match arr_type/arr_n is ISQ_EINVAL.
 */
int isq_gguf_set_kv(struct isq_gguf_writer *w, const struct isq_gguf_kv *kv);
/* Remove a key if present (before begin). */
void isq_gguf_del(struct isq_gguf_writer *w, const char *key);

/*
 * Declare a tensor: ggml type id and ggml-order dims (ne[0] = row length,
 * n_dims 1..4).  ISQ_EINVAL for a name of 64 bytes or more or one already
 * declared (an empty name is allowed, as in ggml), an unknown type id, a
 * negative dim, a row length that is not a multiple of the block size, or a
 * size that overflows.
 */
int isq_gguf_writer_add_tensor(struct isq_gguf_writer *w, const char *name, uint32_t type, int n_dims,
			       const int64_t *ne);
/* Total file size the declared content will produce; 0 if general.alignment is invalid. */
uint64_t isq_gguf_writer_size(const struct isq_gguf_writer *w);
/* Write the header to out (not owned; it must outlive the writer's use); no set or add after this. */
int isq_gguf_writer_begin(struct isq_gguf_writer *w, struct isq_out *out);
/* The next n bytes of tensor data; more than the declared tensors hold is ISQ_EINVAL. */
int isq_gguf_writer_write(struct isq_gguf_writer *w, const void *data, size_t n);
/*
 * Checks every declared byte arrived (ISQ_EINVAL naming the first short
 * tensor otherwise) and writes the final padding.  Does not commit `out`.
 */
int isq_gguf_writer_finish(struct isq_gguf_writer *w);

#endif
