/* thread.c - a fixed pthread pool with dynamic chunk handout. */
#include "thread.h"

#include <pthread.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

struct isq_pool {
	int n; /* threads including the caller */
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t wake, done;
	uint64_t generation; /* bumped per job: a worker runs each job once */
	int quitting;
	int busy; /* workers not yet finished with the current job */
	atomic_int running; /* an isq_pool_for is in progress (misuse check) */
	/* the current job, written under mu before the generation bump */
	isq_pool_fn fn;
	void *ctx;
	int64_t n_items, grain, n_chunks;
	/*
	 * Counts chunks, not items: each thread overshoots it by one when the
	 * job runs out, and that cannot overflow however large n and grain are.
	 */
	atomic_int_fast64_t next;
};

struct worker_arg {
	struct isq_pool *p;
	int id;
};

static void run_chunks(struct isq_pool *p, int id)
{
	for (;;) {
		int64_t c = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
		if (c >= p->n_chunks)
			break;
		int64_t b = c * p->grain;
		int64_t e = p->n_items - b > p->grain ? b + p->grain : p->n_items;
		p->fn(p->ctx, b, e, id);
	}
}

static void *worker_main(void *arg)
{
	struct worker_arg *wa = arg;
	struct isq_pool *p = wa->p;
	int id = wa->id;
	free(wa);
	uint64_t seen = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quitting && p->generation == seen)
			pthread_cond_wait(&p->wake, &p->mu);
		if (p->quitting)
			break;
		seen = p->generation;
		pthread_mutex_unlock(&p->mu);
		run_chunks(p, id);
		pthread_mutex_lock(&p->mu);
		/* the mutex also publishes fn's writes to the caller waiting on `done` */
		if (--p->busy == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct isq_pool *isq_pool_new(int nthreads)
{
	if (nthreads < 1)
		nthreads = 1;
	struct isq_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->n = 1;
	atomic_init(&p->next, 0);
	atomic_init(&p->running, 0);
	if (pthread_mutex_init(&p->mu, NULL) || pthread_cond_init(&p->wake, NULL) || pthread_cond_init(&p->done, NULL)) {
		free(p);
		return NULL;
	}
	if (nthreads > 1) {
		p->threads = calloc((size_t)nthreads - 1, sizeof(pthread_t));
		if (!p->threads) {
			isq_pool_free(p);
			return NULL;
		}
		/* p->n counts started threads, so that free joins exactly those */
		for (int i = 1; i < nthreads; i++) {
			struct worker_arg *wa = malloc(sizeof(*wa));
			if (!wa)
				break;
			wa->p = p;
			wa->id = i;
			if (pthread_create(&p->threads[i - 1], NULL, worker_main, wa)) {
				free(wa);
				break;
			}
			p->n = i + 1;
		}
	}
	return p;
}

void isq_pool_free(struct isq_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quitting = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->threads[i - 1], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	free(p->threads);
	free(p);
}

int isq_pool_size(const struct isq_pool *p)
{
	return p ? p->n : 1;
}

void isq_pool_for(struct isq_pool *p, int64_t n, int64_t grain, isq_pool_fn fn, void *ctx)
{
	if (n <= 0)
		return;
	if (grain < 1)
		grain = 1;
	if (p)
		ISQ_ASSERT(!atomic_exchange(&p->running, 1));
	if (!p || p->n == 1 || n <= grain) {
		for (int64_t b = 0; b < n; b = n - b > grain ? b + grain : n)
			fn(ctx, b, n - b > grain ? b + grain : n, 0);
		if (p)
			atomic_store(&p->running, 0);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->ctx = ctx;
	p->n_items = n;
	p->grain = grain;
	p->n_chunks = n / grain + (n % grain != 0);
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	p->busy = p->n - 1;
	p->generation++;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	run_chunks(p, 0);
	pthread_mutex_lock(&p->mu);
	while (p->busy > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
	atomic_store(&p->running, 0);
}

int isq_cpu_count(void)
{
	/* a dynamic set, so that machines with more than CPU_SETSIZE CPUs count right */
	for (int ncpu = 1024; ncpu <= (1 << 16); ncpu *= 2) {
		cpu_set_t *set = CPU_ALLOC((size_t)ncpu);
		if (!set)
			break;
		size_t sz = CPU_ALLOC_SIZE((size_t)ncpu);
		CPU_ZERO_S(sz, set);
		int rc = sched_getaffinity(0, sz, set);
		int count = rc == 0 ? CPU_COUNT_S(sz, set) : 0;
		CPU_FREE(set);
		if (rc == 0 && count > 0)
			return count;
		if (rc != 0 && errno != EINVAL)
			break;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}
