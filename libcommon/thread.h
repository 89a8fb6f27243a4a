/*
 * thread.h - a fixed pthread pool for data-parallel loops.
 *
 *   struct isq_pool *p = isq_pool_new(nthreads);   // NULL on ENOMEM; 1 thread = run inline
 *   isq_pool_for(p, n_rows, grain, fn, ctx);       // fn(ctx, begin, end, worker) over [0, n)
 *   isq_pool_free(p);
 *
 * isq_pool_new(n) starts n - 1 worker threads: the thread that calls
 * isq_pool_for is the n-th and works too.  Between jobs the workers sleep on a
 * condition variable (no spinning).  With n <= 1 no thread is started and
 * every job runs inline, in order, on the caller.
 *
 * isq_pool_for splits [0, n) into chunks of `grain` items (the last may be
 * shorter; grain < 1 counts as 1) handed out dynamically through an atomic
 * counter, so uneven chunks balance themselves; it returns when every chunk
 * is done, and everything fn wrote is then visible to the caller.  Which
 * worker runs a chunk is not deterministic, so results must not depend on it:
 * write per-chunk outputs to disjoint memory, or reduce per worker and sum in
 * a fixed order afterwards.  `worker` (0 .. isq_pool_size(p) - 1; 0 is the
 * caller) indexes per-thread scratch space: no two chunks run at the same
 * time with the same worker id.
 *
 * Not reentrant: one isq_pool_for at a time per pool.  Calling it on a pool
 * that is already running a job (from fn, or from a second thread) is a
 * programmer error and aborts through ISQ_ASSERT rather than deadlocking.
 * A NULL pool runs inline, like a pool of one.
 */
#ifndef ISQ_THREAD_H
#define ISQ_THREAD_H

#include "isq.h"

struct isq_pool;

typedef void (*isq_pool_fn)(void *ctx, int64_t begin, int64_t end, int worker);

/*
 * A pool of nthreads threads including the caller (values < 1 mean 1).
 * Returns NULL when memory runs out; if the system refuses to start some of
 * the threads, the pool works with those that did start (isq_pool_size says
 * how many).
 */
struct isq_pool *isq_pool_new(int nthreads);
/* Stops and joins the workers.  NULL is a no-op. */
void isq_pool_free(struct isq_pool *p);
/* Threads that run chunks, the caller included (1 for NULL). */
int isq_pool_size(const struct isq_pool *p);
void isq_pool_for(struct isq_pool *p, int64_t n, int64_t grain, isq_pool_fn fn, void *ctx);

/* CPUs this process may run on (sched_getaffinity, else the online count), at least 1. */
int isq_cpu_count(void);

#endif
