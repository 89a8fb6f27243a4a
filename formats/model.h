/*
 * model.h - one view of a model's tensors, whatever the container.
 *
 * Opens a safetensors file, a sharded or single-file Hugging Face directory,
 * a GGUF file, or (isq_model_open_stream only) a .tar, .tar.zst or .zip of a
 * model directory, and lists its tensors uniformly: name, element type,
 * row-major shape (outermost first, as safetensors writes it; GGUF's ne is
 * reversed into this order), byte length and a zero-copy view of the data.
 * For a HF directory the config.json beside the weights is parsed when
 * present, and so is tokenizer.json (with tokenizer_config.json); for GGUF
 * the architecture comes from general.architecture.
 *
 * Archives are read through libarchive and never unpacked to disk.  Their
 * entries can only be read front to back, so opening makes one pass that
 * keeps the small files (config.json, tokenizer.json, tokenizer_config.json,
 * model.safetensors.index.json) and only the header of each safetensors
 * shard; tensor data is then read by isq_model_read() in a second pass that
 * must ask for bytes in stream order: tensors[] is listed in that order
 * (shard by shard as they appear in the archive, data order within a shard).
 */
#ifndef ISQ_MODEL_H
#define ISQ_MODEL_H

#include "config.h"
#include "gguf.h"
#include "safetensors.h"

#define ISQ_MODEL_MAX_DIMS 8

enum isq_model_format {
	ISQ_MODEL_SAFETENSORS,
	ISQ_MODEL_GGUF,
};

struct isq_model_tensor {
	const char *name;     /* borrowed from the container */
	int type;             /* enum isq_type, or ISQ_TYPE_NONE (e.g. U8, BOOL) */
	const char *type_name; /* canonical isq name, or the container's dtype name */
	int n_dims;
	int64_t shape[ISQ_MODEL_MAX_DIMS];
	uint64_t n_elements;
	uint64_t nbytes;
	uint64_t file_offset;  /* where the data starts in its file (0 when read from a pipe) */
	const uint8_t *data;
};

struct isq_tokenizer;

struct isq_model {
	enum isq_model_format format;
	uint32_t version;           /* GGUF version; 0 for safetensors */
	char arch[64];              /* "llama", or "" when unknown */
	int have_config;            /* hp is valid */
	int config_rc;              /* 0, or why config.json could not be used (ISQ_ENOTFOUND: absent) */
	char config_err[256];
	struct isq_hparams hp;
	struct isq_model_tensor *tensors;
	size_t n_tensors;
	struct isq_safetensors *st; /* exactly one of st, gguf is set */
	struct isq_gguf *gguf;
	char *path;
	int streamed;               /* an archive: tensors' data is NULL, read with isq_model_read in order */
	struct isq_tokenizer *tokenizer; /* from tokenizer.json beside the weights, or NULL */
	int tokenizer_rc;           /* 0, ISQ_ENOTFOUND (no tokenizer.json) or why it could not be loaded */
	char tokenizer_err[256];
	struct isq_errbuf err;
	void *priv; /* private: the input map */
};

/*
 * Open PATH ("-" reads standard input; GGUF or safetensors by magic).
 * A config.json that is present but broken is an error; an absent one is not.
 * Returns 0 or a negative status with the message in m->err.
 */
int isq_model_open(struct isq_model *m, const char *path);
/*
 * As isq_model_open, and also archives (by name: .tar, .tar.zst, .tzst,
 * .tar.gz, .tgz, .tar.xz, .zip), which give a streamed model.  Only callers
 * that read tensor data through isq_model_read() may use this.
 */
int isq_model_open_stream(struct isq_model *m, const char *path);
/* 1 if PATH names an archive by its extension. */
int isq_model_is_archive(const char *path);
/*
 * Copy n bytes of tensor t's data from byte off into dst.  For a streamed
 * model the reads must move forward through tensors[] and through each
 * tensor (skipping is fine); going back is ISQ_EINVAL.  A short or corrupt
 * archive is ISQ_EFORMAT/ISQ_EIO with the message in m->err.
 */
int isq_model_read(struct isq_model *m, const struct isq_model_tensor *t, uint64_t off, void *dst, size_t n);
void isq_model_release(struct isq_model *m);
/* Sum of element counts / bytes over all tensors. */
uint64_t isq_model_parameters(const struct isq_model *m);
uint64_t isq_model_bytes(const struct isq_model *m);
const struct isq_model_tensor *isq_model_find(const struct isq_model *m, const char *name);
/*
 * Drop the pages of bytes [off, off+len) of tensor t's data from memory once
 * consumed (streaming conversions keep a flat RSS); a no-op for inputs that
 * are not memory-mapped.
 */
void isq_model_drop(const struct isq_model *m, const struct isq_model_tensor *t, uint64_t off, uint64_t len);
/* Whether t's bytes lie in a read-only file mapping (so that isq_pages_drop may drop them). */
int isq_model_mapped(const struct isq_model *m, const struct isq_model_tensor *t);

#endif
