/*
 * accelerator.c - the Hyperscan builds of rule sets, one at a time, off
 * the main thread (accelerator.h).  The main thread only hands over a
 * reference; the thread builds, logs what it built, and drops it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "accelerator.h"
#include "log.h"
#include "ruleset.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct ruleset *waiting;		/* submitted, not yet taken */
static unsigned long long waiting_generation;
static bool building, stopping, started;
static unsigned long long building_generation;
static pthread_t thread;

static double
seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
report(void *ctx, bool fatal, const char *where, const char *message)
{
	const unsigned long long *generation = ctx;

	(void)fatal;
	log_warning("rules: generation %llu: %s: %s; its rules run with the literal "
	    "prefilter alone", *generation, where, message);
}

static void *
run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		while (waiting == NULL && !stopping)
			pthread_cond_wait(&wake, &lock);
		if (waiting == NULL)
			break;
		struct ruleset *rs = waiting;
		unsigned long long generation = waiting_generation;
		waiting = NULL;
		building = true;
		building_generation = generation;
		pthread_mutex_unlock(&lock);

		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		unsigned n = ruleset_accelerate(rs, report, &generation);
		/* one line either way: it tells when the set runs at full speed */
		if (n > 0)
			log_info("rules: generation %llu: Hyperscan prefilters %u text rules "
			    "(built in %.1f s)", generation, n, seconds_since(&t0));
		else
			log_info("rules: generation %llu: no Hyperscan prefilter (no text rule "
			    "it takes, or moatd was built without it); the literal one does "
			    "the work", generation);
		ruleset_unref(&rs);

		pthread_mutex_lock(&lock);
		building = false;
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

bool
accelerator_start(void)
{
	started = pthread_create(&thread, NULL, run, NULL) == 0;
	return started;
}

void
accelerator_submit(struct ruleset *rs, unsigned long long generation)
{
	struct ruleset *dropped = NULL;

	if (rs == NULL || !started)
		return;
	pthread_mutex_lock(&lock);
	dropped = waiting;
	waiting = ruleset_ref(rs);
	waiting_generation = generation;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	ruleset_unref(&dropped);
}

void
accelerator_stop(void)
{
	struct ruleset *dropped;

	if (!started)
		return;
	pthread_mutex_lock(&lock);
	dropped = waiting;
	waiting = NULL;
	stopping = true;
	if (building)
		log_info("waiting for the Hyperscan build of generation %llu to finish",
		    building_generation);
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	ruleset_unref(&dropped);
	pthread_join(thread, NULL);
	started = false;
}
