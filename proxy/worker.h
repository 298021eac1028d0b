/*
 * worker.h - one event-loop thread and the sessions it owns.
 *
 * Each worker has its own event_base and its own SO_REUSEPORT listening
 * sockets, so the kernel spreads connections over the cores and a session
 * never changes thread.  Other threads talk to a worker only through
 * worker_post(), which queues a call and wakes the loop with an eventfd.
 * The worker also maps session ids to their filter chains, so that an
 * asynchronous result finds its session or is dropped if it is gone.
 */
#ifndef MOAT_WORKER_H
#define MOAT_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct session;
struct chain;
struct worker;

typedef void worker_call_fn(struct worker *w, void *arg);

/* worker_create - a worker that will accept on the given sockets (owned) */
struct worker *worker_create(unsigned index, const int *listen_fds, size_t nfds);

/* worker_start - run the worker's loop in a new thread */
bool worker_start(struct worker *w);

/* worker_post - run fn(w, arg) on w's thread soon; callable from any thread */
void worker_post(struct worker *w, worker_call_fn *fn, void *arg);

/* worker_drain - stop accepting, ask sessions to finish; any thread */
void worker_drain(struct worker *w);

/* worker_wait - wait for the worker's thread to end (the worker stays) */
void worker_wait(struct worker *w);

/* worker_join - wait for the thread to end, run late posted calls, free */
void worker_join(struct worker **w);

/* worker_run - run the loop in the calling thread (tests) until drained */
void worker_run(struct worker *w);

struct event_base *worker_base(const struct worker *w);
unsigned worker_index(const struct worker *w);
bool worker_draining(const struct worker *w);

/* worker_register_chain / worker_unregister_chain / worker_find_chain */
void worker_register_chain(struct worker *w, uint64_t session_id, struct chain *chain);
void worker_unregister_chain(struct worker *w, uint64_t session_id);
struct chain *worker_find_chain(struct worker *w, uint64_t session_id);

/* worker_sessions - the head of the worker's session list (session.c owns it) */
struct session **worker_sessions(struct worker *w);


/* Process-wide count of client connections, for max_connections. */
extern _Atomic unsigned worker_total_sessions;

/* worker_listen_socket - a bound, listening, non-blocking SO_REUSEPORT socket */
int worker_listen_socket(const struct sockaddr *sa, unsigned salen, char *error, size_t esize);

#endif
