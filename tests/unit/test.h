/*
 * test.h - the unit-test harness: one header, no framework.
 *
 *   #include "test.h"
 *   TEST(gguf_round_trip) { CHECK(x == 1); CHECK_EQ_INT(a, b); }
 *
 * Tests register themselves (constructor attribute) and run in file order.
 * Every test prints one line, "PASS name", "FAIL name" (after the failed
 * checks, with file:line) or "SKIP name: reason"; tests/run.sh counts them.
 * A test that calls SKIP() must say why, and is never counted as passed.
 * The binary exits 1 if any test failed.  `test-foo NAME` runs one test.
 */
#ifndef ISQ_TEST_H
#define ISQ_TEST_H

#include "isq.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

typedef void (*test_fn)(void);
struct test_case {
	const char *name;
	test_fn fn;
};

static struct test_case test_cases[512];
static int test_ncases;
static int test_failed_checks;
static const char *test_skip_reason;

static inline void test_register(const char *name, test_fn fn)
{
	if (test_ncases < (int)ISQ_ARRAY_SIZE(test_cases))
		test_cases[test_ncases++] = (struct test_case){ name, fn };
}

#define TEST(name)                                                                     \
	static void name(void);                                                        \
	__attribute__((constructor)) static void test_reg_##name(void) { test_register(#name, name); } \
	static void name(void)

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			printf("  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			test_failed_checks++;                                          \
		}                                                                      \
	} while (0)

#define CHECK_MSG(cond, ...)                                                           \
	do {                                                                           \
		if (!(cond)) {                                                         \
			printf("  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                                           \
			printf("\n");                                                  \
			test_failed_checks++;                                          \
		}                                                                      \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                             \
	do {                                                                           \
		long long va_ = (long long)(a), vb_ = (long long)(b);                  \
		if (va_ != vb_) {                                                      \
			printf("  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, va_, vb_); \
			test_failed_checks++;                                          \
		}                                                                      \
	} while (0)

#define CHECK_STR(a, b)                                                                \
	do {                                                                           \
		const char *sa_ = (a), *sb_ = (b);                                     \
		if (!sa_ || !sb_ || strcmp(sa_, sb_)) {                                \
			printf("  %s:%d: %s == %s failed: '%s' != '%s'\n", __FILE__, __LINE__, #a, #b, \
			       sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");            \
			test_failed_checks++;                                          \
		}                                                                      \
	} while (0)

#define CHECK_NEAR(a, b, tol)                                                          \
	do {                                                                           \
		double da_ = (double)(a), db_ = (double)(b);                           \
		if (!(fabs(da_ - db_) <= (tol))) {                                     \
			printf("  %s:%d: |%s - %s| <= %g failed: %.9g vs %.9g\n", __FILE__, __LINE__, #a, #b, \
			       (double)(tol), da_, db_);                               \
			test_failed_checks++;                                          \
		}                                                                      \
	} while (0)

/* Mark the current test skipped and leave it. */
#define SKIP(reason)                                                                   \
	do {                                                                           \
		test_skip_reason = (reason);                                           \
		return;                                                                \
	} while (0)

/* ../shared (or $ISQ_SHARED) when present, else NULL: tests that need it SKIP. */
static inline const char *test_shared_dir(void)
{
	static char path[4096];
	struct stat st;
	const char *env = getenv("ISQ_SHARED");
	if (env && *env) {
		snprintf(path, sizeof(path), "%s", env);
	} else {
		snprintf(path, sizeof(path), "../shared");
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return path;
	return NULL;
}

/* A path under ../shared into buf, or NULL if ../shared or the file is absent. */
static inline const char *test_shared_path(char *buf, size_t n, const char *rel)
{
	const char *dir = test_shared_dir();
	struct stat st;
	if (!dir)
		return NULL;
	int len = snprintf(buf, n, "%s/%s", dir, rel);
	if (len < 0 || (size_t)len >= n)
		return NULL;
	return stat(buf, &st) == 0 ? buf : NULL;
}

/* A fresh scratch directory for this test binary (removed by tests/run.sh's TMPDIR cleanup). */
static inline const char *test_tmpdir(void)
{
	static char dir[4096];
	if (!dir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/isq-test-XXXXXX", base && *base ? base : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(2);
		}
	}
	return dir;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0, skipped = 0;
	setvbuf(stdout, NULL, _IOLBF, 0); /* keep check output when a test crashes */
	for (int i = 0; i < test_ncases; i++) {
		if (argc > 1 && strcmp(argv[1], test_cases[i].name))
			continue;
		test_failed_checks = 0;
		test_skip_reason = NULL;
		fflush(stdout);
		test_cases[i].fn();
		if (test_failed_checks) {
			printf("FAIL %s\n", test_cases[i].name);
			failed++;
		} else if (test_skip_reason) {
			printf("SKIP %s: %s\n", test_cases[i].name, test_skip_reason);
			skipped++;
		} else {
			printf("PASS %s\n", test_cases[i].name);
			passed++;
		}
		fflush(stdout);
	}
	printf("# %s: %d passed, %d failed, %d skipped\n", argv[0], passed, failed, skipped);
	return failed ? 1 : 0;
}

#endif
