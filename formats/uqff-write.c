/* uqff-write.c - writing UQFF 1.2 directories, and archiving them (layout in uqff.h). */
#include "uqff.h"
#include "uqff-impl.h"
#include "fp.h"

#include <archive.h>
#include <archive_entry.h>
#include <cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

/* Order of the Rust serializer: dtype descending, then name ascending (bytes). */
static int data_order(enum isq_st_dtype da, const char *na, enum isq_st_dtype db, const char *nb)
{
	int ra = isq_uqff_dtype_rank(da), rb = isq_uqff_dtype_rank(db);
	if (ra != rb)
		return ra > rb ? -1 : 1;
	return strcmp(na, nb);
}

/* ---- staged paths, removed on a signal ------------------------------------------------------------ */

/*
 * Blocks of recorded paths, linked and never moved, so that a signal
 * handler (in any thread) can walk them while the writer adds more: an
 * entry's path is stored before the count that publishes it.
 */
#define STAGE_BLOCK 64
struct stage_block {
	char *path[STAGE_BLOCK];
	unsigned char is_dir[STAGE_BLOCK];
	volatile sig_atomic_t n;
	struct stage_block *volatile next;
};
static struct stage_block stage_head;
static volatile sig_atomic_t stage_active; /* 0 while forgetting: the handler leaves the table alone */

int isq_uqff_stage_add(const char *path, int is_dir)
{
	struct stage_block *b = &stage_head;
	while (b->n == STAGE_BLOCK) {
		if (!b->next) {
			struct stage_block *nb = calloc(1, sizeof(*nb));
			if (!nb)
				return ISQ_ENOMEM;
			__atomic_store_n(&b->next, nb, __ATOMIC_RELEASE);
		}
		b = b->next;
	}
	char *copy = isq_strdup(path);
	if (!copy)
		return ISQ_ENOMEM;
	int i = b->n;
	b->path[i] = copy;
	b->is_dir[i] = (unsigned char)!!is_dir;
	__atomic_store_n(&b->n, i + 1, __ATOMIC_RELEASE);
	stage_active = 1;
	return 0;
}

static size_t stage_count(void)
{
	size_t n = 0;
	for (const struct stage_block *b = &stage_head; b; b = b->next)
		n += (size_t)b->n;
	return n;
}

/* Forget all but the first keep entries (the writer keeps what its caller recorded). */
static void stage_truncate(size_t keep)
{
	struct stage_block *b = &stage_head;
	for (; b; b = b->next) {
		int n = b->n, k = keep >= (size_t)n ? n : (int)keep;
		keep -= (size_t)k;
		b->n = k; /* unpublish first, then free */
		for (int i = k; i < n; i++) {
			free(b->path[i]);
			b->path[i] = NULL;
		}
	}
	stage_active = stage_count() > 0;
}

void isq_uqff_stage_forget(void)
{
	stage_truncate(0);
}

void isq_uqff_stage_cleanup(void)
{
	if (!stage_active)
		return;
	stage_active = 0;
	/* files first, then the directories that held them, the newest (innermost) first */
	for (const struct stage_block *b = &stage_head; b; b = b->next)
		for (int i = 0; i < b->n; i++)
			if (b->path[i] && !b->is_dir[i])
				unlink(b->path[i]);
	int nblocks = 0;
	for (const struct stage_block *b = &stage_head; b; b = b->next)
		nblocks++;
	for (int k = nblocks - 1; k >= 0; k--) {
		const struct stage_block *b = &stage_head;
		for (int j = 0; j < k; j++) /* blocks are few: rescanning is fine */
			b = b->next;
		for (int i = b->n - 1; i >= 0; i--)
			if (b->path[i] && b->is_dir[i])
				rmdir(b->path[i]);
	}
}

#define N_STAGE_SIGS 3
static const int stage_sigs[N_STAGE_SIGS] = { SIGINT, SIGTERM, SIGHUP };
static struct sigaction stage_old[N_STAGE_SIGS];

static void on_stage_signal(int sig)
{
	isq_uqff_stage_cleanup();
	for (int i = 0; i < N_STAGE_SIGS; i++)
		if (stage_sigs[i] == sig && !(stage_old[i].sa_flags & SA_SIGINFO) && stage_old[i].sa_handler != SIG_DFL &&
		    stage_old[i].sa_handler != SIG_IGN) {
			stage_old[i].sa_handler(sig); /* io.c's: removes isq_out temporaries, re-raises */
			return;
		}
	signal(sig, SIG_DFL);
	raise(sig);
}

void isq_uqff_install_signal_handlers(void)
{
	for (int i = 0; i < N_STAGE_SIGS; i++) {
		struct sigaction sa, old;
		if (sigaction(stage_sigs[i], NULL, &old) || old.sa_handler == SIG_IGN || old.sa_handler == on_stage_signal)
			continue;
		stage_old[i] = old;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_stage_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(stage_sigs[i], &sa, NULL);
	}
}

/* Block the signals isq_uqff_install_signal_handlers handles; *old gets the mask to restore. */
static void block_stage_signals(sigset_t *old)
{
	sigset_t block;
	sigemptyset(&block);
	for (int i = 0; i < N_STAGE_SIGS; i++)
		sigaddset(&block, stage_sigs[i]);
	pthread_sigmask(SIG_BLOCK, &block, old);
}

struct isq_pool *isq_uqff_pool_new(int n)
{
	sigset_t old;
	block_stage_signals(&old);
	struct isq_pool *p = isq_pool_new(n);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return p;
}

/* Record staging/name before it is created. */
static int stage_file(const char *staging, const char *name)
{
	struct isq_buf p = ISQ_BUF_INIT;
	int rc = isq_path_join(&p, staging, name);
	rc = rc ? rc : isq_uqff_stage_add(p.data, 0);
	isq_buf_release(&p);
	return rc;
}

/* ---- writing ----------------------------------------------------------------------------------- */

struct witem {
	char *name;
	enum isq_st_dtype dtype;
	int rank;
	int64_t shape[ISQ_MRS_MAX_RANK];
	uint64_t nbytes;
	int shard;
	uint64_t off;   /* absolute offset in the shard file */
};

struct wlayer {
	char *key;
	enum isq_uqff_format fmt;
	struct isq_plan_entry en;       /* what convert.c quantizes (stacked experts: n_src > 1) */
	size_t *srcs;                   /* owned copy for stacked experts */
	enum isq_type requested;        /* after promotion, before the shape fallback */
	char fallback[160];
	long bias;                      /* model tensor index of K.bias, or -1 */
	int rank;
	uint64_t shape[ISQ_MRS_MAX_RANK];
	char gguf_name[128];            /* imatrix lookup; the tensor in from_gguf */
	int permute_heads;              /* llama Q/K: rows permuted in GGUF, this many heads */
	struct isq_mrs_layout mrs;
	size_t item0;
	int nitems;
};

struct wctx {
	const struct isq_uqff_write_opts *o;
	const struct isq_model *m;
	char *staging;
	struct isq_errbuf *e;
	uint64_t bytes;
	char *publish_dir;      /* final directory */
	int fresh;              /* the final directory does not exist: rename the staging dir */
	char **written;         /* file names in staging */
	size_t n_written;
	struct isq_converter conv; /* shared, so that progress adds up over layers and types */
};

static int note_file(struct wctx *w, const char *name)
{
	char **nw = realloc(w->written, (w->n_written + 1) * sizeof(char *));
	if (!nw)
		return isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	w->written = nw;
	nw[w->n_written] = isq_strdup(name);
	if (!nw[w->n_written])
		return isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	w->n_written++;
	return 0;
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t k = pwrite(fd, b, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return errno == ENOSPC || errno == EDQUOT ? ISQ_ENOSPC : ISQ_EIO;
		b += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* "P.experts.N.KIND.weight" -> P, N and the canonical kind; 0 if not a per-expert weight. */
static int expert_parts(const char *name, char *prefix, size_t pn, long *idx, const char **kind)
{
	const char *p = strstr(name, ".experts.");
	if (!p || !isq_uqff_ends_with(name, ".weight"))
		return 0;
	const char *d = p + 9, *q = d;
	while (isdigit((unsigned char)*q))
		q++;
	if (q == d || *q != '.')
		return 0;
	static const char *const map[][2] = { { "w1", "gate_proj" },	 { "w3", "up_proj" },
					      { "w2", "down_proj" },	 { "gate_proj", "gate_proj" },
					      { "up_proj", "up_proj" }, { "down_proj", "down_proj" } };
	size_t kl = strlen(q + 1) - 7;
	*kind = NULL;
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(map); i++)
		if (strlen(map[i][0]) == kl && !strncmp(q + 1, map[i][0], kl))
			*kind = map[i][1];
	if (!*kind)
		return 0;
	snprintf(prefix, pn, "%.*s", (int)(p + 8 - name), name);
	*idx = strtol(d, NULL, 10);
	return 1;
}

static int wlayer_cmp(const void *a, const void *b)
{
	return strcmp(((const struct wlayer *)a)->key, ((const struct wlayer *)b)->key);
}

static enum isq_type sixteen_bit(enum isq_type src)
{
	return src == ISQ_TYPE_BF16 ? ISQ_TYPE_BF16 : ISQ_TYPE_F16;
}

/* The tracked layers of a plan: every quantized entry, experts stacked, keys ascending. */
static int build_layers(struct wctx *w, const struct isq_plan *p, struct wlayer **out, size_t *n_out)
{
	const struct isq_model *m = w->m;
	struct wlayer *L = calloc(p->n ? p->n : 1, sizeof(*L));
	size_t n = 0;
	if (!L)
		return isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	*out = L;
	*n_out = p->n; /* until the end: entries past the last built one are zero, free_layers may run over all */
	for (size_t i = 0; i < p->n; i++) {
		const struct isq_plan_entry *en = &p->entries[i];
		if (!en->quantize || !isq_uqff_ends_with(en->name, ".weight"))
			continue;
		char prefix[256];
		long ex;
		const char *kind;
		struct wlayer *l = &L[n];
		l->en = *en;
		l->bias = -1;
		l->requested = en->requested;
		snprintf(l->fallback, sizeof(l->fallback), "%s", en->fallback);
		if (expert_parts(en->name, prefix, sizeof(prefix), &ex, &kind)) {
			if (ex != 0)
				continue; /* gathered with expert 0 */
			size_t cap = 8;
			l->srcs = malloc(cap * sizeof(size_t));
			if (!l->srcs)
				return isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
			const struct isq_model_tensor *t0 = &m->tensors[en->src];
			size_t plen = strlen(prefix);
			const char *tail = en->name + plen + 1;
			while (isdigit((unsigned char)*tail))
				tail++;
			for (long k = 0;; k++) {
				char nm[512];
				snprintf(nm, sizeof(nm), "%s.%ld%s", prefix, k, tail);
				const struct isq_model_tensor *x = isq_model_find(m, nm);
				if (!x)
					break;
				if (x->n_dims != 2 || x->shape[0] != t0->shape[0] || x->shape[1] != t0->shape[1] ||
				    x->type != t0->type)
					return isq_errbuf_set(w->e, ISQ_EFORMAT, "tensor '%s': shape or type differs from expert 0", nm);
				if ((size_t)k == cap) {
					size_t *ns = realloc(l->srcs, 2 * cap * sizeof(size_t));
					if (!ns)
						return isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
					l->srcs = ns;
					cap *= 2;
				}
				l->srcs[k] = (size_t)(x - m->tensors);
				l->en.n_src = (int)k + 1;
			}
			l->en.srcs = l->srcs;
			l->en.n_dims = 3;
			l->en.ne[2] = l->en.n_src;
			/* corrections.md: stacked experts asked for HQQ, FP8 or F8Q8 fall back */
			enum isq_type t = l->en.type;
			if (t == ISQ_TYPE_HQQ4 || t == ISQ_TYPE_HQQ8 || t == ISQ_TYPE_FP8 || t == ISQ_TYPE_F8Q8) {
				l->en.type = l->en.ne[0] % 32 == 0 ? ISQ_TYPE_Q8_0 : sixteen_bit(l->en.src_type);
				snprintf(l->fallback, sizeof(l->fallback), "%s cannot hold stacked experts", isq_type_name(t));
			}
			size_t kl = strlen(prefix) + strlen(kind) + 2;
			l->key = malloc(kl);
			if (!l->key)
				return isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
			snprintf(l->key, kl, "%s.%s", prefix, kind);
			int layer;
			isq_name_role(en->name, &layer);
			snprintf(l->gguf_name, sizeof(l->gguf_name), "blk.%d.ffn_%s_exps.weight", layer,
				 !strcmp(kind, "gate_proj") ? "gate" : !strcmp(kind, "up_proj") ? "up" : "down");
		} else {
			size_t kl = strlen(en->name) - 7;
			l->key = malloc(kl + 1);
			if (!l->key)
				return isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
			memcpy(l->key, en->name, kl);
			l->key[kl] = '\0';
			char bn[512];
			snprintf(bn, sizeof(bn), "%s.bias", l->key);
			const struct isq_model_tensor *b = isq_model_find(m, bn);
			if (b && b->n_dims == 1 && b->shape[0] == en->ne[1] && isq_uqff_float_of_st(isq_uqff_st_of_float((enum isq_type)b->type)) == b->type)
				l->bias = (long)(b - m->tensors);
			if (isq_name_hf_to_gguf(en->name, l->gguf_name, sizeof(l->gguf_name)))
				l->gguf_name[0] = '\0';
			/* isq-quantize permutes these rows for llama.cpp's RoPE: a GGUF source needs them back */
			if (m->have_config && m->hp.gguf_arch && !strcmp(m->hp.gguf_arch, "llama"))
				l->permute_heads = en->role == ISQ_ROLE_ATTN_Q	 ? (int)m->hp.n_heads
						   : en->role == ISQ_ROLE_ATTN_K ? (int)m->hp.n_kv_heads
										 : 0;
		}
		n++;
		l->rank = l->en.n_dims;
		for (int d = 0; d < l->rank; d++)
			l->shape[d] = (uint64_t)l->en.ne[l->rank - 1 - d];
		int fmt = isq_uqff_format_of(l->en.type);
		if (fmt < 0)
			return isq_errbuf_set(w->e, ISQ_EUNSUPPORTED,
					      "tensor '%s': type '%s' cannot be stored in UQFF, which mistral.rs would refuse (use --format gguf)",
					      en->name, isq_type_name(l->en.type));
		l->fmt = (enum isq_uqff_format)fmt;
		if (fmt >= ISQ_UQFF_HQQ) {
			struct isq_mrs_params mp = { .group_size = 64,
						     .scale_dtype = l->en.src_type == ISQ_TYPE_F16 ? ISQ_MRS_F16 : ISQ_MRS_BF16 };
			struct isq_errbuf me = { 0 };
			if (isq_mrs_plan(&l->mrs, l->en.type, l->rank, l->shape, &mp, &me))
				return isq_errbuf_set(w->e, me.code, "tensor '%s': %s", en->name, isq_errbuf_msg(&me));
		}
	}
	*n_out = n;
	qsort(L, n, sizeof(*L), wlayer_cmp);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(L[i - 1].key, L[i].key))
			return isq_errbuf_set(w->e, ISQ_EFORMAT, "two tensors map to layer '%s'", L[i].key);
	return 0;
}

static void free_layers(struct wlayer *L, size_t n)
{
	for (size_t i = 0; L && i < n; i++) {
		free(L[i].key);
		free(L[i].srcs);
	}
	free(L);
}

static int add_item(struct witem **items, size_t *n, size_t *cap, const char *key, const char *suffix,
		    enum isq_st_dtype dt, int rank, const uint64_t *shape)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		struct witem *ni = realloc(*items, *cap * sizeof(*ni));
		if (!ni)
			return ISQ_ENOMEM;
		*items = ni;
	}
	struct witem *it = &(*items)[*n];
	memset(it, 0, sizeof(*it));
	size_t len = (key ? strlen(key) + 1 : 0) + strlen(suffix) + 1;
	it->name = malloc(len);
	if (!it->name)
		return ISQ_ENOMEM;
	snprintf(it->name, len, "%s%s%s", key ? key : "", key ? "." : "", suffix);
	it->dtype = dt;
	it->rank = rank;
	uint64_t ne = 1;
	for (int d = 0; d < rank; d++) {
		it->shape[d] = (int64_t)shape[d];
		ne *= shape[d];
	}
	isq_st_dtype_nbytes(dt, ne, &it->nbytes);
	(*n)++;
	return 0;
}

/* The tensors of each layer, in the order mistral.rs's serialize_uqff produces them. */
static int layer_items(const struct isq_model *m, struct wlayer *l, struct witem **items, size_t *n, size_t *cap)
{
	uint64_t one = 1, rk = (uint64_t)l->rank;
	int rc = 0;
	l->item0 = *n;
	switch (l->fmt) {
	case ISQ_UQFF_GGUF: {
		uint64_t rb, rows = 1;
		isq_type_row_size(l->en.type, l->shape[l->rank - 1], &rb);
		for (int d = 0; d < l->rank - 1; d++)
			rows *= l->shape[d];
		uint64_t nb = rb * rows;
		rc = rc ? rc : add_item(items, n, cap, l->key, "weight.format", ISQ_ST_U8, 0, &one);
		rc = rc ? rc : add_item(items, n, cap, l->key, "weight", ISQ_ST_U8, 1, &nb);
		rc = rc ? rc : add_item(items, n, cap, l->key, "weight.dtype", ISQ_ST_U32, 0, &one);
		rc = rc ? rc : add_item(items, n, cap, l->key, "weight.shape", ISQ_ST_U32, 1, &rk);
		break;
	}
	case ISQ_UQFF_UNQUANT:
		rc = rc ? rc : add_item(items, n, cap, l->key, "weight.format", ISQ_ST_U8, 0, &one);
		rc = rc ? rc : add_item(items, n, cap, l->key, "weight", isq_uqff_st_of_float(l->en.type), l->rank, l->shape);
		break;
	default:
		for (int i = 0; i < l->mrs.ntensors && !rc; i++)
			rc = add_item(items, n, cap, l->key, l->mrs.t[i].suffix, isq_uqff_st_of_mrs(l->mrs.t[i].dtype), l->mrs.t[i].rank,
				      l->mrs.t[i].shape);
	}
	if (!rc && l->bias >= 0) {
		/* GGUF layers carry an F32 bias (mistral.rs converts it), HQQ its scale dtype F32 */
		enum isq_st_dtype bd = l->fmt == ISQ_UQFF_GGUF || l->fmt == ISQ_UQFF_HQQ ? ISQ_ST_F32
				     : l->fmt == ISQ_UQFF_UNQUANT ? isq_uqff_st_of_float(l->en.type)
								    : isq_uqff_st_of_float((enum isq_type)m->tensors[l->bias].type);
		uint64_t out = l->shape[0];
		rc = add_item(items, n, cap, l->key, "bias", bd, 1, &out);
	}
	l->nitems = (int)(*n - l->item0);
	return rc;
}

static int shard_order_cmp(const void *a, const void *b)
{
	const struct witem *x = *(const struct witem *const *)a, *y = *(const struct witem *const *)b;
	return data_order(x->dtype, x->name, y->dtype, y->name);
}

/* Write the header of one safetensors file listing items (sorted here) and size it; sets each off. */
static int open_st_file(struct wctx *w, const char *name, struct witem **list, size_t n, int *fd_out)
{
	qsort(list, n, sizeof(*list), shard_order_cmp);
	struct isq_st_writer *sw = isq_st_writer_new();
	struct isq_buf hdr = ISQ_BUF_INIT;
	struct isq_out mo;
	int rc = sw ? 0 : isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	rc = rc ? rc : isq_st_writer_meta(sw, "uqff.producer", "isq");
	rc = rc ? rc : isq_st_writer_meta(sw, "uqff.version", "1.2.0");
	rc = rc ? rc : isq_st_writer_meta(sw, "uqff.producer.isq.version", ISQ_VERSION);
	for (size_t i = 0; i < n && !rc; i++)
		rc = isq_st_writer_add(sw, list[i]->name, list[i]->dtype, list[i]->rank, list[i]->shape);
	if (!rc) {
		isq_out_open_memory(&mo, &hdr);
		rc = isq_st_writer_begin(sw, &mo);
	}
	if (rc && sw)
		isq_errbuf_set(w->e, rc, "%s: %s", name, isq_st_writer_errmsg(sw));
	isq_st_writer_free(sw);
	if (rc) {
		isq_buf_release(&hdr);
		return rc;
	}
	uint64_t off = hdr.len;
	for (size_t i = 0; i < n; i++) {
		list[i]->off = off;
		off += list[i]->nbytes;
	}
	struct isq_buf path = ISQ_BUF_INIT;
	isq_path_join(&path, w->staging, name);
	int fd = -1;
	if (stage_file(w->staging, name))
		rc = isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	else if ((fd = open(path.data, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0666)) < 0)
		rc = isq_errbuf_set(w->e, ISQ_EIO, "%s: %s", path.data, strerror(errno));
	if (!rc && (rc = pwrite_all(fd, hdr.data, hdr.len, 0)))
		isq_errbuf_set(w->e, rc, "%s: %s", path.data, strerror(errno));
	if (!rc && ftruncate(fd, (off_t)off))
		rc = isq_errbuf_set(w->e, errno == ENOSPC ? ISQ_ENOSPC : ISQ_EIO, "%s: %s", path.data, strerror(errno));
	if (rc && fd >= 0)
		close(fd);
	isq_buf_release(&path);
	isq_buf_release(&hdr);
	if (!rc) {
		rc = note_file(w, name);
		w->bytes += off;
		*fd_out = fd;
	}
	return rc;
}

struct sink_ctx {
	int fd;
	uint64_t off;
	int rc;
};

static int file_sink(void *ctx, const void *data, size_t n)
{
	struct sink_ctx *s = ctx;
	int rc = pwrite_all(s->fd, data, n, s->off);
	s->off += n;
	if (rc)
		s->rc = rc;
	return rc;
}

struct mrs_job {
	const struct isq_mrs_layout *l;
	const float *src, *imp;
	uint64_t imp_len;
};

static void mrs_worker(void *ctx, int64_t begin, int64_t end, int worker)
{
	const struct mrs_job *j = ctx;
	isq_mrs_quantize_units(j->l, j->src, j->imp, j->imp_len, (uint64_t)begin, (uint64_t)end);
}

static const struct isq_imatrix_entry *find_importance(const struct isq_imatrix *im, const struct wlayer *l)
{
	if (!im)
		return NULL;
	const struct isq_imatrix_entry *ie = l->gguf_name[0] ? isq_imatrix_find(im, l->gguf_name) : NULL;
	return ie ? ie : isq_imatrix_find(im, l->en.src_name);
}

/* Convert a float source tensor to dtype dt (F32/F16/BF16) into a new buffer. */
static void *float_copy(const struct isq_model_tensor *t, enum isq_st_dtype dt, uint64_t *nbytes)
{
	float *f = isq_mallocarray((size_t)t->n_elements ? (size_t)t->n_elements : 1, sizeof(float));
	if (!f || isq_tensor_rows_to_f32(t, 0, t->n_dims ? t->n_elements / (uint64_t)t->shape[t->n_dims - 1] : 1, f)) {
		free(f);
		return NULL;
	}
	size_t n = (size_t)t->n_elements;
	if (dt == ISQ_ST_F32) {
		*nbytes = n * 4;
		return f;
	}
	uint16_t *h = isq_mallocarray(n ? n : 1, 2);
	if (h) {
		if (dt == ISQ_ST_F16)
			isq_fp32_to_fp16_row(f, h, n);
		else
			isq_fp32_to_bf16_row(f, h, n);
	}
	free(f);
	*nbytes = n * 2;
	return h;
}

/* Output row r of a permuted Q/K tensor comes from this source row (convert.c's map). */
static int64_t perm_row(int64_t r, int64_t rows, int heads)
{
	int64_t hd = rows / heads, h = r / hd, j = r % hd;
	return h * hd + (j % 2 ? j / 2 + hd / 2 : j / 2);
}

/* The GGUF tensor of a layer, checked against the plan's type and size. */
static const struct isq_model_tensor *gguf_tensor(const struct isq_model *g, const struct wlayer *l, uint64_t nbytes,
						  struct isq_errbuf *e)
{
	const struct isq_model_tensor *t = l->gguf_name[0] ? isq_model_find(g, l->gguf_name) : NULL;
	if (!t)
		t = isq_model_find(g, l->en.src_name);
	if (!t) {
		isq_errbuf_set(e, ISQ_EINVAL, "%s: no tensor '%s' for layer '%s'", g->path, l->gguf_name, l->key);
		return NULL;
	}
	if (t->type != (int)l->en.type || t->nbytes != nbytes) {
		isq_errbuf_set(e, ISQ_EINVAL, "%s: tensor '%s' is %s, the plan for '%s' says %s", g->path, t->name, t->type_name,
			       l->key, isq_type_name(l->en.type));
		return NULL;
	}
	return t;
}

static int copy_from_gguf(struct wctx *w, const struct wlayer *l, const struct witem *it, int fd)
{
	const struct isq_model_tensor *t = gguf_tensor(w->o->from_gguf, l, it->nbytes, w->e);
	if (!t)
		return w->e->code;
	int rc;
	if (!l->permute_heads) {
		rc = pwrite_all(fd, t->data, (size_t)t->nbytes, it->off);
	} else {
		int64_t rows = (int64_t)l->shape[0];
		uint64_t rb = t->nbytes / (uint64_t)rows;
		rc = 0;
		/* GGUF row r holds checkpoint row perm_row(r) */
		for (int64_t r = 0; r < rows && !rc; r++)
			rc = pwrite_all(fd, t->data + (uint64_t)r * rb, (size_t)rb,
					it->off + (uint64_t)perm_row(r, rows, l->permute_heads) * rb);
	}
	if (rc)
		return isq_errbuf_set(w->e, rc, "%s: write failed: %s", w->staging, strerror(errno));
	if (w->o->progress) {
		w->conv.progress_done += t->nbytes;
		isq_progress_update(w->o->progress, w->conv.progress_done);
	}
	return 0;
}

static int write_layer(struct wctx *w, struct wlayer *l, struct witem *items, const int *fds)
{
	const struct isq_uqff_write_opts *o = w->o;
	struct isq_errbuf *e = w->e;
	int rc = 0;
	for (int i = 0; i < l->nitems && !rc; i++) {
		struct witem *it = &items[l->item0 + (size_t)i];
		const char *suf = it->name + strlen(l->key) + 1;
		int fd = fds[it->shard];
		uint8_t small[4 * ISQ_MRS_MAX_RANK];
		if (!strcmp(suf, "weight.format") && l->fmt < ISQ_UQFF_HQQ) {
			small[0] = (uint8_t)l->fmt;
			rc = pwrite_all(fd, small, 1, it->off);
		} else if (!strcmp(suf, "weight.dtype") && l->fmt == ISQ_UQFF_GGUF) {
			isq_put_le32(small, (uint32_t)l->en.type);
			rc = pwrite_all(fd, small, 4, it->off);
		} else if (!strcmp(suf, "weight.shape") && l->fmt == ISQ_UQFF_GGUF) {
			for (int d = 0; d < l->rank; d++)
				isq_put_le32(small + 4 * d, (uint32_t)l->shape[d]);
			rc = pwrite_all(fd, small, 4 * (size_t)l->rank, it->off);
		} else if (!strcmp(suf, "weight") && l->fmt <= ISQ_UQFF_UNQUANT && o->from_gguf) {
			rc = copy_from_gguf(w, l, it, fd);
			if (rc)
				return rc;
		} else if (!strcmp(suf, "weight") && l->fmt <= ISQ_UQFF_UNQUANT) {
			struct isq_converter *conv = &w->conv;
			struct sink_ctx sc = { .fd = fd, .off = it->off };
			struct isq_plan_entry en = l->en;
			/* convert.c looks the imatrix up by the entry's names: give it the GGUF name */
			if (l->gguf_name[0] && strlen(l->gguf_name) < sizeof(en.name))
				memcpy(en.name, l->gguf_name, strlen(l->gguf_name) + 1);
			rc = isq_convert_entry(conv, &en, file_sink, &sc, NULL);
			if (rc && sc.rc)
				return isq_errbuf_set(e, sc.rc, "%s: write failed: %s", w->staging, strerror(errno));
			if (rc)
				return isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&conv->err));
			if (sc.off != it->off + it->nbytes)
				return isq_errbuf_set(e, ISQ_EINVAL, "tensor '%s': %llu bytes produced, %llu planned", it->name,
						      (unsigned long long)(sc.off - it->off), (unsigned long long)it->nbytes);
		} else if (!strcmp(suf, "bias")) {
			const struct isq_model_tensor *bt = &w->m->tensors[l->bias];
			enum isq_st_dtype dt = it->dtype;
			uint64_t nb = 0;
			void *buf = float_copy(bt, dt, &nb);
			if (!buf)
				return isq_errbuf_set(e, ISQ_ENOMEM, "tensor '%s': cannot widen the bias", bt->name);
			rc = pwrite_all(fd, buf, (size_t)nb, it->off);
			free(buf);
		}
		if (rc)
			return isq_errbuf_set(e, rc, "%s: write failed: %s", w->staging, strerror(errno));
	}
	if (l->fmt < ISQ_UQFF_HQQ)
		return 0;
	if (o->from_gguf)
		return isq_errbuf_set(e, ISQ_EINVAL, "layer '%s': %s has no GGML type, a GGUF cannot hold it", l->key,
				      isq_type_name(l->en.type));

	/* mistral.rs's own formats: the whole tensor in memory, quantized by units on the pool */
	uint64_t numel = 1;
	for (int d = 0; d < l->rank; d++)
		numel *= l->shape[d];
	float *x = isq_mallocarray((size_t)numel, sizeof(float));
	float *imp = NULL;
	uint64_t imp_len = 0;
	struct isq_mrs_layout lay = l->mrs;
	for (int i = 0; i < lay.ntensors; i++)
		lay.t[i].data = NULL;
	if (!x)
		return isq_errbuf_set(e, ISQ_ENOMEM, "tensor '%s': %llu floats", l->key, (unsigned long long)numel);
	uint64_t per = numel / (uint64_t)l->en.n_src, done = 0;
	for (int s = 0; s < l->en.n_src && !rc; s++) {
		const struct isq_model_tensor *t = &w->m->tensors[l->en.n_src > 1 ? l->en.srcs[s] : l->en.src];
		int64_t rows = (int64_t)(per / l->shape[l->rank - 1]);
		if (isq_tensor_rows_to_f32(t, 0, rows, x + done))
			rc = isq_errbuf_set(e, ISQ_EUNSUPPORTED, "tensor '%s': cannot decode %s", t->name, t->type_name);
		done += per;
		if (o->progress) {
			w->conv.progress_done += t->nbytes;
			isq_progress_update(o->progress, w->conv.progress_done);
		}
	}
	const struct isq_imatrix_entry *ie = rc ? NULL : find_importance(o->imatrix, l);
	if (ie) {
		int64_t nm = ie->n_mat == l->en.n_src ? ie->n_mat : 1;
		if (ie->n_per_row != (int64_t)l->shape[l->rank - 1] || (ie->n_mat != 1 && ie->n_mat != l->en.n_src)) {
			rc = isq_errbuf_set(e, ISQ_EINVAL, "tensor '%s': imatrix entry '%s' has %lld x %lld values", l->key,
					    ie->name, (long long)ie->n_mat, (long long)ie->n_per_row);
		} else {
			imp_len = (uint64_t)(nm * ie->n_per_row);
			imp = isq_mallocarray((size_t)imp_len, sizeof(float));
			if (!imp)
				rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
			for (int64_t k = 0; k < nm && !rc; k++)
				isq_imatrix_importance(ie, k, imp + k * ie->n_per_row);
			if (nm > 1 && l->rank != 3)
				imp_len = (uint64_t)ie->n_per_row;
		}
	}
	for (int i = 0; i < lay.ntensors && !rc; i++) {
		lay.t[i].data = malloc(lay.t[i].nbytes ? (size_t)lay.t[i].nbytes : 1);
		if (!lay.t[i].data)
			rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	}
	if (!rc) {
		struct isq_errbuf qe = { 0 };
		rc = isq_mrs_quantize_begin(&lay, x, imp, imp_len, &qe);
		if (rc) {
			isq_errbuf_set(e, rc, "tensor '%s': %s", l->en.src_name, isq_errbuf_msg(&qe));
		} else {
			struct mrs_job j = { &lay, x, imp, imp_len };
			uint64_t units = isq_mrs_units(&lay);
			if (o->pool)
				isq_pool_for(o->pool, (int64_t)units, 1, mrs_worker, &j);
			else
				mrs_worker(&j, 0, (int64_t)units, 0);
		}
	}
	for (int i = 0; i < lay.ntensors && !rc; i++) {
		struct witem *it = &items[l->item0 + (size_t)i];
		rc = pwrite_all(fds[it->shard], lay.t[i].data, (size_t)lay.t[i].nbytes, it->off);
		if (rc)
			isq_errbuf_set(e, rc, "%s: write failed: %s", w->staging, strerror(errno));
	}
	for (int i = 0; i < lay.ntensors; i++)
		free(lay.t[i].data);
	free(imp);
	free(x);
	return rc;
}

struct type_result {
	const char *label;
	char **shards;
	int n_shards;
};

/* One output type: layers, shard cut, headers, then every layer's bytes. */
static int write_type(struct wctx *w, const struct isq_plan *p, const char *stem, struct wlayer **Lout,
		      size_t *nL, struct type_result *tr)
{
	const struct isq_uqff_write_opts *o = w->o;
	uint64_t cap_bytes = o->shard_size ? o->shard_size : ISQ_UQFF_DEFAULT_SHARD_SIZE;
	struct witem *items = NULL;
	size_t n = 0, cap = 0;
	int *fds = NULL, nshards = 0;
	int rc = build_layers(w, p, Lout, nL);
	struct wlayer *L = *Lout;
	uint64_t one = 1;
	for (int v = 0; v < 3 && !rc; v++)
		if (add_item(&items, &n, &cap, NULL, isq_uqff_version_keys[v], ISQ_ST_U32, 0, &one))
			rc = isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	for (size_t i = 0; i < *nL && !rc; i++)
		if (layer_items(w->m, &L[i], &items, &n, &cap))
			rc = isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	/* mistral.rs's cut: by data bytes, the version scalars counted in the first shard */
	uint64_t cur = 0;
	size_t cur_n = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (cur_n && cur + items[i].nbytes > cap_bytes) {
			nshards++;
			cur = 0;
			cur_n = 0;
		}
		items[i].shard = nshards;
		cur += items[i].nbytes;
		cur_n++;
		if (cur >= cap_bytes) {
			nshards++;
			cur = 0;
			cur_n = 0;
		}
	}
	if (cur_n)
		nshards++;
	struct witem **list = rc ? NULL : isq_mallocarray(n ? n : 1, sizeof(*list));
	fds = rc ? NULL : calloc((size_t)(nshards ? nshards : 1), sizeof(int));
	tr->shards = rc ? NULL : calloc((size_t)(nshards ? nshards : 1), sizeof(char *));
	if (!rc && (!list || !fds || !tr->shards))
		rc = isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	for (int s = 0; s < nshards && fds; s++)
		fds[s] = -1;
	for (int s = 0; s < nshards && !rc; s++) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (items[i].shard == s)
				list[k++] = &items[i];
		char name[512];
		snprintf(name, sizeof(name), "%s-%d.uqff", stem, s);
		tr->shards[s] = isq_strdup(name);
		tr->n_shards = s + 1;
		if (!tr->shards[s])
			rc = isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
		else
			rc = open_st_file(w, name, list, k, &fds[s]);
	}
	for (int v = 0; v < 3 && !rc; v++) {
		uint8_t b[4];
		static const uint32_t vals[3] = { ISQ_UQFF_VERSION_MAJOR, ISQ_UQFF_VERSION_MINOR, ISQ_UQFF_VERSION_PATCH };
		isq_put_le32(b, vals[v]);
		if ((rc = pwrite_all(fds[items[v].shard], b, 4, items[v].off)))
			isq_errbuf_set(w->e, rc, "%s: write failed: %s", w->staging, strerror(errno));
	}
	for (size_t i = 0; i < *nL && !rc; i++)
		rc = write_layer(w, &L[i], items, fds);
	for (int s = 0; s < nshards && fds; s++)
		if (fds[s] >= 0) {
			if (!rc && fsync(fds[s]) && errno != EINVAL)
				rc = isq_errbuf_set(w->e, ISQ_EIO, "%s: %s", tr->shards[s], strerror(errno));
			if (close(fds[s]) && !rc)
				rc = isq_errbuf_set(w->e, ISQ_EIO, "%s: %s", tr->shards[s], strerror(errno));
		}
	free(fds);
	free(list);
	for (size_t i = 0; i < n; i++)
		free(items[i].name);
	free(items);
	return rc;
}

static int is_tracked(const char *name, struct wlayer *L, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(L[i].key);
		if (!strncmp(name, L[i].key, kl) && (!strcmp(name + kl, ".weight") || !strcmp(name + kl, ".bias")))
			return 1;
	}
	return 0;
}

struct ritem {
	const struct isq_model_tensor *t;
	enum isq_st_dtype dt;
};

static int ritem_cmp(const void *a, const void *b)
{
	const struct ritem *x = a, *y = b;
	return data_order(x->dt, x->t->name, y->dt, y->t->name);
}

/* residual.safetensors: the plan's other tensors, in their source dtype, minus the layers' own. */
static int write_residual(struct wctx *w, const struct isq_plan *p, struct wlayer *L, size_t nL)
{
	const struct isq_model *m = w->m;
	struct ritem *r = calloc(p->n ? p->n : 1, sizeof(*r));
	size_t n = 0;
	int rc = r ? 0 : isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	for (size_t i = 0; i < p->n && !rc; i++) {
		const struct isq_plan_entry *en = &p->entries[i];
		const struct isq_model_tensor *t = &m->tensors[en->src];
		if (en->quantize || is_tracked(t->name, L, nL) || isq_uqff_ends_with(t->name, "rotary_emb.inv_freq"))
			continue;
		enum isq_st_dtype dt;
		if (isq_st_dtype_parse(t->type_name, &dt)) {
			/* canonical isq names ("bf16"): map through the float types */
			if (t->type == ISQ_TYPE_F32 || t->type == ISQ_TYPE_F16 || t->type == ISQ_TYPE_BF16)
				dt = isq_uqff_st_of_float((enum isq_type)t->type);
			else
				rc = isq_errbuf_set(w->e, ISQ_EUNSUPPORTED, "tensor '%s': type %s cannot go to the residual",
						    t->name, t->type_name);
		}
		r[n].t = t;
		r[n++].dt = dt;
	}
	if (!rc)
		qsort(r, n, sizeof(*r), ritem_cmp);
	struct isq_st_writer *sw = rc ? NULL : isq_st_writer_new();
	if (!rc && !sw)
		rc = isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	rc = rc ? rc : isq_st_writer_meta(sw, "uqff.producer", "isq");
	rc = rc ? rc : isq_st_writer_meta(sw, "uqff.version", "1.2.0");
	rc = rc ? rc : isq_st_writer_meta(sw, "uqff.producer.isq.version", ISQ_VERSION);
	for (size_t i = 0; i < n && !rc; i++)
		rc = isq_st_writer_add(sw, r[i].t->name, r[i].dt, r[i].t->n_dims, r[i].t->shape);
	struct isq_buf path = ISQ_BUF_INIT;
	struct isq_out out;
	memset(&out, 0, sizeof(out));
	isq_path_join(&path, w->staging, "residual.safetensors");
	if (!rc && stage_file(w->staging, "residual.safetensors"))
		rc = isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	if (!rc && (rc = isq_out_open(&out, path.data)))
		isq_errbuf_set(w->e, rc, "%s", isq_errbuf_msg(&out.err));
	else if (!rc)
		rc = isq_st_writer_begin(sw, &out);
	for (size_t i = 0; i < n && !rc; i++)
		rc = isq_st_writer_write(sw, r[i].t->data, (size_t)r[i].t->nbytes);
	rc = rc ? rc : isq_st_writer_finish(sw);
	if (rc && !w->e->code)
		isq_errbuf_set(w->e, rc, "%s: %s", path.data, sw ? isq_st_writer_errmsg(sw) : "");
	if (!rc) {
		w->bytes += out.written;
		if ((rc = isq_out_commit(&out)))
			isq_errbuf_set(w->e, rc, "%s", isq_errbuf_msg(&out.err));
	} else {
		isq_out_abort(&out);
	}
	rc = rc ? rc : note_file(w, "residual.safetensors");
	isq_buf_release(&path);
	isq_st_writer_free(sw);
	free(r);
	return rc;
}

static void strip_quant_config(cJSON *j)
{
	if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
		return;
	cJSON_DeleteItemFromObjectCaseSensitive(j, "quantization_config");
	cJSON *c;
	cJSON_ArrayForEach(c, j)
		strip_quant_config(c);
}

static int write_text(struct wctx *w, const char *name, const void *data, size_t n)
{
	struct isq_buf path = ISQ_BUF_INIT;
	struct isq_out out;
	isq_path_join(&path, w->staging, name);
	if (stage_file(w->staging, name)) {
		isq_buf_release(&path);
		return isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	}
	int rc = isq_out_open(&out, path.data);
	rc = rc ? rc : isq_out_write(&out, data, n);
	rc = rc ? rc : isq_out_commit(&out);
	if (rc) {
		isq_errbuf_set(w->e, rc, "%s", isq_errbuf_msg(&out.err));
		isq_out_abort(&out);
	}
	isq_buf_release(&path);
	w->bytes += rc ? 0 : n;
	return rc ? rc : note_file(w, name);
}

/* config.json without quantization_config, and the tokenizer and chat files, copied. */
static int write_side_files(struct wctx *w)
{
	static const char *const copies[] = { "tokenizer.json",	      "tokenizer_config.json",  "chat_template.jinja",
					      "generation_config.json", "processor_config.json", "preprocessor_config.json" };
	const char *mp = w->m->path;
	char *copy = isq_strdup(mp);
	if (!copy)
		return isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	char *src = isq_is_dir(mp) ? isq_strdup(mp) : isq_strdup(dirname(copy));
	free(copy);
	struct isq_buf p = ISQ_BUF_INIT, text = ISQ_BUF_INIT;
	struct isq_errbuf re = { 0 };
	int rc = src ? 0 : isq_errbuf_set(w->e, ISQ_ENOMEM, NULL);
	if (!rc && !isq_path_join(&p, src, "config.json") && isq_path_exists(p.data)) {
		rc = isq_read_file(p.data, &text, &re);
		if (rc) {
			isq_errbuf_set(w->e, rc, "%s", isq_errbuf_msg(&re));
		} else {
			cJSON *c = cJSON_Parse(text.data);
			char *s = NULL;
			if (c) {
				strip_quant_config(c);
				s = cJSON_Print(c);
				cJSON_Delete(c);
			}
			if (!s)
				rc = isq_errbuf_set(w->e, ISQ_EFORMAT, "%s: not valid JSON", p.data);
			else
				rc = write_text(w, "config.json", s, strlen(s));
			free(s);
		}
	}
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(copies) && !rc; i++) {
		if (isq_path_join(&p, src, copies[i]) || !isq_path_exists(p.data))
			continue;
		rc = isq_read_file(p.data, &text, &re);
		if (rc)
			isq_errbuf_set(w->e, rc, "%s", isq_errbuf_msg(&re));
		else
			rc = write_text(w, copies[i], text.data, text.len);
	}
	isq_buf_release(&p);
	isq_buf_release(&text);
	free(src);
	return rc;
}

static cJSON *shape_json(const uint64_t *shape, int rank)
{
	cJSON *a = cJSON_CreateArray();
	for (int d = 0; d < rank; d++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)shape[d]));
	return a;
}

static const char *stored_label(const struct wlayer *l)
{
	if (l->fmt == ISQ_UQFF_UNQUANT)
		return "unquant";
	return isq_uqff_type_label(l->en.type);
}

static int is_fallback_storage(const char *stored, const char *target)
{
	return strcmp(stored, target) &&
	       (!strcmp(stored, "unquant") || !strcmp(stored, "f32") || !strcmp(stored, "f16") || !strcmp(stored, "bf16"));
}

/* One entry of uqff_report.json's "outputs" (mistral.rs's UqffOutputReport). */
static cJSON *output_json(const char *quant, const struct type_result *tr, const struct wlayer *L, size_t n,
			  int *n_fallbacks)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "quant", quant);
	cJSON *sh = cJSON_AddArrayToObject(o, "shards");
	for (int i = 0; i < tr->n_shards; i++)
		cJSON_AddItemToArray(sh, cJSON_CreateString(tr->shards[i]));
	cJSON_AddNumberToObject(o, "layers", (double)n);
	/* actual_counts: a BTreeMap, so labels ascending */
	const char *seen[64];
	int ns = 0;
	for (size_t i = 0; i < n; i++) {
		const char *s = stored_label(&L[i]);
		int k = 0;
		while (k < ns && strcmp(seen[k], s))
			k++;
		if (k == ns && ns < 64)
			seen[ns++] = s;
	}
	for (int i = 1; i < ns; i++)
		for (int j = i; j > 0 && strcmp(seen[j - 1], seen[j]) > 0; j--) {
			const char *t = seen[j];
			seen[j] = seen[j - 1];
			seen[j - 1] = t;
		}
	cJSON *ac = cJSON_AddObjectToObject(o, "actual_counts");
	for (int k = 0; k < ns; k++) {
		size_t c = 0;
		for (size_t i = 0; i < n; i++)
			c += !strcmp(stored_label(&L[i]), seen[k]);
		cJSON_AddNumberToObject(ac, seen[k], (double)c);
	}
	cJSON *fb = cJSON_CreateArray();
	int nf = 0;
	for (size_t i = 0; i < n; i++) {
		const char *target = isq_uqff_type_label(L[i].requested);
		const char *stored = stored_label(&L[i]);
		/* -t f32 and the like store what was asked for */
		if (!target || L[i].en.type == L[i].requested || !is_fallback_storage(stored, target))
			continue;
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "module", L[i].key);
		cJSON_AddStringToObject(f, "from", target);
		cJSON_AddStringToObject(f, "to", stored);
		cJSON_AddItemToObject(f, "shape", shape_json(L[i].shape, L[i].rank));
		if (L[i].fallback[0])
			cJSON_AddStringToObject(f, "reason", L[i].fallback);
		cJSON_AddItemToArray(fb, f);
		nf++;
	}
	cJSON_AddNumberToObject(o, "fallback_count", nf);
	if (nf)
		cJSON_AddItemToObject(o, "fallbacks", fb);
	else
		cJSON_Delete(fb);
	cJSON *ld = cJSON_AddArrayToObject(o, "layer_details");
	for (size_t i = 0; i < n; i++) {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "module", L[i].key);
		cJSON_AddStringToObject(d, "default_target", quant);
		const char *rt = isq_uqff_type_label(L[i].requested);
		if (rt)
			cJSON_AddStringToObject(d, "resolved_target", rt);
		cJSON_AddStringToObject(d, "stored", stored_label(&L[i]));
		cJSON_AddItemToObject(d, "shape", shape_json(L[i].shape, L[i].rank));
		cJSON_AddItemToArray(ld, d);
	}
	*n_fallbacks += nf;
	return o;
}

static void rm_staging(struct wctx *w)
{
	if (!w->staging)
		return;
	DIR *d = opendir(w->staging);
	struct dirent *de;
	struct isq_buf p = ISQ_BUF_INIT;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && !isq_path_join(&p, w->staging, de->d_name))
			unlink(p.data);
	if (d)
		closedir(d);
	isq_buf_release(&p);
	rmdir(w->staging);
}

/* keep_recorded: the published files and directory, recorded under their final names. */
static int record_published(struct wctx *w)
{
	int rc = 0;
	for (size_t i = 0; i < w->n_written && !rc; i++)
		rc = stage_file(w->publish_dir, w->written[i]);
	rc = rc ? rc : isq_uqff_stage_add(w->publish_dir, 1);
	return rc ? isq_errbuf_set(w->e, ISQ_ENOMEM, NULL) : 0;
}

static int publish_files(struct wctx *w, char *const *stems, int n_stems);

/* Move the staged files into place, with no signal halfway (their names change). */
static int publish(struct wctx *w, char *const *stems, int n_stems)
{
	sigset_t old;
	block_stage_signals(&old);
	int rc = publish_files(w, stems, n_stems);
	if (!rc && w->o->keep_recorded)
		rc = record_published(w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* One rename for a new directory, else file by file. */
static int publish_files(struct wctx *w, char *const *stems, int n_stems)
{
	if (w->fresh) {
		if (rename(w->staging, w->publish_dir))
			return isq_errbuf_set(w->e, ISQ_EIO, "%s: %s", w->publish_dir, strerror(errno));
		mode_t um = umask(0);
		umask(um);
		chmod(w->publish_dir, 0777 & ~um);
		free(w->staging);
		w->staging = NULL;
		return 0;
	}
	struct isq_buf a = ISQ_BUF_INIT, b = ISQ_BUF_INIT;
	int rc = 0;
	/* old shards of the stems we write would join the new set on load, or break its numbering */
	DIR *d = opendir(w->publish_dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!isq_uqff_ends_with(de->d_name, ".uqff"))
			continue;
		long k;
		char *stem = isq_uqff_split_shard_name(de->d_name, &k);
		for (int s = 0; stem && k >= 0 && s < n_stems; s++)
			if (!strcmp(stem, stems[s]) && !isq_path_join(&a, w->publish_dir, de->d_name))
				unlink(a.data);
		free(stem);
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < w->n_written && !rc; i++) {
		isq_path_join(&a, w->staging, w->written[i]);
		isq_path_join(&b, w->publish_dir, w->written[i]);
		if (rename(a.data, b.data))
			rc = isq_errbuf_set(w->e, ISQ_EIO, "%s: %s", b.data, strerror(errno));
	}
	isq_buf_release(&a);
	isq_buf_release(&b);
	if (!rc) {
		rmdir(w->staging);
		free(w->staging);
		w->staging = NULL;
	}
	return rc;
}

int isq_uqff_plans_build(const struct isq_model *m, const struct isq_plan_opts *o, struct isq_plan plans[2], int *n,
			 struct isq_errbuf *e)
{
	*n = 0;
	int rc = isq_plan_build(m, o, &plans[0], e);
	if (rc)
		return rc;
	*n = 1;
	if (plans[0].req.alt_type == ISQ_TYPE_NONE)
		return 0;
	struct isq_plan_opts o2 = *o;
	o2.type = isq_type_name(plans[0].req.alt_type);
	rc = isq_plan_build(m, &o2, &plans[1], e);
	if (rc) {
		isq_plan_release(&plans[0]);
		*n = 0;
		return rc;
	}
	*n = 2;
	return 0;
}

/* Does every quantized layer of plan p have the GGUF's type and size? */
static int plan_matches(const struct isq_model *m, const struct isq_model *g, const struct isq_plan *p,
			struct isq_errbuf *e)
{
	struct wctx w = { .m = m, .e = e };
	struct wlayer *L = NULL;
	size_t n = 0;
	int rc = build_layers(&w, p, &L, &n);
	for (size_t i = 0; i < n && !rc; i++) {
		uint64_t rb, rows = 1;
		if (L[i].fmt > ISQ_UQFF_UNQUANT || isq_type_row_size(L[i].en.type, L[i].shape[L[i].rank - 1], &rb)) {
			rc = isq_errbuf_set(e, ISQ_EINVAL, "layer '%s': %s has no GGML type", L[i].key, isq_type_name(L[i].en.type));
			break;
		}
		for (int d = 0; d < L[i].rank - 1; d++)
			rows *= L[i].shape[d];
		if (!gguf_tensor(g, &L[i], rb * rows, e))
			rc = e->code;
	}
	free_layers(L, n);
	return rc;
}

int isq_uqff_plan_for_gguf(const struct isq_model *m, const struct isq_model *gguf, const struct isq_plan_opts *o,
			   struct isq_plan *plan, struct isq_errbuf *e)
{
	static const char *const names[] = { "f32",    "f16",	 "bf16",   "q4_0",   "q4_1",   "q5_0",	 "q5_1",
					     "q8_0",   "q8_1",	 "q2_k",   "q3_k",   "q4_k",   "q5_k",	 "q6_k",
					     "q8_k",   "mxfp4",	 "q2_k_m", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s",
					     "q4_k_m", "q5_k_s", "q5_k_m" };
	if (gguf->format != ISQ_MODEL_GGUF)
		return isq_errbuf_set(e, ISQ_EINVAL, "%s: not a GGUF file", gguf->path);
	uint64_t ft = 0;
	int have_ft = gguf->gguf && isq_gguf_get_u64(gguf->gguf, "general.file_type", &ft) == 0;
	struct isq_errbuf first = { 0 };
	for (size_t i = 0; i < (o->type ? 1 : ISQ_ARRAY_SIZE(names)); i++)
		for (int pure = o->type ? o->pure : 0; pure <= (o->type ? o->pure : 1); pure++) {
			struct isq_plan_opts po = *o;
			po.type = o->type ? o->type : names[i];
			po.pure = pure;
			po.format = ISQ_FORMAT_UQFF;
			struct isq_errbuf pe = { 0 };
			if (isq_plan_build(m, &po, plan, &pe)) {
				if (o->type)
					return isq_errbuf_set(e, pe.code, "%s", pe.msg);
				continue;
			}
			if (!o->type && have_ft && plan->req.ftype != (uint32_t)ft) {
				isq_plan_release(plan);
				continue;
			}
			int rc = plan_matches(m, gguf, plan, &pe);
			if (!rc)
				return 0;
			if (!first.code)
				first = pe;
			isq_plan_release(plan);
		}
	if (first.code)
		return isq_errbuf_set(e, ISQ_EINVAL, "%s", first.msg);
	return isq_errbuf_set(e, ISQ_EINVAL, "%s: no type's plan matches this GGUF's tensors (general.file_type %llu)",
			      gguf->path, (unsigned long long)ft);
}

int isq_uqff_write(const struct isq_uqff_write_opts *o, struct isq_uqff_write_result *res, struct isq_errbuf *e)
{
	struct wctx w = { .o = o, .m = o->model, .e = e };
	size_t stage_mark = stage_count();
	w.conv.model = o->model;
	w.conv.pool = o->pool;
	w.conv.imatrix = o->imatrix;
	w.conv.progress = o->progress;
	struct isq_uqff_write_result dummy;
	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	if (o->n_plans < 1 || o->n_plans > 8)
		return isq_errbuf_set(e, ISQ_EINVAL, "%d output types (1 to 8)", o->n_plans);
	if (o->model->format != ISQ_MODEL_SAFETENSORS)
		return isq_errbuf_set(e, ISQ_EUNSUPPORTED,
				      "%s: UQFF output needs a Hugging Face model (safetensors), whose names mistral.rs loads",
				      o->model->path);
	/* where: PATH/NAME.uqff (one type) or a directory */
	char *stems[8] = { 0 };
	int n_stems = o->n_plans;
	size_t olen = strlen(o->output);
	char *dir = isq_strdup(o->output);
	if (!dir)
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	while (olen > 1 && dir[olen - 1] == '/')
		dir[--olen] = '\0';
	int rc = 0;
	if (isq_uqff_ends_with(dir, ".uqff") && !isq_is_dir(dir)) {
		if (o->n_plans > 1) {
			free(dir);
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: several output types need a directory, not a .uqff name",
					      o->output);
		}
		char *c1 = isq_strdup(dir), *c2 = isq_strdup(dir);
		if (c1 && c2) {
			const char *b = basename(c1);
			stems[0] = malloc(strlen(b) - 4);
			if (stems[0])
				snprintf(stems[0], strlen(b) - 4, "%s", b);
			free(dir);
			dir = isq_strdup(dirname(c2));
		}
		free(c1);
		free(c2);
		if (!stems[0] || !dir)
			rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	} else {
		for (int i = 0; i < n_stems && !rc; i++) {
			const char *lb = isq_uqff_type_label(o->plans[i]->req.type);
			if (!lb)
				rc = isq_errbuf_set(e, ISQ_EUNSUPPORTED, "type '%s' cannot be stored in UQFF",
						    isq_type_name(o->plans[i]->req.type));
			else if (!(stems[i] = isq_strdup(lb)))
				rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
			for (int k = 0; k < i && !rc; k++)
				if (!strcmp(stems[k], stems[i]))
					rc = isq_errbuf_set(e, ISQ_EINVAL, "type '%s' requested twice", stems[i]);
		}
	}
	w.publish_dir = dir;
	struct stat st;
	if (!rc && stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
		rc = isq_errbuf_set(e, ISQ_EINVAL, "%s: exists and is not a directory", dir);
	if (!rc) {
		struct isq_buf sp = ISQ_BUF_INIT;
		w.fresh = !isq_path_exists(dir);
		if (w.fresh) {
			char *c1 = isq_strdup(dir), *c2 = isq_strdup(dir);
			if (c1 && c2) {
				isq_path_join(&sp, dirname(c1), "");
				isq_buf_printf(&sp, ".%s.XXXXXX", basename(c2));
			}
			free(c1);
			free(c2);
		} else {
			isq_path_join(&sp, dir, ".isq-uqff.XXXXXX");
		}
		/* no signal between creating the staging directory and recording it */
		sigset_t old;
		block_stage_signals(&old);
		if (!sp.data || !mkdtemp(sp.data)) {
			rc = isq_errbuf_set(e, errno == ENOENT ? ISQ_ENOTFOUND : ISQ_EIO, "%s: %s", dir,
					    sp.data ? strerror(errno) : "out of memory");
		} else if (isq_uqff_stage_add(sp.data, 1)) {
			rmdir(sp.data);
			rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
		} else {
			w.staging = isq_buf_detach(&sp, NULL);
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		isq_buf_release(&sp);
	}

	struct wlayer *L[8] = { 0 };
	size_t nL[8] = { 0 };
	struct type_result tr[8];
	memset(tr, 0, sizeof(tr));
	for (int i = 0; i < n_stems && !rc; i++) {
		rc = write_type(&w, o->plans[i], stems[i], &L[i], &nL[i], &tr[i]);
	}
	rc = rc ? rc : write_residual(&w, o->plans[0], L[0], nL[0]);
	rc = rc ? rc : write_side_files(&w);
	if (!rc) {
		cJSON *r = cJSON_CreateObject();
		cJSON_AddNumberToObject(r, "schema", 1);
		cJSON *g = cJSON_AddObjectToObject(r, "generated_by");
		cJSON_AddStringToObject(g, "tool", "isq " ISQ_VERSION);
		if (o->base_model)
			cJSON_AddStringToObject(r, "base_model", o->base_model);
		cJSON_AddStringToObject(r, "uqff_version", "1.2.0");
		cJSON *outs = cJSON_AddArrayToObject(r, "outputs");
		for (int i = 0; i < n_stems; i++) {
			const char *q = isq_uqff_type_label(o->plans[i]->req.type);
			cJSON_AddItemToArray(outs, output_json(q ? q : stems[i], &tr[i], L[i], nL[i], &res->n_fallbacks));
		}
		char *s = cJSON_Print(r);
		cJSON_Delete(r);
		if (!s)
			rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
		else
			rc = write_text(&w, "uqff_report.json", s, strlen(s));
		free(s);
	}
	if (!rc)
		rc = publish(&w, stems, n_stems);
	if (rc)
		rm_staging(&w);
	if (rc || !o->keep_recorded)
		stage_truncate(stage_mark);
	res->bytes = w.bytes;
	res->n_layers = nL[0];
	snprintf(res->dir, sizeof(res->dir), "%s", dir ? dir : "");
	for (int i = 0; i < 8; i++) {
		free_layers(L[i], nL[i]);
		for (int k = 0; k < tr[i].n_shards; k++)
			free(tr[i].shards[k]);
		free(tr[i].shards);
		free(stems[i]);
	}
	for (size_t i = 0; i < w.n_written; i++)
		free(w.written[i]);
	free(w.written);
	free(w.staging);
	free(dir);
	return rc;
}

/* ---- tar ------------------------------------------------------------------------------------------- */

static la_ssize_t tar_write(struct archive *a, void *ctx, const void *buf, size_t n)
{
	(void)a;
	return isq_out_write(ctx, buf, n) ? -1 : (la_ssize_t)n;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int isq_uqff_tar(const char *dir, const char *prefix, int zstd, struct isq_out *out, struct isq_errbuf *e)
{
	DIR *d = opendir(dir);
	if (!d)
		return isq_errbuf_set(e, ISQ_EIO, "%s: %s", dir, strerror(errno));
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) && !rc) {
		if (de->d_name[0] == '.')
			continue;
		char **nn = realloc(names, (n + 1) * sizeof(char *));
		if (!nn || !(nn[n] = isq_strdup(de->d_name)))
			rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
		if (nn)
			names = nn;
		if (!rc)
			n++;
	}
	closedir(d);
	if (!rc)
		qsort(names, n, sizeof(char *), name_cmp);
	struct archive *a = rc ? NULL : archive_write_new();
	if (!rc && !a)
		rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	if (!rc && (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
		    (zstd && archive_write_add_filter_zstd(a) != ARCHIVE_OK) ||
		    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
		    archive_write_open(a, out, NULL, tar_write, NULL) != ARCHIVE_OK))
		rc = isq_errbuf_set(e, ISQ_EIO, "%s", out->err.code ? isq_errbuf_msg(&out->err) : archive_error_string(a));
	struct isq_buf p = ISQ_BUF_INIT;
	for (size_t i = 0; i < n && !rc; i++) {
		struct isq_map m;
		isq_path_join(&p, dir, names[i]);
		if ((rc = isq_map_open(&m, p.data, ISQ_MAP_RAW, e)))
			break;
		struct archive_entry *en = archive_entry_new();
		struct isq_buf an = ISQ_BUF_INIT;
		isq_buf_printf(&an, "%s/%s", prefix, names[i]);
		archive_entry_set_pathname(en, an.data);
		archive_entry_set_size(en, (la_int64_t)m.size);
		archive_entry_set_filetype(en, AE_IFREG);
		archive_entry_set_perm(en, 0644);
		archive_entry_set_mtime(en, 0, 0);
		if (archive_write_header(a, en) != ARCHIVE_OK)
			rc = isq_errbuf_set(e, ISQ_EIO, "%s", out->err.code ? isq_errbuf_msg(&out->err) : archive_error_string(a));
		for (uint64_t off = 0; off < m.size && !rc; off += 1 << 20) {
			size_t k = (size_t)ISQ_MIN((uint64_t)1 << 20, m.size - off);
			if (archive_write_data(a, m.data + off, k) != (la_ssize_t)k)
				rc = isq_errbuf_set(e, ISQ_EIO, "%s", out->err.code ? isq_errbuf_msg(&out->err) : archive_error_string(a));
		}
		archive_entry_free(en);
		isq_buf_release(&an);
		isq_map_release(&m);
	}
	if (a) {
		if (archive_write_close(a) != ARCHIVE_OK && !rc)
			rc = isq_errbuf_set(e, ISQ_EIO, "%s", out->err.code ? isq_errbuf_msg(&out->err) : archive_error_string(a));
		archive_write_free(a);
	}
	isq_buf_release(&p);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}
