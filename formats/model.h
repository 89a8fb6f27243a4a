/*
 * model.h - one view of a model's tensors, whatever the container.
 *
 * Opens a safetensors file, a sharded or single-file Hugging Face directory,
 * or a GGUF file, and lists its tensors uniformly: name, element type,
 * row-major shape (outermost first, as safetensors writes it; GGUF's ne is
 * reversed into this order), byte length and a zero-copy view of the data.
 * For a HF directory the config.json beside the weights is parsed when
 * present; for GGUF the architecture comes from general.architecture.
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
	struct isq_errbuf err;
	void *priv; /* private: the input map */
};

/*
 * Open PATH ("-" reads standard input; GGUF or safetensors by magic).
 * A config.json that is present but broken is an error; an absent one is not.
 * Returns 0 or a negative status with the message in m->err.
 */
int isq_model_open(struct isq_model *m, const char *path);
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

#endif
