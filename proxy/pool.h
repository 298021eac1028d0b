/*
 * pool.h - a bounded pool of threads for CPU-heavy or blocking work that
 * must not run on an event loop: rule matching now, library calls such as
 * SPF and DKIM later.  Jobs report back through chain_complete(), which
 * hands the result to the session's own loop by session id.
 */
#ifndef MOAT_POOL_H
#define MOAT_POOL_H

#include <stdbool.h>
#include <stddef.h>

typedef void pool_job_fn(void *arg);

/* pool_start - start threads (0: one per CPU) taking at most max_queued jobs */
bool pool_start(unsigned threads, size_t max_queued);

/* pool_submit - queue a job; false when the queue is full or the pool stopped */
bool pool_submit(pool_job_fn *fn, void *arg);

/* pool_stop - run what is queued, then end the threads */
void pool_stop(void);

#endif
