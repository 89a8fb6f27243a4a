/*
 * fuzz-tokenizer.c - random bytes as a tokenizer.json (load, encode, decode,
 * GGUF export and reload must not crash), and as text for two tokenizers
 * built in memory: a stories260K-like SentencePiece BPE with byte fallback
 * and a Qwen-like byte-level BPE.  Text that avoids the added tokens must
 * decode back to itself.
 */
#include "gguf.h"
#include "io.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct isq_tokenizer *spm, *blvl;

/* <unk> <s> </s>, the 256 byte tokens, then pieces and characters, like llama2.c's tok512 */
static const char *const spm_pieces[] = { "\xe2\x96\x81t", "he", ("\xe2\x96\x81" "a"), "\xe2\x96\x81the", "in",
					  "\xe2\x96\x81", "e", "t", "h", "a", "i", "n", "\xe2\x96\x81th", "o", "s" };
static const char *const spm_merges[] = { "\xe2\x96\x81 t", "h e", "\xe2\x96\x81 a", "\xe2\x96\x81t he",
					  "\xe2\x96\x81th e", "i n", "\xe2\x96\x81t h" };

static void json_str(struct isq_buf *b, const char *s)
{
	isq_buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			isq_buf_putc(b, '\\');
		isq_buf_putc(b, *s);
	}
	isq_buf_putc(b, '"');
}

static struct isq_tokenizer *build_spm(void)
{
	struct isq_buf j = ISQ_BUF_INIT;
	isq_buf_puts(&j, "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
			 "{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
			 "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false}],"
			 "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xe2\x96\x81\"},"
			 "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xe2\x96\x81\"}]},"
			 "\"pre_tokenizer\":null,"
			 "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"}},"
			 "{\"Sequence\":{\"id\":\"A\"}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1]}}},"
			 "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xe2\x96\x81\"},"
			 "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
			 "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
			 "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,"
			 "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2");
	for (int b = 0; b < 256; b++)
		isq_buf_printf(&j, ",\"<0x%02X>\":%d", b, b + 3);
	for (size_t i = 0; i < sizeof(spm_pieces) / sizeof(*spm_pieces); i++) {
		isq_buf_putc(&j, ',');
		json_str(&j, spm_pieces[i]);
		isq_buf_printf(&j, ":%zu", 259 + i);
	}
	isq_buf_puts(&j, "},\"merges\":[");
	for (size_t i = 0; i < sizeof(spm_merges) / sizeof(*spm_merges); i++) {
		if (i)
			isq_buf_putc(&j, ',');
		json_str(&j, spm_merges[i]);
	}
	isq_buf_puts(&j, "]}}");
	struct isq_tokenizer *t = isq_tokenizer_new();
	if (isq_tokenizer_load_hf_memory(t, j.data, j.len, NULL, 0))
		__builtin_trap();
	isq_buf_release(&j);
	return t;
}

/* GPT-2's byte stand-ins, written out here so the fuzzer does not lean on the library's table */
static unsigned byte_cp(unsigned b)
{
	if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae)
		return b;
	unsigned n = 0;
	for (unsigned i = 0; i < b; i++)
		n += !((i >= 0x21 && i <= 0x7e) || (i >= 0xa1 && i <= 0xac) || i >= 0xae);
	return 256 + n;
}

static struct isq_tokenizer *build_byte_level(void)
{
	struct isq_buf j = ISQ_BUF_INIT;
	isq_buf_puts(&j, "{\"added_tokens\":[{\"id\":260,\"content\":\"<|im_end|>\",\"special\":true,\"normalized\":false},"
			 "{\"id\":261,\"content\":\"<think>\",\"special\":false,\"normalized\":false}],"
			 "\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
			 "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?"
			 "\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
			 "\"behavior\":\"Isolated\",\"invert\":false},"
			 "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]},"
			 "\"post_processor\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},"
			 "\"model\":{\"type\":\"BPE\",\"vocab\":{");
	for (unsigned b = 0; b < 256; b++) {
		char c[3] = { 0 };
		unsigned cp = byte_cp(b);
		if (cp < 0x80) {
			c[0] = (char)cp;
		} else {
			c[0] = (char)(0xc0 | cp >> 6);
			c[1] = (char)(0x80 | (cp & 0x3f));
		}
		json_str(&j, c);
		isq_buf_printf(&j, ":%u,", b);
	}
	isq_buf_puts(&j, "\"\xc4\xa0t\":256,\"he\":257,\"\xc4\xa0the\":258,\"\xc4\xa0\xc4\xa0\":259},"
			 "\"merges\":[\"\xc4\xa0 t\",\"h e\",\"\xc4\xa0t he\",\"\xc4\xa0 \xc4\xa0\"]}}");
	struct isq_tokenizer *t = isq_tokenizer_new();
	if (isq_tokenizer_load_hf_memory(t, j.data, j.len, NULL, 0))
		__builtin_trap();
	isq_buf_release(&j);
	return t;
}

static void exercise(struct isq_tokenizer *t, const char *text, size_t n, unsigned flags)
{
	int32_t *ids = NULL;
	size_t k = 0;
	if (isq_tokenizer_encode(t, text, n, flags, &ids, &k))
		return;
	for (size_t i = 0; i < k; i++)
		if (ids[i] < 0 || (size_t)ids[i] >= isq_tokenizer_n_vocab(t))
			__builtin_trap();
	char *s = NULL;
	size_t len;
	if (isq_tokenizer_decode(t, ids, k, flags & ISQ_TOKENIZER_SKIP_SPECIAL, &s, &len) == 0 && s[len] != '\0')
		__builtin_trap();
	struct isq_buf out = ISQ_BUF_INIT;
	struct isq_tokenizer_stream st;
	isq_tokenizer_stream_init(&st, flags & ISQ_TOKENIZER_SKIP_SPECIAL);
	for (size_t i = 0; i < k; i++)
		isq_tokenizer_stream_put(t, &st, ids[i], &out);
	isq_tokenizer_stream_flush(t, &st, &out);
	isq_buf_release(&out);
	free(s);
	free(ids);
}

/* decode(encode(text)) == text for printable ASCII without '<' (no added token can match) */
static void round_trip(struct isq_tokenizer *t, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e || p[i] == '<')
			return;
	int32_t *ids = NULL;
	size_t k;
	char *s = NULL;
	if (isq_tokenizer_encode(t, (const char *)p, n, 0, &ids, &k) || isq_tokenizer_decode(t, ids, k, 0, &s, NULL))
		__builtin_trap();
	if (strlen(s) != n || memcmp(s, p, n))
		__builtin_trap();
	free(s);
	free(ids);
}

static void gguf_round_trip(struct isq_tokenizer *t, const char *text, size_t n)
{
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	if (isq_tokenizer_to_gguf(t, w, 0) == 0) {
		isq_out_open_memory(&out, &mem);
		if (isq_gguf_writer_begin(w, &out) == 0 && isq_gguf_writer_finish(w) == 0) {
			struct isq_gguf *g = isq_gguf_new();
			struct isq_tokenizer *t2 = isq_tokenizer_new();
			if (isq_gguf_open_memory(g, mem.data, mem.len) == 0 && isq_tokenizer_load_gguf(t2, g) == 0)
				exercise(t2, text, n, ISQ_TOKENIZER_ADD_SPECIAL);
			isq_tokenizer_free(t2);
			isq_gguf_free(g);
		}
	}
	isq_gguf_writer_free(w);
	isq_buf_release(&mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!spm) {
		spm = build_spm();
		blvl = build_byte_level();
	}
	if (size && data[0] == '{') {
		struct isq_tokenizer *t = isq_tokenizer_new();
		if (isq_tokenizer_load_hf_memory(t, (const char *)data, size, NULL, 0) == 0) {
			static const char sample[] = " Hello  world, 123 <s> caf\xc3\xa9\n\xe2\x96\x81x";
			exercise(t, sample, sizeof(sample) - 1, ISQ_TOKENIZER_ADD_SPECIAL);
			exercise(t, (const char *)data, size < 512 ? size : 512, ISQ_TOKENIZER_SKIP_SPECIAL);
			gguf_round_trip(t, sample, sizeof(sample) - 1);
		}
		isq_tokenizer_free(t);
		return 0;
	}
	unsigned flags = size ? data[0] & 7 : 0;
	exercise(spm, (const char *)data, size, flags);
	exercise(blvl, (const char *)data, size, flags);
	round_trip(spm, data, size);
	round_trip(blvl, data, size);
	return 0;
}
