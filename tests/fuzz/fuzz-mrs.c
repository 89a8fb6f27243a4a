/*
 * fuzz-mrs.c - random bytes through the mistral.rs-format decoders.
 *
 * Byte 0 picks the type (low nibble, of ten) and the mode (bit 7):
 *   decode (bit 7 clear): the rest is an isq_mrs_dequantize_any() blob (a
 *     UQFF entry with its metadata, see mrs.h); it is also decoded as the
 *     type's in-memory table rows, and for MXFP4 converted ggml -> UQFF ->
 *     ggml, which must give the same bytes;
 *   encode (bit 7 set): the rest is up to 4096 floats, quantized as a
 *     [rows, 64] tensor; finite input must decode without NaN.
 */
#include "mrs.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum isq_type types[10] = { ISQ_TYPE_HQQ4, ISQ_TYPE_HQQ8, ISQ_TYPE_AFQ2, ISQ_TYPE_AFQ3,
					 ISQ_TYPE_AFQ4, ISQ_TYPE_AFQ6, ISQ_TYPE_AFQ8, ISQ_TYPE_FP8,
					 ISQ_TYPE_F8Q8, ISQ_TYPE_MXFP4 };

#define CAP (1 << 16)
static float out[CAP];

static void decode(enum isq_type t, const uint8_t *p, size_t n)
{
	uint64_t count;
	struct isq_errbuf e = { 0 };
	isq_mrs_dequantize_any(t, p, n, out, CAP, &count, &e);

	const struct isq_type_traits *tt = isq_type_traits(t);
	size_t nb = n / tt->type_size;
	if ((int64_t)nb * tt->blck > CAP)
		nb = (size_t)(CAP / tt->blck);
	if (nb)
		tt->dequantize(p, out, (int64_t)nb * tt->blck);

	if (t == ISQ_TYPE_MXFP4 && n >= 17) {
		static uint8_t codes[CAP / 2], scales[CAP / 32], back[CAP];
		int64_t rows = (int64_t)(n / 17);
		if (rows > CAP / 32)
			rows = CAP / 32;
		isq_mxfp4_to_uqff(p, codes, scales, rows, 32);
		isq_mxfp4_from_uqff(codes, scales, back, rows, 32);
		if (memcmp(back, p, (size_t)rows * 17))
			abort();
	}
}

static void encode(enum isq_type t, const uint8_t *p, size_t n)
{
	static float x[4096];
	size_t m = n / 4 / 64 * 64;
	if (m > 4096)
		m = 4096;
	if (!m)
		return;
	memcpy(x, p, m * 4);
	int finite = 1;
	for (size_t i = 0; i < m; i++)
		finite &= x[i] - x[i] == 0.0f;
	struct isq_mrs_layout l;
	struct isq_errbuf e = { 0 };
	uint64_t shape[2] = { m / 64, 64 };
	if (isq_mrs_plan(&l, t, 2, shape, NULL, &e))
		abort();
	static uint8_t buf[4096 * 8];
	uint8_t *b = buf;
	for (int i = 0; i < l.ntensors; i++) {
		l.t[i].data = b;
		b += l.t[i].nbytes;
	}
	int rc = isq_mrs_quantize(&l, x, NULL, 0, &e);
	if (finite != (rc == 0))
		abort(); /* finite input quantizes, anything else is refused */
	if (rc)
		return;
	isq_mrs_dequantize(&l, out);
	for (size_t i = 0; i < m; i++)
		if (isnan(out[i]))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum isq_type t = types[(data[0] & 15) % 10];
	if (data[0] & 0x80)
		encode(t, data + 1, size - 1);
	else
		decode(t, data + 1, size - 1);
	return 0;
}
