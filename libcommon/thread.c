/* thread.c - a fixed pthread pool with dynamic chunk handout. */
#include "thread.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

struct isq_pool {
	int n;               /* threads including the caller */
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t wake, done;
	uint64_t generation; /* bumped per job: workers run each job once */
	int quitting;
	int busy;            /* workers still inside the current job */
	/* the current job */
	isq_pool_fn fn;
	void *ctx;
	int64_t n_items, grain;
	atomic_int_fast64_t next;
};

struct worker_arg {
	struct isq_pool *p;
	int id;
};

static void run_job(struct isq_pool *p, int id)
{
	for (;;) {
		int64_t b = atomic_fetch_add(&p->next, p->grain);
		if (b >= p->n_items)
			break;
		int64_t e = b + p->grain < p->n_items ? b + p->grain : p->n_items;
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
		run_job(p, id);
		pthread_mutex_lock(&p->mu);
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
	p->n = nthreads;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	if (nthreads > 1) {
		p->threads = calloc((size_t)nthreads - 1, sizeof(pthread_t));
		if (!p->threads) {
			free(p);
			return NULL;
		}
		for (int i = 1; i < nthreads; i++) {
			struct worker_arg *wa = malloc(sizeof(*wa));
			if (wa) {
				wa->p = p;
				wa->id = i;
			}
			if (!wa || pthread_create(&p->threads[i - 1], NULL, worker_main, wa)) {
				free(wa);
				p->n = i; /* run with the threads that did start */
				break;
			}
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
	if (!p || p->n == 1 || n <= grain) {
		for (int64_t b = 0; b < n; b += grain)
			fn(ctx, b, b + grain < n ? b + grain : n, 0);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->ctx = ctx;
	p->n_items = n;
	p->grain = grain;
	atomic_store(&p->next, 0);
	p->busy = p->n - 1;
	p->generation++;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	run_job(p, 0);
	pthread_mutex_lock(&p->mu);
	while (p->busy > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

int isq_cpu_count(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		int n = CPU_COUNT(&set);
		if (n > 0)
			return n;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}
