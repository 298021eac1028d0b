/*
 * accelerator.h - builds each rule set's Hyperscan prefilter on a thread
 * of its own, so that moatd listens as soon as its rules are loaded and
 * answers signals while a build of several seconds runs.  Until a set's
 * prefilter is published its rules run with the literal prefilter alone:
 * the same hits, more slowly.
 */
#ifndef MOAT_ACCELERATOR_H
#define MOAT_ACCELERATOR_H

#include <stdbool.h>

struct ruleset;

/* accelerator_start - start the thread; false if it could not be */
bool accelerator_start(void);

/*
 * accelerator_submit - build rs's prefilter (the accelerator takes its own
 * reference).  A set still waiting is dropped for the newer one: after
 * several quick reloads only the last set is built.  generation names the
 * set in the log.
 */
void accelerator_submit(struct ruleset *rs, unsigned long long generation);

/* accelerator_stop - drop a set still waiting, wait for one being built
 * (Hyperscan cannot be interrupted), end the thread */
void accelerator_stop(void);

#endif
