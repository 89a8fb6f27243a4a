/*
 * hparams.h - hyperparameters to and from GGUF metadata (llama.cpp's keys,
 * /work/shared/docs/llamacpp-notes.md §4.2), prefixed by the architecture:
 * "llama.embedding_length", "qwen2.attention.head_count_kv", ...
 */
#ifndef ISQ_HPARAMS_H
#define ISQ_HPARAMS_H

#include "config.h"
#include "gguf.h"

/* general.architecture, general.name and the hyperparameter keys for hp->gguf_arch. */
int isq_hparams_to_gguf(const struct isq_hparams *hp, const char *name, struct isq_gguf_writer *w);

/*
 * The reverse, for GGUF files from llama.cpp or isq: fills hp from
 * general.architecture and its keys (defaults as llama.cpp applies them).
 * ISQ_EUNSUPPORTED for an architecture isq does not know, ISQ_EFORMAT when a
 * required key is missing.
 */
int isq_hparams_from_gguf(const struct isq_gguf *g, struct isq_hparams *hp, struct isq_errbuf *e);

#endif
