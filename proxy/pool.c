/*
 * pool.c - a bounded pool of threads for CPU-heavy work (see pool.h).
 *
 * Owns: the threads and a fixed-size ring of queued jobs.  A full ring
 * refuses new jobs instead of growing: under overload a check fails fast
 * into its failure action rather than queueing without bound.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"

#define POOL_THREADS_MAX 64

struct job {
	pool_job_fn *fn;
	void *arg;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct job *ring;
static size_t ring_size, head, queued;
static pthread_t threads[POOL_THREADS_MAX];
static unsigned nthreads;
static bool stopping;

static void *
pool_thread(void *unused)
{
	for (;;) {
		pthread_mutex_lock(&lock);
		while (queued == 0 && !stopping)
			pthread_cond_wait(&wake, &lock);
		if (queued == 0) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		struct job job = ring[head];
		head = (head + 1) % ring_size;
		queued--;
		pthread_mutex_unlock(&lock);
		job.fn(job.arg);
	}
}

/* pool_start - start threads (0: one per CPU) taking at most max_queued jobs */
bool
pool_start(unsigned want, size_t max_queued)
{
	long n = want != 0 ? (long)want : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > POOL_THREADS_MAX)
		n = POOL_THREADS_MAX;
	ring = calloc(max_queued, sizeof(*ring));
	if (ring == NULL)
		return false;
	ring_size = max_queued;
	head = queued = 0;
	stopping = false;
	for (nthreads = 0; nthreads < (unsigned)n; nthreads++) {
		if (pthread_create(&threads[nthreads], NULL, pool_thread, NULL) != 0) {
			log_error("pool: cannot start thread %u", nthreads);
			break;
		}
	}
	return nthreads > 0;
}

/* pool_submit - queue a job; false when the queue is full or the pool stopped */
bool
pool_submit(pool_job_fn *fn, void *arg)
{
	bool ok = false;

	pthread_mutex_lock(&lock);
	if (ring != NULL && !stopping && queued < ring_size) {
		ring[(head + queued) % ring_size] = (struct job){ fn, arg };
		queued++;
		ok = true;
		pthread_cond_signal(&wake);
	}
	pthread_mutex_unlock(&lock);
	return ok;
}

/* pool_stop - run what is queued, then end the threads */
void
pool_stop(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	nthreads = 0;
	free(ring);
	ring = NULL;
}
