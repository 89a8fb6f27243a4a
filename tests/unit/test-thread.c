/*
 * test-thread.c - the thread pool (thread.h) and the progress bar
 * (progress.h), which worker threads update concurrently.
 */
#include "test.h"

#include "progress.h"
#include "thread.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* ---- the pool -------------------------------------------------------------------- */

struct sum_job {
	int64_t n, grain;
	int nthreads;
	atomic_int *visits;     /* per item */
	atomic_int busy[16];    /* per worker: a chunk of that worker is running */
	uint64_t partial[16];   /* per worker */
	atomic_int bad;         /* chunks with wrong bounds, ids or overlapping ids */
	atomic_long chunks;
};

static uint64_t item_value(int64_t i)
{
	return (uint64_t)i * 2654435761u ^ (uint64_t)i >> 3;
}

static void sum_chunk(void *ctx, int64_t b, int64_t e, int w)
{
	struct sum_job *j = ctx;
	if (w < 0 || w >= j->nthreads || w >= 16) {
		atomic_fetch_add(&j->bad, 1);
		return;
	}
	if (atomic_exchange(&j->busy[w], 1))
		atomic_fetch_add(&j->bad, 1); /* two chunks at once with one worker id */
	if (b < 0 || e > j->n || b >= e || e - b > j->grain || b % j->grain || (e - b < j->grain && e != j->n))
		atomic_fetch_add(&j->bad, 1);
	for (int64_t i = b; i < e && i >= 0 && i < j->n; i++) {
		atomic_fetch_add(&j->visits[i], 1);
		j->partial[w] += item_value(i);
	}
	atomic_fetch_add(&j->chunks, 1);
	atomic_store(&j->busy[w], 0);
}

TEST(pool_sum_matches_serial)
{
	static const int threads[] = { 1, 2, 3, 4, 7 };
	static const int64_t sizes[] = { 0, 1, 5, 100, 1000, 100003 };
	static const int64_t grains[] = { 1, 7, 64, 1000, 200000, INT64_MAX, 0 };
	for (size_t t = 0; t < ISQ_ARRAY_SIZE(threads); t++) {
		struct isq_pool *p = isq_pool_new(threads[t]);
		CHECK(p != NULL);
		if (!p)
			return;
		CHECK_EQ_INT(isq_pool_size(p), threads[t]);
		for (size_t s = 0; s < ISQ_ARRAY_SIZE(sizes); s++)
			for (size_t g = 0; g < ISQ_ARRAY_SIZE(grains); g++) {
				int64_t n = sizes[s];
				if (grains[g] == 1 && n > 1000)
					continue; /* 100k one-item chunks: slow under the sanitizers, nothing new */
				struct sum_job *j = calloc(1, sizeof(*j));
				j->n = n;
				j->grain = grains[g] < 1 ? 1 : grains[g];
				j->nthreads = threads[t];
				j->visits = calloc((size_t)n + 1, sizeof(atomic_int));
				isq_pool_for(p, n, grains[g], sum_chunk, j);
				uint64_t serial = 0, got = 0;
				for (int64_t i = 0; i < n; i++)
					serial += item_value(i);
				for (int w = 0; w < 16; w++)
					got += j->partial[w];
				int badvisits = 0;
				for (int64_t i = 0; i < n; i++)
					badvisits += atomic_load(&j->visits[i]) != 1;
				int64_t want_chunks = n / j->grain + (n % j->grain != 0);
				CHECK_MSG(got == serial && badvisits == 0 && atomic_load(&j->bad) == 0 &&
						  atomic_load(&j->chunks) == want_chunks,
					  "threads %d n %lld grain %lld: sum %s, %d items not visited once, %d bad chunks, "
					  "%ld chunks (want %lld)",
					  threads[t], (long long)n, (long long)grains[g], got == serial ? "ok" : "wrong",
					  badvisits, atomic_load(&j->bad), atomic_load(&j->chunks), (long long)want_chunks);
				free(j->visits);
				free(j);
			}
		isq_pool_free(p);
	}
}

struct who_job {
	pthread_t caller;
	atomic_int on_caller, on_others, bad, order_bad;
	atomic_long last_begin;
};

static void who_chunk(void *ctx, int64_t b, int64_t e, int w)
{
	struct who_job *j = ctx;
	int mine = pthread_equal(pthread_self(), j->caller);
	if (mine != (w == 0))
		atomic_fetch_add(&j->bad, 1); /* worker 0 is the caller and only the caller */
	atomic_fetch_add(mine ? &j->on_caller : &j->on_others, 1);
	long prev = atomic_exchange(&j->last_begin, (long)b);
	if (prev >= (long)b)
		atomic_fetch_add(&j->order_bad, 1);
	(void)e;
	sleep_ms(1);
}

TEST(pool_of_one_runs_inline_in_order)
{
	struct isq_pool *p = isq_pool_new(1);
	struct who_job j = { .caller = pthread_self() };
	atomic_init(&j.last_begin, -1);
	isq_pool_for(p, 20, 3, who_chunk, &j);
	CHECK_EQ_INT(atomic_load(&j.on_caller), 7);
	CHECK_EQ_INT(atomic_load(&j.on_others), 0);
	CHECK_EQ_INT(atomic_load(&j.order_bad), 0);
	CHECK_EQ_INT(atomic_load(&j.bad), 0);
	isq_pool_free(p);

	/* a NULL pool and a pool of "0" behave the same */
	struct who_job k = { .caller = pthread_self() };
	atomic_init(&k.last_begin, -1);
	isq_pool_for(NULL, 10, 4, who_chunk, &k);
	CHECK_EQ_INT(atomic_load(&k.on_caller), 3);
	CHECK_EQ_INT(isq_pool_size(NULL), 1);
	p = isq_pool_new(0);
	CHECK_EQ_INT(isq_pool_size(p), 1);
	isq_pool_free(p);
	isq_pool_free(NULL);
}

TEST(pool_caller_participates)
{
	struct isq_pool *p = isq_pool_new(3);
	struct who_job j = { .caller = pthread_self() };
	atomic_init(&j.last_begin, -1);
	isq_pool_for(p, 30, 1, who_chunk, &j);
	CHECK_EQ_INT(atomic_load(&j.on_caller) + atomic_load(&j.on_others), 30);
	CHECK(atomic_load(&j.on_caller) > 0);
	CHECK(atomic_load(&j.on_others) > 0);
	CHECK_EQ_INT(atomic_load(&j.bad), 0);
	isq_pool_free(p);
}

static void count_chunk(void *ctx, int64_t b, int64_t e, int w)
{
	(void)w;
	atomic_fetch_add((atomic_llong *)ctx, e - b);
}

TEST(pool_many_jobs)
{
	/* many short jobs back to back: no job may be lost or run twice by a worker */
	struct isq_pool *p = isq_pool_new(4);
	atomic_llong total;
	atomic_init(&total, 0);
	long long want = 0;
	for (int k = 0; k < 2000; k++) {
		isq_pool_for(p, k % 37 + 1, 2, count_chunk, &total);
		want += k % 37 + 1;
	}
	CHECK_EQ_INT(atomic_load(&total), want);
	isq_pool_free(p);
}

struct big_job {
	atomic_int chunks, bad;
};

static void big_chunk(void *ctx, int64_t b, int64_t e, int w)
{
	struct big_job *j = ctx;
	(void)w;
	atomic_fetch_add(&j->chunks, 1);
	if (!(b >= 0 && e > b && e <= INT64_MAX))
		atomic_fetch_add(&j->bad, 1);
}

TEST(pool_huge_ranges_do_not_overflow)
{
	/* UBSan turns any signed overflow in the chunk arithmetic into a failure */
	struct isq_pool *p = isq_pool_new(3);
	struct big_job j;
	atomic_init(&j.chunks, 0);
	atomic_init(&j.bad, 0);
	isq_pool_for(p, INT64_MAX, INT64_MAX / 2, big_chunk, &j);
	CHECK_EQ_INT(atomic_load(&j.chunks), 3);
	atomic_store(&j.chunks, 0);
	isq_pool_for(p, INT64_MAX - 1, INT64_MAX / 3 + 1, big_chunk, &j);
	CHECK_EQ_INT(atomic_load(&j.chunks), 3);
	atomic_store(&j.chunks, 0);
	isq_pool_for(NULL, INT64_MAX, INT64_MAX - 1, big_chunk, &j);
	CHECK_EQ_INT(atomic_load(&j.chunks), 2);
	CHECK_EQ_INT(atomic_load(&j.bad), 0);
	isq_pool_free(p);
}

static struct isq_pool *nested_pool;

static void nested_chunk(void *ctx, int64_t b, int64_t e, int w)
{
	(void)b;
	(void)e;
	(void)w;
	isq_pool_for(nested_pool, 4, 1, count_chunk, ctx);
}

TEST(pool_reentry_aborts)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		atomic_llong total;
		atomic_init(&total, 0);
		nested_pool = isq_pool_new(2);
		isq_pool_for(nested_pool, 4, 1, nested_chunk, &total);
		_exit(0); /* not reached: the nested call is a programmer error */
	}
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status 0x%x", st);
}

TEST(cpu_count_follows_affinity)
{
	int n = isq_cpu_count();
	long conf = sysconf(_SC_NPROCESSORS_CONF);
	CHECK(n >= 1);
	CHECK(conf < 1 || n <= conf);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		if (sched_getaffinity(0, sizeof(set), &set) != 0)
			_exit(3);
		int first = -1;
		for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
			if (CPU_ISSET(c, &set))
				first = c;
		CPU_ZERO(&set);
		CPU_SET(first, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			_exit(3);
		_exit(isq_cpu_count() == 1 ? 0 : 1);
	}
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) != 1, "with one allowed CPU, isq_cpu_count() != 1 (status 0x%x)", st);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		SKIP("cannot change the CPU affinity here");
}

/* ---- the progress bar ------------------------------------------------------------ */

/* Points fd 2 at `fd` for the duration of a test; restore_stderr puts it back. */
static int saved_stderr = -1;

static void redirect_stderr(int fd)
{
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
}

static void restore_stderr(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
}

/* Everything readable on fd within a short wait, appended to out (NUL-terminated). */
static size_t drain(int fd, char *out, size_t cap)
{
	size_t len = strlen(out);
	struct pollfd pfd = { fd, POLLIN, 0 };
	while (len + 1 < cap && poll(&pfd, 1, 50) > 0 && (pfd.revents & POLLIN)) {
		ssize_t r = read(fd, out + len, cap - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	out[len] = '\0';
	return len;
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* A pseudo-terminal of `cols` columns: returns the master, *slave gets the other side. */
static int open_pty(int cols, int *slave)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0)
		return -1;
	if (grantpt(m) || unlockpt(m)) {
		close(m);
		return -1;
	}
	*slave = open(ptsname(m), O_RDWR | O_NOCTTY);
	if (*slave < 0) {
		close(m);
		return -1;
	}
	struct winsize ws = { .ws_row = 24, .ws_col = (unsigned short)cols };
	ioctl(m, TIOCSWINSZ, &ws);
	return m;
}

TEST(progress_silent_unless_tty)
{
	int fds[2];
	CHECK(pipe(fds) == 0);
	redirect_stderr(fds[1]);
	struct isq_progress pr;
	isq_progress_begin(&pr, "convert", 1000, 1);
	sleep_ms(120);
	isq_progress_update(&pr, 500);
	isq_progress_end(&pr);
	restore_stderr();
	close(fds[1]);
	char buf[256] = "";
	CHECK_EQ_INT(drain(fds[0], buf, sizeof(buf)), 0);
	close(fds[0]);
}

TEST(progress_draws_on_tty)
{
	int slave, m = open_pty(100, &slave);
	if (m < 0)
		SKIP("no pseudo-terminal available");
	redirect_stderr(slave);
	char buf[4096] = "";
	struct isq_progress pr;

	/* disabled by the tool (-q): nothing, even on a terminal */
	isq_progress_begin(&pr, "quiet", 1000, 0);
	sleep_ms(110);
	isq_progress_update(&pr, 10);
	isq_progress_end(&pr);
	CHECK_EQ_INT(drain(m, buf, sizeof(buf)), 0);

	isq_progress_begin(&pr, "convert", 200000000, 1);
	isq_progress_update(&pr, 50000000); /* within the first 100 ms: no redraw */
	CHECK_EQ_INT(drain(m, buf, sizeof(buf)), 0);
	sleep_ms(120);
	isq_progress_update(&pr, 100000000);
	isq_progress_update(&pr, 20000000); /* smaller: ignored */
	drain(m, buf, sizeof(buf));
	const char *want = "\rconvert [###############...............]  50%  100.0/200.0 MB  ";
	CHECK_MSG(!strncmp(buf, want, strlen(want)), "'%s'", buf + 1);
	CHECK(strstr(buf, " MB/s  ETA 0:0") != NULL);
	CHECK(strstr(buf, "\033[K") != NULL);
	CHECK(strchr(buf, '\n') == NULL);
	CHECK_EQ_INT(pr.done, 100000000);
	buf[0] = '\0';
	isq_progress_end(&pr);
	drain(m, buf, sizeof(buf));
	CHECK_STR(buf, "\r\033[K");
	buf[0] = '\0';
	isq_progress_update(&pr, 150000000); /* after end: nothing */
	CHECK_EQ_INT(drain(m, buf, sizeof(buf)), 0);

	/* a narrow terminal: the line is fitted, never wrapped */
	struct winsize ws = { .ws_row = 24, .ws_col = 40 };
	ioctl(m, TIOCSWINSZ, &ws);
	isq_progress_begin(&pr, "a-rather-long-label", 300000000, 1);
	sleep_ms(110);
	isq_progress_update(&pr, 100000000);
	isq_progress_end(&pr);
	buf[0] = '\0';
	drain(m, buf, sizeof(buf));
	char *esc = strstr(buf, "\033[K");
	CHECK(esc != NULL && buf[0] == '\r');
	if (esc)
		CHECK_MSG(esc - buf - 1 <= 39, "%d columns: '%.*s'", (int)(esc - buf - 1), (int)(esc - buf - 1), buf + 1);
	CHECK(strstr(buf, "a-rather-long-label") != NULL);

	restore_stderr();
	close(slave);
	close(m);
}

struct prog_job {
	struct isq_progress *pr;
	double until;
	atomic_llong done;
};

static void prog_chunk(void *ctx, int64_t b, int64_t e, int w)
{
	struct prog_job *j = ctx;
	(void)b;
	(void)e;
	(void)w;
	while (isq_now() < j->until)
		isq_progress_update(j->pr, (uint64_t)atomic_fetch_add(&j->done, 1000) + 1000);
}

TEST(progress_threads_rate_limited)
{
	int slave, m = open_pty(120, &slave);
	if (m < 0)
		SKIP("no pseudo-terminal available");
	redirect_stderr(slave);
	struct isq_progress pr;
	struct prog_job j = { .pr = &pr };
	atomic_init(&j.done, 0);
	struct isq_pool *p = isq_pool_new(4);
	isq_progress_begin(&pr, "threads", 1ull << 40, 1);
	double t0 = isq_now();
	j.until = t0 + 0.35;
	isq_pool_for(p, 4, 1, prog_chunk, &j);
	double el = isq_now() - t0;
	char buf[8192] = "";
	drain(m, buf, sizeof(buf));
	int draws = count_of(buf, "\033[K");
	/* one redraw per 100 ms at most: 3 in 350 ms, one more of slack for a slow clock read */
	CHECK_MSG(draws >= 2 && draws <= (int)(el / 0.1) + 1, "%d redraws in %.3f s", draws, el);
	CHECK_EQ_INT(pr.done, atomic_load(&j.done));
	isq_progress_end(&pr);
	isq_pool_free(p);
	restore_stderr();
	close(slave);
	close(m);
}

TEST(now_is_monotonic_seconds)
{
	double a = isq_now();
	sleep_ms(20);
	double b = isq_now();
	CHECK(b - a >= 0.019 && b - a < 1.0);
}
