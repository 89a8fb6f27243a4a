/*
 * mxfp4-uqff.c - MXFP4 in UQFF's encoding (codes [rows, k/2] with element
 * 2i in the low nibble, E8M0 scales in a separate [rows, k/32] tensor), its
 * encoder, and the exact conversion to and from ggml's 17-byte block.
 *
 * The two encodings hold the same numbers: a ggml block is the E8M0 byte
 * followed by the 32 codes with element j in the low nibble of byte j and
 * element j + 16 in the high one; ggml's codebook is E2M1 doubled and its
 * scale 2^(e - 128), so K4[q] * 2^(e - 128) = e2m1(q) * 2^(e - 127).
 *
 * Exponent choice: mistral.rs takes e = floor(log2(amax / 6)), which leaves
 * amax / 2^e in [6, 12): the largest values clip to 6, by up to 2x.
 * llama.cpp takes floor(log2(amax)) - 2, i.e. the same or one more.  Never
 * clipping is not better either (it is worse on about a third of Gaussian
 * blocks: the grid gets twice as coarse to save one value).  So each block
 * evaluates mistral.rs's exponent, the two above it (one of which is
 * llama.cpp's) and the one below, with nearest-value codes, and keeps the
 * lowest (weighted) error; ties keep the earlier candidate.
 */
#include "mrs-impl.h"

#include "blocks.h"

#define QB 32

/* 2^k for k in [-149, 127], exact */
static float pow2i(int k)
{
	if (k >= -126)
		return isq_f32_from_bits((uint32_t)(k + 127) << 23);
	return isq_f32_from_bits(1u << (k + 149));
}

float isq_mrs_mx_eval_ref(const float *x, const float *w, float inv, float sc, uint8_t *q)
{
	float acc[8] = { 0 };
	for (int i = 0; i < QB; i += 8)
		for (int l = 0; l < 8; l++) {
			float v = x[i + l] * inv;
			float a = fabsf(v);
			int idx = (a > 0.25f) + (a > 0.75f) + (a > 1.25f) + (a > 1.75f) + (a > 2.5f) + (a > 3.5f) +
				  (a > 5.0f);
			float m = mrs_e2m1[idx] * sc;
			float r = x[i + l] - (v < 0.0f ? -m : m);
			acc[l] = acc[l] + w[i + l] * (r * r);
			q[i + l] = (uint8_t)(idx | (v < 0.0f && idx ? 8 : 0));
		}
	return mrs_hsum8(acc);
}

uint8_t isq_mrs_mxfp4_block(const struct mrs_kern *k, const float *x, const float *w, uint8_t *q)
{
	uint8_t tq[QB];
	float amax = 0;
	for (int i = 0; i < QB; i++) {
		float a = fabsf(x[i]);
		amax = a > amax ? a : amax;
	}
	if (!(amax > 0.0f)) {
		memset(q, 0, QB);
		return 127; /* as mistral.rs writes an all-zero block */
	}
	/* mistral.rs's exponent, computed as it does */
	int base = (int)floorf(log2f(amax / 6.0f)) + 127;
	int cand[4] = { base, base + 1, base + 2, base - 1 }, best_e = -1;
	float best = INFINITY;
	for (int c = 0; c < 4; c++) {
		int e = cand[c] < 0 ? 0 : cand[c] > 254 ? 254 : cand[c];
		int dup = 0;
		for (int j = 0; j < c; j++)
			dup |= (cand[j] < 0 ? 0 : cand[j] > 254 ? 254 : cand[j]) == e;
		if (dup)
			continue;
		float err = k->mx_eval(x, w, pow2i(127 - e), pow2i(e - 127), tq);
		if (best_e < 0 || err < best) {
			best = err;
			best_e = e;
			memcpy(q, tq, QB);
		}
	}
	return (uint8_t)best_e;
}

/* ---- UQFF entry: rows of k/2 code bytes and k/32 exponents ---- */

void isq_mrs_mxfp4_units(const struct mrs_kern *k, const struct isq_mrs_layout *l, const float *src,
			 const float *imp, uint64_t imp_len, uint64_t u0, uint64_t u1)
{
	const uint64_t cols = l->cols, nb = cols / QB;
	uint8_t *codes = l->t[0].data, *sc = l->t[1].data, q[QB];
	float w[QB];
	for (uint64_t r = u0; r < u1; r++) {
		const float *ri = isq_mrs_row_imp(l, imp, imp_len, r);
		for (uint64_t b = 0; b < nb; b++) {
			mrs_group_weights(ri, (int64_t)(b * QB), QB, w);
			sc[r * nb + b] = isq_mrs_mxfp4_block(k, src + r * cols + b * QB, w, q);
			uint8_t *o = codes + r * (cols / 2) + b * (QB / 2);
			for (int i = 0; i < QB / 2; i++)
				o[i] = (uint8_t)(q[2 * i] | q[2 * i + 1] << 4);
		}
	}
}

void isq_mrs_mxfp4_deq_rows(const struct isq_mrs_layout *l, uint64_t r0, uint64_t nr, float *dst)
{
	const uint64_t cols = l->cols, nb = cols / QB;
	const uint8_t *codes = l->t[0].data, *sc = l->t[1].data;
	for (uint64_t r = r0; r < r0 + nr; r++)
		for (uint64_t b = 0; b < nb; b++, dst += QB) {
			float d = mrs_e8m0_half(sc[r * nb + b]);
			const uint8_t *c = codes + r * (cols / 2) + b * (QB / 2);
			for (int i = 0; i < QB / 2; i++) {
				dst[2 * i] = (float)mrs_k4[c[i] & 15] * d;
				dst[2 * i + 1] = (float)mrs_k4[c[i] >> 4] * d;
			}
		}
}

/* ---- ggml <-> UQFF ---- */

void isq_mxfp4_to_uqff(const void *ggml_blocks, uint8_t *codes, uint8_t *scales, int64_t nrows, int64_t k)
{
	const struct block_mxfp4 *b = ggml_blocks;
	ISQ_ASSERT(k % QK_MXFP4 == 0);
	for (int64_t i = 0; i < nrows * (k / QK_MXFP4); i++, b++) {
		uint8_t el[QK_MXFP4];
		scales[i] = b->e;
		for (int j = 0; j < 16; j++) {
			el[j] = b->qs[j] & 15;
			el[j + 16] = b->qs[j] >> 4;
		}
		for (int j = 0; j < 16; j++)
			codes[16 * i + j] = (uint8_t)(el[2 * j] | el[2 * j + 1] << 4);
	}
}

void isq_mxfp4_from_uqff(const uint8_t *codes, const uint8_t *scales, void *ggml_blocks, int64_t nrows,
			 int64_t k)
{
	struct block_mxfp4 *b = ggml_blocks;
	ISQ_ASSERT(k % QK_MXFP4 == 0);
	for (int64_t i = 0; i < nrows * (k / QK_MXFP4); i++, b++) {
		uint8_t el[QK_MXFP4];
		for (int j = 0; j < 16; j++) {
			el[2 * j] = codes[16 * i + j] & 15;
			el[2 * j + 1] = codes[16 * i + j] >> 4;
		}
		b->e = scales[i];
		for (int j = 0; j < 16; j++)
			b->qs[j] = (uint8_t)(el[j] | el[j + 16] << 4);
	}
}
