/*
 * topology.h - mistral.rs's topology files: a type per layer range or per
 * tensor-name pattern (isq-quantize --topology).
 *
 * The file is a YAML map (parsed with libyaml).  Each key is a selector,
 * each value a map with the optional keys `isq` (a type or a numeric
 * shorthand, as -t takes, but no mixture) and `device` (`cpu`, `cuda[N]` or
 * `metal[N]`: checked, then ignored, since isq places nothing on devices):
 *
 *   0-16:                 # layers 0 to 15: the end is exclusive
 *     isq: q4k
 *   12:                   # layer 12 alone
 *     isq: q6k
 *   '/self_attn\.v_proj/':
 *     isq: q8_0
 *
 * Selectors, as mistral.rs (mistralrs-core/src/topology) reads them:
 *   - `A-B` is the half-open range of layers [A, B); B <= A is an error;
 *   - `N` is the one layer N;
 *   - `/RE/` is a regular expression (PCRE2 syntax, unanchored) matched
 *     against the tensor name (the checkpoint's, "model.layers.3.mlp.
 *     down_proj.weight"; a GGUF output name too when the caller gives one).
 * A tensor's layer is the N of a "layers.N" or "h.N" name segment (or
 * GGUF's "blk.N").
 *
 * Resolution: the last regex entry (in file order) that matches wins; when
 * none matches, the range entry covering the layer wins, where of two
 * overlapping ranges the one with the larger end wins, and of two with the
 * same end the one declared later (mistral.rs applies ranges sorted by end,
 * then by declaration).  The winning entry's `isq` is the tensor's type;
 * a winner without `isq` means "the default type" (it still shadows the
 * entries it beats).  A tensor no entry matches gets the default type too.
 *
 * Stricter than mistral.rs, which ignores them: unknown keys, duplicate
 * selectors and duplicate keys are errors.  Every error is one line that
 * starts with the file name and line: "topo.yml:7: unknown key 'isqq'".
 */
#ifndef ISQ_TOPOLOGY_H
#define ISQ_TOPOLOGY_H

#include "plan.h"

struct isq_topology;

/*
 * Parse a topology from text[0..len) (need not be NUL-terminated); name is
 * the file name the messages start with.  Shorthands resolve for target, as
 * -t's do.  *out gets a new topology (free with isq_topology_free), or NULL
 * on error: ISQ_EFORMAT (YAML syntax, a bad selector, range, regex, type or
 * device, an unknown or repeated key) or ISQ_ENOMEM, with the message in *e.
 */
int isq_topology_parse(struct isq_topology **out, const char *text, size_t len, const char *name,
		       enum isq_target target, struct isq_errbuf *e);
/* Read the file at path and parse it (errors as above, plus the reading's). */
int isq_topology_load(struct isq_topology **out, const char *path, enum isq_target target, struct isq_errbuf *e);
void isq_topology_free(struct isq_topology *t);

/* Number of entries (selectors) in the file. */
size_t isq_topology_count(const struct isq_topology *t);

/*
 * The entry that decides tensor `name` (also tried: `alt`, may be NULL),
 * in layer `layer` (-1: none; see isq_topology_layer_of).  Returns the
 * entry's line in the file (>= 1) and its type in *type (ISQ_TYPE_NONE
 * when the entry has no `isq`), or 0 when no entry applies.
 */
int isq_topology_lookup(const struct isq_topology *t, const char *name, const char *alt, int layer,
			enum isq_type *type);

/* The layer of a tensor name: N of a "layers.N", "h.N" or "blk.N" segment; -1 if none. */
int isq_topology_layer_of(const char *name);

#endif
