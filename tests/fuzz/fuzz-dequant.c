/*
 * fuzz-dequant.c - random blocks through every GGML dequantizer and dot product.
 * Byte 0 picks the type; the rest is taken as whole blocks.  Any bit pattern is
 * a valid block (scales may be NaN/Inf), so the only failures are crashes,
 * out-of-bounds reads and undefined behaviour.
 */
#include "types.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct isq_type_traits *rows[ISQ_TYPE_FIRST_EXT];
	static int n_rows = -1;
	if (n_rows < 0) {
		n_rows = 0;
		for (int id = 0; id < ISQ_TYPE_FIRST_EXT; id++) {
			const struct isq_type_traits *tt = isq_type_from_ggml((uint32_t)id);
			if (tt && tt->dequantize && tt->blck > 0 && tt->type_size > 0)
				rows[n_rows++] = tt;
		}
	}
	if (size < 1 || n_rows == 0)
		return 0;
	const struct isq_type_traits *tt = rows[data[0] % n_rows];
	data++;
	size--;
	size_t nblk = size / tt->type_size;
	if (nblk == 0 || nblk > 64)
		return 0;
	int64_t n = (int64_t)nblk * tt->blck;
	/* an exact-size heap copy so ASan sees any read past the last block */
	uint8_t *blocks = malloc(nblk * tt->type_size);
	float *out = malloc((size_t)n * sizeof(float));
	memcpy(blocks, data, nblk * tt->type_size);
	tt->dequantize(blocks, out, n);
	volatile float sink = 0;
	for (int64_t i = 0; i < n; i++)
		sink += out[i] == out[i] ? 0.0f : 1.0f;
	if (tt->vec_dot) {
		const struct isq_type_traits *vt = isq_type_traits(tt->vec_dot_type);
		if (vt && vt->from_float && vt->blck > 0 && n % vt->blck == 0) {
			float *act = malloc((size_t)n * sizeof(float));
			for (int64_t i = 0; i < n; i++)
				act[i] = (float)((i * 7919) % 255 - 127) / 64.0f;
			size_t vbytes = (size_t)(n / vt->blck) * vt->type_size;
			uint8_t *y = malloc(vbytes);
			vt->from_float(act, y, n);
			float s = 0;
			tt->vec_dot(n, &s, blocks, y);
			if (tt->vec_dot_ref) {
				float r = 0;
				tt->vec_dot_ref(n, &r, blocks, y);
				sink += r;
			}
			sink += s;
			free(y);
			free(act);
		}
	}
	(void)sink;
	free(out);
	free(blocks);
	return 0;
}
