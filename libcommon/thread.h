/*
 * thread.h - a fixed pthread pool for data-parallel loops.
 *
 *   struct isq_pool *p = isq_pool_new(nthreads);   // NULL on ENOMEM; 1 thread = run inline
 *   isq_pool_for(p, n_rows, grain, fn, ctx);       // fn(ctx, begin, end, worker) over [0, n)
 *   isq_pool_free(p);
 *
 * isq_pool_for splits [0, n) into chunks of `grain` items (the last may be
 * shorter) handed out dynamically; it returns when every chunk is done.  The
 * calling thread works too.  Which worker runs a chunk is not deterministic,
 * so results must not depend on it: write per-chunk outputs to disjoint memory.
 * `worker` (0..nthreads-1) indexes per-thread scratch space.  Not reentrant:
 * one isq_pool_for at a time per pool.
 */
#ifndef ISQ_THREAD_H
#define ISQ_THREAD_H

#include "isq.h"

struct isq_pool;

typedef void (*isq_pool_fn)(void *ctx, int64_t begin, int64_t end, int worker);

struct isq_pool *isq_pool_new(int nthreads);
void isq_pool_free(struct isq_pool *p);
int isq_pool_size(const struct isq_pool *p);
void isq_pool_for(struct isq_pool *p, int64_t n, int64_t grain, isq_pool_fn fn, void *ctx);

/* Online CPUs (sched_getaffinity, then sysconf), at least 1. */
int isq_cpu_count(void);

#endif
