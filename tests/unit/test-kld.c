/* test-kld.c - .kld files: llama-perplexity's encoding, round trip, llama.cpp's trailer-less files, damage. */
#include "test.h"
#include "kld.h"

#define NV 5   /* odd: a record carries one padding value */
#define CTX 6  /* per chunk: 6 - 1 - 3 = 2 records */
#define CHUNKS 2

static const float rows[CHUNKS * 2][NV] = {
	{ 0.5f, 2.0f, -1.0f, 3.25f, -30.0f }, /* -30 is below max - 16: clipped to q = 0 */
	{ 1.0f, 1.0f, 1.0f, 1.0f, 1.0f },     /* flat: scale 0, every q 0 */
	{ -2.0f, 7.5f, 7.5f, 0.0f, 1.0f },    /* a tie for the top: the first wins */
	{ 10.0f, -5.0f, 4.0f, 3.0f, 2.0f },
};
static const int32_t tokens[CTX * CHUNKS] = { 1, 4, 2, 3, 0, 4, 2, 2, 1, 0, 3, 1 };

/* Target of record r: the token after position CTX/2 + (r % 2) of its chunk. */
static int32_t target(int r)
{
	return tokens[(r / 2) * CTX + CTX / 2 + r % 2 + 1];
}

static void write_file(struct isq_buf *mem, int trailer)
{
	struct isq_out out;
	struct isq_kld_writer w;
	isq_out_open_memory(&out, mem);
	CHECK_EQ_INT(isq_kld_writer_begin(&w, &out, CTX, NV, CHUNKS, tokens), 0);
	for (int r = 0; r < CHUNKS * 2; r++)
		CHECK_EQ_INT(isq_kld_writer_add(&w, rows[r], target(r)), 0);
	CHECK_EQ_INT(isq_kld_writer_finish(&w), 0);
	if (!trailer)
		mem->len = 20 + sizeof(tokens) + (size_t)CHUNKS * 2 * isq_kld_record_len(NV) * 2;
}

TEST(encoding_matches_llama_perplexity)
{
	uint16_t rec[10];
	int32_t top;
	CHECK_EQ_INT(isq_kld_record_len(NV), 10);
	double nll = isq_kld_encode(rows[0], NV, 3, rec, &top);
	float scale, min_lp;
	memcpy(&scale, rec, 4);
	memcpy(&min_lp, rec + 2, 4);
	/* max 3.25, min clipped to 3.25 - 16 = -12.75 */
	CHECK(scale == 16.0f / 65535.f);
	CHECK_EQ_INT(top, 3);
	CHECK_EQ_INT(rec[4 + 4], 0);
	CHECK_EQ_INT(rec[4 + 3], 65535);
	CHECK_EQ_INT(rec[4 + 0], lrintf((0.5f + 12.75f) / scale));
	CHECK_EQ_INT(rec[4 + 5], 0); /* padding */
	double sum = 0;
	for (int i = 0; i < NV; i++)
		sum += exp((double)rows[0][i] - 3.25);
	CHECK_NEAR(nll, log(sum), 1e-12);
	CHECK_NEAR(min_lp, -12.75f - 3.25f - (float)log(sum), 1e-6);
	nll = isq_kld_encode(rows[1], NV, 0, rec, &top);
	CHECK_NEAR(nll, log(5.0), 1e-12);
	for (int i = 4; i < 10; i++)
		CHECK_EQ_INT(rec[i], 0);
	isq_kld_encode(rows[2], NV, 0, rec, &top);
	CHECK_EQ_INT(top, 1);
}

TEST(round_trip_keeps_tokens_records_and_exact_nll)
{
	struct isq_buf mem = ISQ_BUF_INIT;
	write_file(&mem, 1);
	CHECK_EQ_INT(mem.len, 20 + sizeof(tokens) + 4 * 10 * 2 + 16 + 4 * 12);
	struct isq_kld k;
	int rc = isq_kld_open_memory(&k, mem.data, mem.len);
	CHECK_MSG(rc == 0, "%s", k.err.msg);
	if (!rc) {
		CHECK_EQ_INT(k.n_ctx, CTX);
		CHECK_EQ_INT(k.n_vocab, NV);
		CHECK_EQ_INT(k.n_chunk, CHUNKS);
		CHECK_EQ_INT(k.per_chunk, 2);
		CHECK_EQ_INT(k.n_records, 4);
		CHECK(k.has_trailer);
		for (int i = 0; i < CTX * CHUNKS; i++)
			CHECK_EQ_INT(isq_kld_token(&k, i), tokens[i]);
		float lp[NV];
		for (int r = 0; r < 4; r++) {
			CHECK_EQ_INT(isq_kld_record(&k, r, lp), 0);
			double exact[NV], mx = rows[r][0], s = 0;
			for (int i = 1; i < NV; i++)
				mx = rows[r][i] > mx ? rows[r][i] : mx;
			for (int i = 0; i < NV; i++)
				s += exp(rows[r][i] - mx);
			for (int i = 0; i < NV; i++) {
				exact[i] = rows[r][i] - mx - log(s);
				/* 16 bits over 16 nats: within half a step, except below the floor */
				if (exact[i] > lp[0] - 100 && rows[r][i] > mx - 16)
					CHECK_NEAR(lp[i], exact[i], 16.0 / 65535 + 1e-5);
			}
			double nll;
			int32_t top;
			isq_kld_base(&k, r, lp, target(r), &nll, &top);
			CHECK_NEAR(nll, -exact[target(r)], 1e-12);
			CHECK_EQ_INT(top, r == 0 ? 3 : r == 1 ? 0 : r == 2 ? 1 : 0);
		}
	}
	isq_kld_release(&k);
	isq_buf_release(&mem);
}

TEST(llama_cpp_file_without_trailer_reads_16_bit_values)
{
	struct isq_buf mem = ISQ_BUF_INIT;
	write_file(&mem, 0);
	struct isq_kld k;
	int rc = isq_kld_open_memory(&k, mem.data, mem.len);
	CHECK_MSG(rc == 0, "%s", k.err.msg);
	if (!rc) {
		CHECK(!k.has_trailer);
		float lp[NV];
		double nll;
		int32_t top;
		/* record 0: the clipped token's 16-bit log p is the floor, not its true -33 */
		CHECK_EQ_INT(isq_kld_record(&k, 0, lp), 0);
		isq_kld_base(&k, 0, lp, 4, &nll, &top);
		CHECK(nll < 17 && nll > 15);
		CHECK_EQ_INT(top, 3);
	}
	isq_kld_release(&k);
	isq_buf_release(&mem);
}

TEST(every_truncation_is_an_error_except_a_missing_trailer)
{
	struct isq_buf mem = ISQ_BUF_INIT;
	write_file(&mem, 1);
	size_t records_end = 20 + sizeof(tokens) + 4 * 10 * 2;
	for (size_t n = 0; n < mem.len; n++) {
		struct isq_kld k;
		int rc = isq_kld_open_memory(&k, mem.data, n);
		if (n == records_end) {
			CHECK_MSG(rc == 0 && !k.has_trailer, "cut at %zu: %s", n, k.err.msg);
		} else {
			CHECK_MSG(rc == ISQ_EFORMAT, "cut at %zu: %d", n, rc);
			CHECK_MSG(k.err.msg[0] != '\0', "cut at %zu: no message", n);
		}
		isq_kld_release(&k);
	}
	struct isq_kld k;
	CHECK_EQ_INT(isq_kld_open_memory(&k, mem.data, 30), ISQ_EFORMAT);
	CHECK(strstr(k.err.msg, "truncated") != NULL);
	isq_buf_release(&mem);
}

TEST(bad_magic_bad_token_and_extra_bytes_are_refused)
{
	struct isq_buf mem = ISQ_BUF_INIT;
	write_file(&mem, 1);
	struct isq_kld k;
	mem.data[0] = 'X';
	CHECK_EQ_INT(isq_kld_open_memory(&k, mem.data, mem.len), ISQ_EFORMAT);
	CHECK(strstr(k.err.msg, "bad magic") != NULL);
	mem.data[0] = '_';
	int32_t bad = NV;
	memcpy(mem.data + 20 + 4 * 5, &bad, 4);
	CHECK_EQ_INT(isq_kld_open_memory(&k, mem.data, mem.len), ISQ_EFORMAT);
	CHECK(strstr(k.err.msg, "outside the vocabulary") != NULL);
	memcpy(mem.data + 20 + 4 * 5, &tokens[5], 4);
	CHECK_EQ_INT(isq_kld_open_memory(&k, mem.data, mem.len), 0);
	isq_kld_release(&k);
	isq_buf_putc(&mem, 0);
	CHECK_EQ_INT(isq_kld_open_memory(&k, mem.data, mem.len), ISQ_EFORMAT);
	isq_buf_release(&mem);
	/* an unreadable path names itself */
	CHECK_EQ_INT(isq_kld_open(&k, "/nonexistent/base.kld") < 0, 1);
	CHECK(strstr(k.err.msg, "/nonexistent/base.kld") != NULL);
}

TEST(hostile_header_sizes_are_refused_without_reading_past_the_end)
{
	uint8_t h[64] = { 0 };
	memcpy(h, ISQ_KLD_MAGIC, 8);
	uint32_t big[][3] = { { 1u << 24, 1u << 24, 0x7fffffffu }, { 0, 5, 1 }, { 6, 0, 1 }, { 6, 5, 0x80000000u },
			      { 3, 16777215, 1 } };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(big); i++) {
		struct isq_kld k;
		memcpy(h + 8, big[i], 12);
		CHECK_MSG(isq_kld_open_memory(&k, h, sizeof(h)) == ISQ_EFORMAT, "header %zu", i);
		isq_kld_release(&k);
	}
}

TEST(writer_refuses_what_the_layout_cannot_hold)
{
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	struct isq_kld_writer w;
	isq_out_open_memory(&out, &mem);
	CHECK_EQ_INT(isq_kld_writer_begin(&w, &out, 2, NV, 1, tokens), ISQ_EINVAL);
	CHECK_EQ_INT(isq_kld_writer_begin(&w, &out, CTX, 0, 1, tokens), ISQ_EINVAL);
	CHECK_EQ_INT(isq_kld_writer_begin(&w, &out, CTX, 3, 1, tokens), ISQ_EINVAL); /* token 4 >= 3 */
	CHECK_EQ_INT(isq_kld_writer_begin(&w, &out, CTX, NV, 1, tokens), 0);
	CHECK_EQ_INT(isq_kld_writer_add(&w, rows[0], 1), 0);
	CHECK_EQ_INT(isq_kld_writer_finish(&w), ISQ_EINVAL); /* one record of two */
	isq_kld_writer_release(&w);
	isq_buf_release(&mem);
}
