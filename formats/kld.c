/* kld.c - llama-perplexity's .kld files (layout in kld.h). */
#include "kld.h"

#include <math.h>

#define HEADER_BYTES 20 /* magic, n_ctx, n_vocab, n_chunk */

/* The records and the trailer are little-endian, as on every host llama.cpp writes them from. */
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float rdf32(const uint8_t *p)
{
	uint32_t u = rd32(p);
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

size_t isq_kld_record_len(int32_t n_vocab)
{
	return 2 * (((size_t)n_vocab + 1) / 2) + 4;
}

static int parse(struct isq_kld *k)
{
	const uint8_t *p = k->map.data;
	uint64_t size = k->map.size;
	if (size < 8 || memcmp(p, ISQ_KLD_MAGIC, 8))
		return isq_errbuf_set(&k->err, ISQ_EFORMAT, "not a llama-perplexity .kld file (bad magic)");
	if (size < HEADER_BYTES)
		return isq_errbuf_set(&k->err, ISQ_EFORMAT, "truncated header (%llu bytes)", (unsigned long long)size);
	k->n_ctx = rd32(p + 8);
	k->n_vocab = (int32_t)rd32(p + 12);
	k->n_chunk = (int32_t)rd32(p + 16);
	if (k->n_ctx < 1 || k->n_ctx > (1u << 24))
		return isq_errbuf_set(&k->err, ISQ_EFORMAT, "context of %u tokens is out of range", k->n_ctx);
	if (k->n_vocab < 1 || k->n_vocab > (1 << 24))
		return isq_errbuf_set(&k->err, ISQ_EFORMAT, "vocabulary of %d tokens is out of range", k->n_vocab);
	if (k->n_chunk < 0)
		return isq_errbuf_set(&k->err, ISQ_EFORMAT, "negative chunk count %d", k->n_chunk);
	k->per_chunk = (int64_t)k->n_ctx - 1 - (int64_t)(k->n_ctx / 2);
	k->n_records = (int64_t)k->n_chunk * k->per_chunk;
	k->nv = isq_kld_record_len(k->n_vocab);
	/* n_ctx < 2^25 and n_chunk < 2^31, so the token bytes fit; the records' size is
	 * compared by division, as n_records * nv can pass 2^64 in a hostile header */
	uint64_t n_tok = (uint64_t)k->n_ctx * (uint64_t)k->n_chunk;
	uint64_t need = HEADER_BYTES + 4 * n_tok, rec_len = 2 * (uint64_t)k->nv;
	if (size < need)
		return isq_errbuf_set(&k->err, ISQ_EFORMAT, "truncated: %llu bytes of tokens missing",
				      (unsigned long long)(need - size));
	if ((uint64_t)k->n_records > (size - need) / rec_len)
		return isq_errbuf_set(&k->err, ISQ_EFORMAT, "truncated: %lld records of %llu bytes, room for %llu",
				      (long long)k->n_records, (unsigned long long)rec_len,
				      (unsigned long long)((size - need) / rec_len));
	uint64_t rec_bytes = (uint64_t)k->n_records * rec_len;
	k->tokens = (const int32_t *)(const void *)(p + HEADER_BYTES);
	k->records = p + need;
	for (uint64_t i = 0; i < n_tok; i++) {
		int32_t t = (int32_t)rd32(p + HEADER_BYTES + 4 * i);
		if (t < 0 || t >= k->n_vocab)
			return isq_errbuf_set(&k->err, ISQ_EFORMAT, "token %llu: id %d is outside the vocabulary of %d",
					      (unsigned long long)i, t, k->n_vocab);
	}
	need += rec_bytes;
	if (size == need)
		return 0;
	uint64_t rest = size - need;
	const uint8_t *t = p + need;
	if (rest < 16 || memcmp(t, ISQ_KLD_TRAILER_MAGIC, 8))
		return isq_errbuf_set(&k->err, ISQ_EFORMAT, "%llu unexpected bytes after the records",
				      (unsigned long long)rest);
	uint64_t n = (uint64_t)rd32(t + 8) | (uint64_t)rd32(t + 12) << 32;
	if (n != (uint64_t)k->n_records)
		return isq_errbuf_set(&k->err, ISQ_EFORMAT, "trailer holds %llu values for %lld records",
				      (unsigned long long)n, (long long)k->n_records);
	if (rest - 16 != 12 * n)
		return isq_errbuf_set(&k->err, ISQ_EFORMAT, "trailer of %llu bytes, expected %llu",
				      (unsigned long long)rest, (unsigned long long)(16 + 12 * n));
	k->nll = t + 16;
	k->top = t + 16 + 8 * n;
	for (uint64_t i = 0; i < n; i++) {
		int32_t top = (int32_t)rd32(k->top + 4 * i);
		uint64_t u = (uint64_t)rd32(k->nll + 8 * i) | (uint64_t)rd32(k->nll + 8 * i + 4) << 32;
		double d;
		memcpy(&d, &u, sizeof(d));
		if (top < 0 || top >= k->n_vocab || !(d >= 0) || isinf(d))
			return isq_errbuf_set(&k->err, ISQ_EFORMAT, "trailer value %llu is out of range",
					      (unsigned long long)i);
	}
	k->has_trailer = 1;
	return 0;
}

int isq_kld_open_memory(struct isq_kld *k, const void *data, uint64_t size)
{
	memset(k, 0, sizeof(*k));
	isq_map_from_memory(&k->map, data, size);
	int rc = parse(k);
	if (rc) {
		struct isq_errbuf e = k->err;
		isq_kld_release(k);
		k->err = e;
	}
	return rc;
}

int isq_kld_open(struct isq_kld *k, const char *path)
{
	memset(k, 0, sizeof(*k));
	int rc = isq_map_open(&k->map, path, 0, &k->err);
	if (rc)
		return rc;
	rc = parse(k);
	if (rc) {
		struct isq_errbuf e = k->err;
		isq_kld_release(k);
		k->err = e;
		isq_errbuf_prefix(&k->err, "%s", strcmp(path, "-") ? path : "<stdin>");
	}
	return rc;
}

void isq_kld_release(struct isq_kld *k)
{
	isq_map_release(&k->map);
	memset(k, 0, sizeof(*k));
}

int32_t isq_kld_token(const struct isq_kld *k, int64_t i)
{
	return (int32_t)rd32((const uint8_t *)k->tokens + 4 * i);
}

int isq_kld_record(const struct isq_kld *k, int64_t r, float *lp)
{
	const uint8_t *p = k->records + (uint64_t)r * k->nv * 2;
	float scale = rdf32(p), min_lp = rdf32(p + 4);
	if (!isfinite(scale) || !isfinite(min_lp) || scale < 0)
		return ISQ_EFORMAT;
	p += 8;
	for (int32_t i = 0; i < k->n_vocab; i++)
		lp[i] = scale * (float)(uint16_t)(p[2 * i] | p[2 * i + 1] << 8) + min_lp;
	return 0;
}

void isq_kld_base(const struct isq_kld *k, int64_t r, const float *lp, int32_t target, double *nll, int32_t *top)
{
	if (k->has_trailer) {
		uint64_t u = (uint64_t)rd32(k->nll + 8 * r) | (uint64_t)rd32(k->nll + 8 * r + 4) << 32;
		memcpy(nll, &u, sizeof(*nll));
		*top = (int32_t)rd32(k->top + 4 * r);
		return;
	}
	int32_t arg = 0;
	for (int32_t i = 1; i < k->n_vocab; i++)
		if (lp[i] > lp[arg])
			arg = i;
	*top = arg;
	*nll = -(double)lp[target];
}

/* llama.cpp's nearest_int: round half to even, for |x| < 2^22 */
static int nearest_int(float x)
{
	return (int)lrintf(x);
}

double isq_kld_encode(const float *logits, int32_t n_vocab, int32_t target, uint16_t *rec, int32_t *top)
{
	/* float arithmetic where llama-perplexity uses float, so the 16-bit values match its files */
	float max = logits[0], min = logits[0];
	int32_t arg = 0;
	for (int32_t i = 1; i < n_vocab; i++) {
		if (logits[i] > max) {
			max = logits[i];
			arg = i;
		}
		if (logits[i] < min)
			min = logits[i];
	}
	min = min > max - 16 ? min : max - 16;
	double sum = 0;
	for (int32_t i = 0; i < n_vocab; i++)
		sum += expf(logits[i] - max);
	float lse = (float)log(sum);
	float min_lp = min - max - lse, scale = (max - min) / 65535.f;
	memcpy(rec, &scale, 4);
	memcpy(rec + 2, &min_lp, 4);
	uint16_t *q = rec + 4;
	if (scale) {
		float inv = 1 / scale;
		for (int32_t i = 0; i < n_vocab; i++)
			q[i] = logits[i] > min ? (uint16_t)nearest_int(inv * (logits[i] - min)) : 0;
	} else {
		memset(q, 0, (size_t)n_vocab * sizeof(*q));
	}
	if (n_vocab & 1)
		q[n_vocab] = 0;
	*top = arg;
	/* the exact NLL, in double throughout (what the trailer keeps) */
	double dsum = 0;
	for (int32_t i = 0; i < n_vocab; i++)
		dsum += exp((double)logits[i] - (double)max);
	return log(dsum) + (double)max - (double)logits[target];
}

int isq_kld_writer_begin(struct isq_kld_writer *w, struct isq_out *out, uint32_t n_ctx, int32_t n_vocab,
			 int32_t n_chunk, const int32_t *tokens)
{
	memset(w, 0, sizeof(*w));
	if (n_ctx < 3 || n_ctx > (1u << 24) || n_vocab < 1 || n_vocab > (1 << 24) || n_chunk < 1)
		return ISQ_EINVAL;
	for (int64_t i = 0; i < (int64_t)n_ctx * n_chunk; i++)
		if (tokens[i] < 0 || tokens[i] >= n_vocab)
			return ISQ_EINVAL;
	w->out = out;
	w->n_ctx = n_ctx;
	w->n_vocab = n_vocab;
	w->n_chunk = n_chunk;
	w->n_records = (int64_t)n_chunk * ((int64_t)n_ctx - 1 - (int64_t)(n_ctx / 2));
	w->rec = isq_mallocarray(isq_kld_record_len(n_vocab), sizeof(uint16_t));
	w->nll = isq_mallocarray((size_t)w->n_records, sizeof(double));
	w->top = isq_mallocarray((size_t)w->n_records, sizeof(int32_t));
	if (!w->rec || !w->nll || !w->top) {
		isq_kld_writer_release(w);
		return ISQ_ENOMEM;
	}
	uint8_t h[HEADER_BYTES];
	memcpy(h, ISQ_KLD_MAGIC, 8);
	memcpy(h + 8, &n_ctx, 4);
	memcpy(h + 12, &n_vocab, 4);
	memcpy(h + 16, &n_chunk, 4);
	int rc = isq_out_write(out, h, sizeof(h));
	if (!rc)
		rc = isq_out_write(out, tokens, (size_t)n_ctx * (size_t)n_chunk * sizeof(*tokens));
	if (rc)
		isq_kld_writer_release(w);
	return rc;
}

int isq_kld_writer_add(struct isq_kld_writer *w, const float *logits, int32_t target)
{
	if (w->n_done >= w->n_records || target < 0 || target >= w->n_vocab)
		return ISQ_EINVAL;
	int64_t i = w->n_done++;
	w->nll[i] = isq_kld_encode(logits, w->n_vocab, target, w->rec, &w->top[i]);
	return isq_out_write(w->out, w->rec, isq_kld_record_len(w->n_vocab) * sizeof(uint16_t));
}

int isq_kld_writer_finish(struct isq_kld_writer *w)
{
	if (w->n_done != w->n_records) {
		isq_kld_writer_release(w);
		return ISQ_EINVAL;
	}
	uint64_t n = (uint64_t)w->n_records;
	int rc = isq_out_write(w->out, ISQ_KLD_TRAILER_MAGIC, 8);
	rc = rc ? rc : isq_out_write(w->out, &n, 8);
	rc = rc ? rc : isq_out_write(w->out, w->nll, n * sizeof(double));
	rc = rc ? rc : isq_out_write(w->out, w->top, n * sizeof(int32_t));
	isq_kld_writer_release(w);
	return rc;
}

void isq_kld_writer_release(struct isq_kld_writer *w)
{
	free(w->rec);
	free(w->nll);
	free(w->top);
	w->rec = NULL;
	w->nll = NULL;
	w->top = NULL;
}
