/*
 * tokenizer-impl.h - the tokenizer's internal state, shared by the
 * tokenizer*.c files only (not part of the API).
 *
 *   tokenizer.c         handle, vocabulary tables, hash maps, accessors, UTF-8 helpers
 *   tokenizer-json.c    tokenizer.json / tokenizer_config.json loading
 *   tokenizer-gguf.c    GGUF loading and export
 *   tokenizer-norm.c    normalizers, pre-tokenizers, regexes
 *   tokenizer-bpe.c     added-token matching, BPE / SentencePiece merging, encode
 *   tokenizer-decode.c  decoder chain, pieces, streams
 *
 * The whole pipeline is data: both loaders fill the same structures, and the
 * encoder and decoder only read them.
 */
#ifndef ISQ_TOKENIZER_IMPL_H
#define ISQ_TOKENIZER_IMPL_H

#include "tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Limits that keep hostile files from asking for absurd memory. */
#define TOK_MAX_VOCAB (1u << 24)
#define TOK_MAX_STEPS 64 /* normalizers / pre-tokenizers / decoders after flattening */

/* ---- vocabulary -------------------------------------------------------- */

enum tok_flag {
	TF_PRESENT = 1 << 0, /* the id has a token */
	TF_MODEL = 1 << 1,   /* in the model's vocabulary (BPE lookups see it) */
	TF_ADDED = 1 << 2,   /* an added token */
	TF_SPECIAL = 1 << 3, /* a special added token */
};

struct tok_entry {
	uint32_t off, len; /* text in t->strs (NUL-terminated there) */
	uint32_t dec_off, dec_len; /* text given to the decoder (an added token's normalized form) */
	float score;
	uint8_t type;      /* enum isq_token_type; 0 until classified */
	uint8_t flags;     /* enum tok_flag */
};

/* string -> id, open addressing; keys are the vocabulary's own texts */
struct tok_strkey {
	uint32_t off, len; /* key text in t->strs */
	int32_t id;
};
struct tok_strmap {
	uint64_t *slots; /* hash << 32 | (key index + 1); 0 = empty */
	size_t cap;
	struct tok_strkey *keys;
	size_t n, alloc;
};

/* (left id, right id) -> (rank, merged id) */
struct tok_merge_slot {
	uint64_t key; /* UINT64_MAX = empty */
	uint32_t rank;
	int32_t id;
};
struct tok_mergemap {
	struct tok_merge_slot *slots;
	size_t cap, n;
};

/* word -> ids cache for the BPE model */
struct tok_cache_entry {
	uint32_t hash;
	uint32_t text_off, text_len;
	uint32_t ids_off, n_ids;
};
struct tok_cache {
	uint32_t *slots; /* entry index + 1 */
	size_t cap;
	struct tok_cache_entry *e;
	size_t n, alloc;
	struct isq_buf text;
	int32_t *ids;
	size_t n_ids, alloc_ids;
};

/* ---- added tokens ------------------------------------------------------ */

struct tok_added {
	int32_t id;
	uint32_t off, len;  /* the text matched: content, or its normalized form */
	uint8_t special, lstrip, rstrip, single_word, normalized;
};

/* one of the two match sets: indices into t->added, longest first per first byte */
struct tok_addset {
	uint32_t *idx;
	size_t n;
	uint32_t first[257]; /* idx[first[b] .. first[b+1]) start with byte b */
};

/* ---- pipeline ---------------------------------------------------------- */

struct tok_regex {
	pcre2_code *code;
	char *src; /* the pattern text, for tokenizer.ggml.pre detection */
};

enum tok_norm_kind { TN_NFC, TN_NFD, TN_NFKC, TN_NFKD, TN_LOWERCASE, TN_PREPEND, TN_REPLACE, TN_STRIP };
struct tok_norm {
	enum tok_norm_kind kind;
	char *str;          /* PREPEND text, REPLACE literal pattern */
	size_t str_len;
	char *content;      /* REPLACE replacement */
	size_t content_len;
	struct tok_regex re; /* REPLACE with a Regex pattern */
	int left, right;    /* STRIP */
};

enum tok_behavior { SB_REMOVED, SB_ISOLATED, SB_MERGED_PREV, SB_MERGED_NEXT, SB_CONTIGUOUS };
enum tok_pre_kind { TP_SPLIT, TP_BYTELEVEL, TP_METASPACE, TP_DIGITS, TP_WHITESPACE, TP_WSSPLIT, TP_PUNCT };
enum tok_prepend { PS_ALWAYS, PS_FIRST, PS_NEVER };
struct tok_pre {
	enum tok_pre_kind kind;
	struct tok_regex re;   /* SPLIT regex; BYTELEVEL use_regex (GPT-2's); WHITESPACE */
	char *literal;         /* SPLIT String pattern */
	size_t literal_len;
	enum tok_behavior behavior;
	int invert;
	int add_prefix_space, use_regex;     /* BYTELEVEL */
	char rep[8];                         /* METASPACE replacement, UTF-8 */
	size_t rep_len;
	uint32_t rep_cp;
	enum tok_prepend prepend;
	int split;
	int individual;                      /* DIGITS */
};

enum tok_dec_kind { TD_REPLACE, TD_BYTEFALLBACK, TD_FUSE, TD_STRIP, TD_BYTELEVEL, TD_METASPACE };
struct tok_dec {
	enum tok_dec_kind kind;
	char *str;               /* REPLACE literal pattern */
	size_t str_len;
	struct tok_regex re;     /* REPLACE regex */
	char *content;           /* REPLACE replacement */
	size_t content_len;
	uint32_t cp;             /* STRIP content char, METASPACE replacement */
	size_t start, stop;      /* STRIP */
	enum tok_prepend prepend; /* METASPACE */
};

enum tok_model { TM_BPE, TM_SPM };

/* per-depth scratch of the pre-tokenizer recursion */
struct tok_span {
	size_t start, end;
	int match;
};
struct tok_depth {
	struct isq_buf a, b;
	struct tok_span *spans;
	size_t n_spans, alloc_spans;
};

struct isq_tokenizer {
	struct isq_errbuf err;
	enum isq_tokenizer_kind kind;
	enum tok_model model;

	/* vocabulary */
	struct isq_buf strs;      /* every text, NUL-terminated */
	struct tok_entry *tok;
	size_t n_vocab, alloc_tok;
	struct tok_strmap vocab;  /* model vocabulary (TF_MODEL ids) */
	struct tok_strmap all;    /* every id's text, model first (isq_tokenizer_find) */

	/* BPE */
	struct tok_mergemap merges;
	int32_t (*merge_list)[2]; /* in rank order, for GGUF export */
	size_t n_merges;
	int byte_fallback, fuse_unk, ignore_merges;
	int32_t model_unk;        /* the model's unk_token id, or -1 */
	int32_t byte_id[256];     /* <0xXX> ids, -1 where absent */

	/* added tokens */
	struct tok_added *added;
	size_t n_added;
	struct tok_addset raw_set, norm_set;

	/* pipeline */
	struct tok_norm *norm;
	size_t n_norm;
	struct tok_pre *pre;
	size_t n_pre;
	struct tok_dec *dec;
	size_t n_dec;
	int has_decoder;
	int32_t *tmpl;            /* post-processor for one sequence: ids, -1 = the sequence */
	size_t n_tmpl;
	int has_tmpl;

	/* specials and GGUF facts */
	int32_t bos, eos, unk, pad;
	int add_bos, add_eos;
	int add_space_prefix;     /* -1: not applicable */
	char *chat_template;
	char *pre_name;           /* tokenizer.ggml.pre */
	int have_scores;          /* scores came from GGUF */

	/* decode: per-id pieces (bytes) */
	struct isq_buf pieces;
	uint32_t *piece_off;      /* n_vocab + 1 offsets into pieces */
	int stream_strip;         /* a Strip after Fuse: strip the stream's start */
	uint32_t stream_strip_cp;
	size_t stream_strip_n;

	/* encode scratch */
	struct tok_cache cache;
	struct tok_depth depth[TOK_MAX_STEPS + 1];
	struct isq_buf nbuf[2];
	pcre2_match_data *md;
	void *sym, *heap;         /* BPE / SentencePiece merge scratch */
	size_t alloc_sym, alloc_heap;
	struct isq_buf clean;     /* input made valid UTF-8 */
	int32_t *out;
	size_t n_out, alloc_out;
};

/* ---- tokenizer.c ------------------------------------------------------- */

void tok_reset(struct isq_tokenizer *t);
uint32_t tok_hash(const void *p, size_t n);
/* Append s[0..n) and a NUL to t->strs; *off receives its offset. */
int tok_str_add(struct isq_tokenizer *t, const char *s, size_t n, uint32_t *off);
/*
 * Give ID the text s[0..n) (the table grows as needed); sets TF_PRESENT and
 * FLAGS.  A second call for the same id replaces the display/decode text
 * (an added token's content wins over the model's text, as in HF).
 */
int tok_set_token(struct isq_tokenizer *t, int32_t id, const char *s, size_t n, unsigned flags);
const char *tok_text(const struct isq_tokenizer *t, int32_t id, size_t *len);
/* Map the text at t->strs + off to ID (a key already present is re-pointed: the last one wins). */
int tok_strmap_put(struct isq_tokenizer *t, struct tok_strmap *m, uint32_t off, uint32_t len, int32_t id);
int32_t tok_strmap_get(const struct isq_tokenizer *t, const struct tok_strmap *m, const char *s, size_t n);
void tok_strmap_release(struct tok_strmap *m);
int tok_mergemap_put(struct tok_mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
const struct tok_merge_slot *tok_mergemap_get(const struct tok_mergemap *m, int32_t a, int32_t b);
/* After the tables are filled: maps, byte ids, added-token sets, pieces, kind. */
int tok_finish(struct isq_tokenizer *t);
int tok_grow(void **p, size_t *alloc, size_t need, size_t size);

/* UTF-8 */
size_t tok_utf8_len(unsigned char lead);
/*
 * Length of the valid character at s (1..4), or 0 with *bad = the length of
 * the maximal invalid subpart (from_utf8_lossy's unit of replacement) and
 * *truncated = 1 when that subpart is a valid prefix cut by the end of s.
 */
size_t tok_utf8_valid(const unsigned char *s, size_t n, size_t *bad, int *truncated);
uint32_t tok_utf8_decode(const char *s, size_t n, size_t *adv); /* valid input */
size_t tok_utf8_encode(uint32_t cp, char *out);
/* Append s[0..n) to b with invalid sequences replaced by U+FFFD. */
int tok_utf8_lossy(struct isq_buf *b, const char *s, size_t n);
int tok_is_whitespace(uint32_t cp);
int tok_is_word_char(uint32_t cp);
int tok_is_numeric(uint32_t cp);
int tok_is_punct(uint32_t cp);

/* bytes_to_unicode of GPT-2 */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp); /* -1 if not a stand-in */

/* ---- tokenizer-norm.c -------------------------------------------------- */

int tok_regex_compile(struct isq_tokenizer *t, struct tok_regex *re, const char *pat, size_t len, const char *what);
void tok_regex_release(struct tok_regex *re);
/* Every match of RE in s[0..n): calls fn(ctx, start, end) in order (empty matches skipped). */
int tok_regex_each(struct isq_tokenizer *t, const struct tok_regex *re, const char *s, size_t n,
		   int (*fn)(void *ctx, size_t start, size_t end), void *ctx);
void tok_pipeline_release(struct isq_tokenizer *t);
/* Append s[0..n) to dst with every non-overlapping occurrence of a literal (or of RE when RE->code) replaced. */
int tok_replace_all(struct isq_tokenizer *t, const char *pat, size_t pat_len, const struct tok_regex *re,
		    const char *content, size_t content_len, const char *s, size_t n, struct isq_buf *dst);
/* Run the normalizers on s[0..n): the result in *out (one of t->nbuf, or s itself). */
int tok_normalize(struct isq_tokenizer *t, const char *s, size_t n, const char **out, size_t *out_len);
/* Normalize into a caller buffer (load time: added tokens). */
int tok_normalize_into(struct isq_tokenizer *t, const char *s, size_t n, struct isq_buf *dst);
/* Pre-tokenize s[0..n) and run the model on each word, appending ids to t->out. */
int tok_pretokenize(struct isq_tokenizer *t, const char *s, size_t n, int origin);
/* The GPT-2 regex, the Qwen2 and Llama 3 Split regexes (tokenizer.ggml.pre). */
extern const char tok_re_gpt2[], tok_re_qwen2[], tok_re_llama3[];

/* ---- tokenizer-bpe.c --------------------------------------------------- */

int tok_model_word(struct isq_tokenizer *t, const char *w, size_t n);
void tok_cache_release(struct tok_cache *c);
void tok_cache_clear(struct tok_cache *c);
int tok_build_addsets(struct isq_tokenizer *t);
int tok_push(struct isq_tokenizer *t, int32_t id);

/* ---- tokenizer-decode.c ------------------------------------------------ */

int tok_build_pieces(struct isq_tokenizer *t);

/* ---- tokenizer-json.c / tokenizer-gguf.c -------------------------------- */

/* Classify token types and derive SPM scores for a tokenizer.json vocabulary. */
int tok_classify_hf(struct isq_tokenizer *t);

#endif
