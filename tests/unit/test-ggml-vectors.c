/*
 * test-ggml-vectors.c - llama.cpp's reference vectors (../shared/ref/ggml-vectors):
 * our dequantization of its bytes equals its floats bit for bit, and our
 * encoder's importance-weighted RMSE is no worse than its own, per case.
 */
#include "test.h"
#include "types.h"

#include <dirent.h>

struct set {
	char name[32];
	uint32_t rows, n;
	float *x, *w;
};

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = malloc((size_t)len);
	if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*n = (size_t)len;
	return p;
}

static int load_set(const char *dir, const char *name, struct set *s)
{
	char path[4200];
	size_t n;
	snprintf(path, sizeof(path), "%s/set-%s.bin", dir, name);
	uint8_t *p = slurp(path, &n);
	if (!p || n < 64 || memcmp(p, "ISQI", 4)) {
		free(p);
		return -1;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->rows = isq_le32(p + 8);
	s->n = isq_le32(p + 12);
	size_t cnt = (size_t)s->rows * s->n;
	s->x = malloc(cnt * 4);
	s->w = malloc((size_t)s->n * 4);
	memcpy(s->x, p + 64, cnt * 4);
	memcpy(s->w, p + 64 + cnt * 4, (size_t)s->n * 4);
	free(p);
	return 0;
}

static double wrmse(const struct set *s, const float *y)
{
	double num = 0, den = 0;
	for (uint32_t r = 0; r < s->rows; r++)
		for (uint32_t j = 0; j < s->n; j++) {
			double d = (double)s->x[(size_t)r * s->n + j] - y[(size_t)r * s->n + j];
			num += s->w[j] * d * d;
			den += s->w[j];
		}
	return sqrt(num / den);
}

/* Bytes the README says ggml leaves undefined. */
static int masked(const char *file, size_t i)
{
	if (strstr(file, "q8_K-edge-plain"))
		return i >= 260 && i < 292;
	if (strstr(file, "iq4_nl-edge-rowref"))
		return i < 144 && i % 18 >= 2;
	return 0;
}

TEST(every_case)
{
	char dir[4096];
	if (!test_shared_path(dir, sizeof(dir), "ref/ggml-vectors/README.md"))
		SKIP("../shared/ref/ggml-vectors not present");
	dir[strlen(dir) - strlen("/README.md")] = '\0';
	static const char *const sets[] = { "gauss", "heavy", "outl", "edge", "real" };
	struct set S[5];
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(load_set(dir, sets[i], &S[i]), 0);
	DIR *d = opendir(dir);
	struct dirent *de;
	int cases = 0, missing = 0;
	while ((de = readdir(d))) {
		const char *fn = de->d_name;
		if (strncmp(fn, "set-", 4) == 0 || !strstr(fn, ".bin"))
			continue;
		char path[4400];
		size_t n;
		snprintf(path, sizeof(path), "%s/%s", dir, fn);
		uint8_t *p = slurp(path, &n);
		CHECK(p && !memcmp(p, "ISQV", 4));
		if (!p)
			continue;
		uint32_t type = isq_le32(p + 8), rows = isq_le32(p + 12), npr = isq_le32(p + 16), flags = isq_le32(p + 28);
		uint64_t nq = isq_le64(p + 32);
		char set[13] = { 0 };
		memcpy(set, p + 52, 12);
		const struct set *s = NULL;
		for (int i = 0; i < 5; i++)
			if (!strcmp(S[i].name, set))
				s = &S[i];
		const struct isq_type_traits *tt = isq_type_from_ggml(type);
		CHECK_MSG(s && tt && n == 64 + nq + (size_t)rows * npr * 4, "%s: header", fn);
		if (!s || !tt || !tt->dequantize) {
			CHECK_MSG(tt && tt->dequantize, "%s: no dequantizer for %s", fn, tt ? tt->name : "?");
			missing++;
			free(p);
			continue;
		}
		cases++;
		size_t cnt = (size_t)rows * npr;
		/* the reference floats follow nq bytes of blocks: copy them to aligned memory */
		float *ref = malloc(cnt * 4);
		memcpy(ref, p + 64 + nq, cnt * 4);
		float *y = malloc(cnt * 4);
		/* 1: exact dequantization of llama.cpp's bytes */
		tt->dequantize(p + 64, y, (int64_t)cnt);
		size_t bad = 0;
		for (size_t i = 0; i < cnt; i++)
			if (memcmp(&y[i], &ref[i], 4))
				bad++;
		CHECK_MSG(bad == 0, "%s: %zu of %zu dequantized values differ from llama.cpp's", fn, bad, cnt);
		/* 2: our encoder, same mode, no worse (q8_K and q8_1 are activation encoders: identical bytes) */
		int imat = flags & 1, rowref = ((flags >> 8) & 0xff) == 1;
		if (!rowref && (tt->quantize || tt->from_float)) {
			uint8_t *q = malloc(nq);
			if (tt->quantize)
				tt->quantize(s->x, q, rows, npr, imat ? s->w : NULL);
			else /* activation-only types */
				for (uint32_t r = 0; r < rows; r++)
					tt->from_float(s->x + (size_t)r * npr, q + r * (nq / rows), npr);
			if (type == ISQ_TYPE_Q8_K || type == ISQ_TYPE_Q8_1 || type == ISQ_TYPE_Q8_0) {
				size_t diff = 0;
				for (size_t i = 0; i < nq; i++)
					if (!masked(fn, i) && q[i] != p[64 + i])
						diff++;
				CHECK_MSG(diff == 0, "%s: %zu bytes differ from ggml's", fn, diff);
			}
			tt->dequantize(q, y, (int64_t)cnt);
			double ours = wrmse(s, y), theirs = wrmse(s, ref);
			CHECK_MSG(ours <= theirs * (1 + 1e-9), "%s: wrmse %.6g > llama.cpp's %.6g", fn, ours, theirs);
			if (getenv("ISQ_TEST_VERBOSE"))
				printf("  %-28s ours %.5g  llama.cpp %.5g  (%.1f%%)\n", fn, ours, theirs,
				       theirs > 0 ? 100.0 * (ours - theirs) / theirs : 0.0);
			free(q);
		} else if (!rowref) {
			CHECK_MSG(tt->quantize != NULL, "%s: no encoder for %s", fn, tt->name);
		}
		free(y);
		free(ref);
		free(p);
	}
	closedir(d);
	CHECK_EQ_INT(cases + missing, 135);
	for (int i = 0; i < 5; i++) {
		free(S[i].x);
		free(S[i].w);
	}
}
