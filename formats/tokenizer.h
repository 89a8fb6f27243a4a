/*
 * tokenizer.h - text <-> token ids for the Llama family: Hugging Face
 * tokenizer.json (BPE models) and GGUF tokenizer.ggml.* vocabularies.
 *
 * Two kinds of tokenizer are handled:
 *
 *   SentencePiece-like BPE ("llama" in GGUF): the text is a sequence of
 *   Unicode characters, spaces are written U+2581 "▁", a "▁" is put in front
 *   of the text, characters missing from the vocabulary become <0xXX> byte
 *   tokens (byte fallback).  Llama 1/2, Mistral v0.1, TinyLlama, stories260K.
 *
 *   Byte-level BPE ("gpt2" in GGUF): a regex splits the text into words, each
 *   word's UTF-8 bytes are written as 256 printable stand-in characters
 *   (GPT-2's bytes_to_unicode) and merged by rank.  Llama 3, Qwen2/2.5/3,
 *   GPT-2.
 *
 * Loading from tokenizer.json runs the file's own pipeline, the way the Hugging
 * Face tokenizers library (0.2x) does, so that ids are identical to it:
 *
 *   1. added tokens (special or not) whose "normalized" is false are found in
 *      the raw text first (leftmost-longest; lstrip, rstrip and single_word
 *      honoured) and become their ids directly;
 *   2. every text segment between them is normalized on its own (normalizers
 *      Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip), so
 *      a Prepend("▁") puts a "▁" in front of each non-empty segment; added
 *      tokens with "normalized": true are then found in the normalized text;
 *   3. pre-tokenizers (Sequence, Split with a regex or string pattern and any
 *      behavior, ByteLevel with or without GPT-2's regex, Metaspace, Digits,
 *      Whitespace, WhitespaceSplit) cut each segment into words;
 *   4. the BPE model (byte_fallback, fuse_unk, ignore_merges, unk_token)
 *      merges each word by merge rank;
 *   5. with ISQ_TOKENIZER_ADD_SPECIAL the post-processor (TemplateProcessing,
 *      BertProcessing, RobertaProcessing, ByteLevel, Sequence) adds its tokens.
 *
 * Decoding runs the file's decoder chain (Sequence, Replace, ByteFallback,
 * Fuse, Strip, ByteLevel, Metaspace) exactly as the library does, including
 * where it writes U+FFFD for bytes that are not UTF-8.
 *
 * Anything else in a tokenizer.json (a Unigram or WordPiece model, a
 * BertNormalizer, a continuing_subword_prefix, BPE dropout...) is refused with
 * ISQ_EUNSUPPORTED and a message naming the component.  "truncation" and
 * "padding" are ignored: encode returns every id.  Regexes run on PCRE2 with
 * \s and \w spelled as the Unicode sets Oniguruma uses.  No case is known
 * where the ids differ from the library's; the references in
 * ../shared/ref/tokenizers (Qwen3, stories260K) match exactly.
 *
 * Loading from GGUF builds the equivalent pipeline from the tokenizer.ggml.*
 * keys: "llama" uses llama.cpp's SentencePiece algorithm (repeatedly merge the
 * adjacent pair whose concatenation is a token with the highest score, byte
 * fallback for the rest, a space prefix when add_space_prefix is true, which
 * is the default); "gpt2" uses byte-level BPE with the merges and the regex
 * of tokenizer.ggml.pre ("qwen2" also applies NFC, as Qwen's tokenizer.json
 * does; "llama-bpe"/"llama3"; "gpt2", "default" or none: GPT-2's regex).
 * Tokens of type control (3) and unknown (2) are special added tokens, type
 * user-defined (4) are non-special added tokens.
 *
 * Input text that is not valid UTF-8 is read as UTF-8 with each maximal
 * invalid sequence replaced by U+FFFD (what Rust's from_utf8_lossy and the
 * tokenizers bindings do), so encoding never fails on bad bytes.
 *
 * A handle is used by one thread at a time (encode keeps a per-word cache and
 * scratch buffers in it).  Errors: every int function returns 0 or a
 * negative enum isq_status, with a one-line message in
 * isq_tokenizer_errmsg().
 */
#ifndef ISQ_TOKENIZER_H
#define ISQ_TOKENIZER_H

#include "buf.h"

struct isq_gguf;
struct isq_gguf_writer;
struct isq_tokenizer;

/* GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
enum isq_token_type {
	ISQ_TOKEN_UNDEFINED = 0,
	ISQ_TOKEN_NORMAL = 1,
	ISQ_TOKEN_UNKNOWN = 2,
	ISQ_TOKEN_CONTROL = 3,
	ISQ_TOKEN_USER_DEFINED = 4,
	ISQ_TOKEN_UNUSED = 5,
	ISQ_TOKEN_BYTE = 6,
};

enum isq_tokenizer_kind {
	ISQ_TOKENIZER_NONE = 0,  /* nothing loaded */
	ISQ_TOKENIZER_SPM,       /* SentencePiece-like BPE, GGUF "llama" */
	ISQ_TOKENIZER_BYTE_BPE,  /* byte-level BPE, GGUF "gpt2" */
	ISQ_TOKENIZER_OTHER_BPE, /* a BPE tokenizer.json that is neither: encodes, cannot go to GGUF */
};

enum isq_tokenizer_flags {
	/* encode: add the post-processor's tokens (BOS and/or EOS), as
	 * add_special_tokens=True does; a plain 1 means this. */
	ISQ_TOKENIZER_ADD_SPECIAL = 1 << 0,
	/* encode: text that spells a special token is ordinary text (HF's
	 * split_special_tokens, llama.cpp's parse_special=false); non-special
	 * added tokens are still matched. */
	ISQ_TOKENIZER_LITERAL = 1 << 1,
	/* decode and streams: leave special tokens out (skip_special_tokens). */
	ISQ_TOKENIZER_SKIP_SPECIAL = 1 << 2,
};

/* A new empty handle, or NULL when out of memory.  _free(NULL) is a no-op. */
struct isq_tokenizer *isq_tokenizer_new(void);
void isq_tokenizer_free(struct isq_tokenizer *t);
/* The last error's message ("tokenizer.json: merge 12 'a b': 'ab' is not in the vocabulary"). */
const char *isq_tokenizer_errmsg(const struct isq_tokenizer *t);

/*
 * Load a Hugging Face tokenizer.  PATH is a model directory (tokenizer.json,
 * plus tokenizer_config.json, special_tokens_map.json, generation_config.json
 * and chat_template.jinja when present) or a tokenizer.json path (then its
 * directory's tokenizer_config.json is read too).  tokenizer_config.json gives
 * add_bos_token/add_eos_token, the bos/eos/unk/pad tokens and chat_template.
 * Loading replaces whatever the handle held.  Errors: ISQ_EIO/ISQ_ENOTFOUND
 * (files), ISQ_EFORMAT (malformed JSON or inconsistent vocabulary/merges),
 * ISQ_EUNSUPPORTED (a component this module does not implement), ISQ_ENOMEM.
 */
int isq_tokenizer_load_hf(struct isq_tokenizer *t, const char *path);
/* The same from memory: tokenizer.json text and optionally tokenizer_config.json text (NULL, 0 for none). */
int isq_tokenizer_load_hf_memory(struct isq_tokenizer *t, const char *json, size_t len, const char *config,
				 size_t config_len);
/*
 * Load from a GGUF file's tokenizer.ggml.* keys (the reader must outlive the
 * call only).  Errors: ISQ_ENOTFOUND (no tokenizer.ggml.tokens), ISQ_EFORMAT
 * (keys of the wrong type or inconsistent lengths), ISQ_EUNSUPPORTED (a model
 * other than "llama"/"gpt2", an unknown tokenizer.ggml.pre).
 */
int isq_tokenizer_load_gguf(struct isq_tokenizer *t, const struct isq_gguf *g);

/*
 * Encode LEN bytes of TEXT.  *ids receives a malloc'd array (free() it; NULL
 * when *n is 0) and *n its length.  FLAGS: ISQ_TOKENIZER_ADD_SPECIAL,
 * ISQ_TOKENIZER_LITERAL.  Errors: ISQ_EINVAL (nothing loaded), ISQ_ENOMEM.
 */
int isq_tokenizer_encode(struct isq_tokenizer *t, const char *text, size_t len, unsigned flags, int32_t **ids,
			 size_t *n);

/*
 * Decode ids to text as the tokenizers library's decode() does (ids out of
 * range are dropped, as there).  *text receives a malloc'd NUL-terminated
 * string (free() it), *len its length (may be NULL).  FLAGS:
 * ISQ_TOKENIZER_SKIP_SPECIAL.
 */
int isq_tokenizer_decode(struct isq_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, char **text,
			 size_t *len);

/*
 * The bytes one token stands for in running text: "▁" is a space, <0xXX> the
 * byte, a byte-level stand-in character its byte.  May be a fragment of a
 * UTF-8 character.  Returns 0 with *bytes (valid until the next load) and
 * *len set, or ISQ_EINVAL for an id out of range.
 */
int isq_tokenizer_piece(const struct isq_tokenizer *t, int32_t id, const char **bytes, size_t *len);

/*
 * Streaming decode for generation: feed ids one at a time and get the text
 * that is complete so far, never half of a UTF-8 character.  Bytes that can
 * never form a character come out as U+FFFD; a character still incomplete
 * stays pending until the next token or until _flush.  The leading-space
 * rules of the decoder (Strip, Metaspace) apply to the stream's start, so the
 * concatenated output equals isq_tokenizer_decode() of the same ids whenever
 * that text is valid UTF-8.
 *
 *   struct isq_tokenizer_stream s;
 *   isq_tokenizer_stream_init(&s, ISQ_TOKENIZER_SKIP_SPECIAL);
 *   for each id: isq_tokenizer_stream_put(t, &s, id, &out);  -- appends to out
 *   isq_tokenizer_stream_flush(t, &s, &out);
 */
struct isq_tokenizer_stream {
	unsigned flags;
	int started;          /* a token has been emitted (Metaspace's first-token rule) */
	size_t strip_left;    /* leading decoder Strip characters still to drop; set on the first put */
	unsigned char pending[4];
	size_t n_pending;
};
void isq_tokenizer_stream_init(struct isq_tokenizer_stream *s, unsigned flags);
/* Append the text completed by ID to OUT.  Errors: ISQ_EINVAL (id out of range), ISQ_ENOMEM. */
int isq_tokenizer_stream_put(struct isq_tokenizer *t, struct isq_tokenizer_stream *s, int32_t id,
			     struct isq_buf *out);
/* Append what is pending (as U+FFFD) and reset the pending bytes. */
int isq_tokenizer_stream_flush(struct isq_tokenizer *t, struct isq_tokenizer_stream *s, struct isq_buf *out);

/*
 * Write the tokenizer.* keys into W: tokenizer.ggml.model ("llama" or
 * "gpt2"), .tokens, .scores ("llama" only), .token_type, .merges ("gpt2"
 * only), .bos/.eos/.unknown/.padding_token_id (those that exist),
 * .add_bos_token, .add_eos_token, .add_space_prefix ("llama"), .pre and
 * tokenizer.chat_template (when known).  N_VOCAB > the tokenizer's size pads
 * the vocabulary with "[PAD<id>]" tokens of type unused, as llama.cpp's
 * converter does for a config vocab_size larger than the tokenizer (0: no
 * padding).  Ids no token uses are filled the same way.  Errors:
 * ISQ_EUNSUPPORTED (ISQ_TOKENIZER_OTHER_BPE, or merges that cannot be written
 * as "a b"), ISQ_EINVAL (N_VOCAB smaller than the vocabulary), or the writer's.
 */
int isq_tokenizer_to_gguf(struct isq_tokenizer *t, struct isq_gguf_writer *w, size_t n_vocab);

/* Accessors.  Ids are -1 when the tokenizer has none. */
enum isq_tokenizer_kind isq_tokenizer_kind(const struct isq_tokenizer *t);
size_t isq_tokenizer_n_vocab(const struct isq_tokenizer *t); /* highest id + 1 */
int32_t isq_tokenizer_bos(const struct isq_tokenizer *t);
int32_t isq_tokenizer_eos(const struct isq_tokenizer *t);
int32_t isq_tokenizer_unk(const struct isq_tokenizer *t);
int32_t isq_tokenizer_pad(const struct isq_tokenizer *t);
/*
 * add_bos_token / add_eos_token as written to GGUF: tokenizer_config.json's
 * flags when it has them, else whether the post-processor puts BOS first /
 * EOS last.  (Encoding with ISQ_TOKENIZER_ADD_SPECIAL always runs the
 * tokenizer.json post-processor, as the tokenizers library does.)
 */
int isq_tokenizer_add_bos(const struct isq_tokenizer *t);
int isq_tokenizer_add_eos(const struct isq_tokenizer *t);
/* The token's text as stored ("▁the", "Ġthe", "<0x0A>"), NUL-terminated, or NULL for an unused id. */
const char *isq_tokenizer_token(const struct isq_tokenizer *t, int32_t id);
/* Id of a token's exact text (model vocabulary or added token), or -1. */
int32_t isq_tokenizer_find(const struct isq_tokenizer *t, const char *text, size_t len);
/* enum isq_token_type of an id (ISQ_TOKEN_UNDEFINED when out of range). */
int isq_tokenizer_token_type(const struct isq_tokenizer *t, int32_t id);
/* 1 if the id is a special added token (skipped by ISQ_TOKENIZER_SKIP_SPECIAL). */
int isq_tokenizer_is_special(const struct isq_tokenizer *t, int32_t id);
/* 1 if generation should stop at this id: EOS, or a control token such as <|im_end|>, <|eot_id|>, <|endoftext|>. */
int isq_tokenizer_is_eog(const struct isq_tokenizer *t, int32_t id);
/* The chat template (Jinja text) or NULL. */
const char *isq_tokenizer_chat_template(const struct isq_tokenizer *t);

#endif
