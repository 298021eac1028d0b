/*
 * worker.c - one event-loop thread and the sessions it owns (see worker.h).
 *
 * Owns: the event_base, the listening events, the posted-call queue and the
 * session-id -> chain map.  Draining closes the listeners first, so the
 * kernel stops handing this worker new connections, then asks every session
 * to finish; the loop ends when the last session is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "config.h"
#include "log.h"
#include "session.h"
#include "worker.h"

#define CHAIN_MAP_BUCKETS 1024	/* power of two */

_Atomic unsigned worker_total_sessions;

struct posted_call {
	worker_call_fn *fn;
	void *arg;
	struct posted_call *next;
};

struct chain_entry {
	uint64_t session_id;
	struct chain *chain;
	struct chain_entry *next;
};

struct worker {
	unsigned index;
	pthread_t thread;
	bool thread_started;
	struct event_base *base;
	int listen_fds[CONFIG_LISTEN_MAX];
	struct event *listen_events[CONFIG_LISTEN_MAX];
	size_t nlisten;
	int wake_fd;
	struct event *wake_event;
	pthread_mutex_t queue_lock;
	struct posted_call *queue_head, *queue_tail;
	atomic_bool draining;
	struct session *sessions;
	struct chain_entry *chains[CHAIN_MAP_BUCKETS];
};

/* worker_listen_socket - a bound, listening, non-blocking SO_REUSEPORT socket */
int
worker_listen_socket(const struct sockaddr *sa, unsigned salen, char *error, size_t esize)
{
	int one = 1;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(error, esize, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, sa, salen) != 0 || listen(fd, 1024) != 0) {
		snprintf(error, esize, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct worker *w = arg;

	/* Bounded: a flood of connections must not starve the other sessions. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warning("accept: %s", strerror(errno));
			return;
		}
		session_accept(w, fd, (struct sockaddr *)&ss, sslen);
	}
}

/* run_posted - run the calls other threads queued for this worker */
static void
run_posted(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t count;
	struct posted_call *calls;

	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warning("worker %u: wake-up read: %s", w->index, strerror(errno));
	pthread_mutex_lock(&w->queue_lock);
	calls = w->queue_head;
	w->queue_head = w->queue_tail = NULL;
	pthread_mutex_unlock(&w->queue_lock);
	while (calls != NULL) {
		struct posted_call *next = calls->next;
		calls->fn(w, calls->arg);
		free(calls);
		calls = next;
	}
}

/* worker_create - a worker that will accept on the given sockets (owned) */
struct worker *
worker_create(unsigned index, const int *listen_fds, size_t nfds)
{
	struct worker *w = calloc(1, sizeof(*w));
	struct event_config *ecfg;

	if (w == NULL)
		return NULL;
	w->index = index;
	w->wake_fd = -1;
	pthread_mutex_init(&w->queue_lock, NULL);
	/* One thread per base: libevent's own locking is not needed. */
	ecfg = event_config_new();
	if (ecfg != NULL) {
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_NOLOCK);
		w->base = event_base_new_with_config(ecfg);
		event_config_free(ecfg);
	}
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->base == NULL || w->wake_fd < 0)
		goto fail;
	w->wake_event = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, run_posted, w);
	if (w->wake_event == NULL || event_add(w->wake_event, NULL) != 0)
		goto fail;
	for (size_t i = 0; i < nfds && i < CONFIG_LISTEN_MAX; i++) {
		w->listen_fds[i] = listen_fds[i];
		w->listen_events[i] = event_new(w->base, listen_fds[i],
		    EV_READ | EV_PERSIST, accept_cb, w);
		if (w->listen_events[i] == NULL || event_add(w->listen_events[i], NULL) != 0)
			goto fail;
		w->nlisten++;
	}
	return w;
fail:
	log_error("worker %u: cannot set up its event loop", index);
	worker_join(&w);
	return NULL;
}

static void *
worker_thread(void *arg)
{
	worker_run(arg);
	return NULL;
}

/* worker_run - run the loop in the calling thread until drained */
void
worker_run(struct worker *w)
{
	/* Drained: no session left, and no backend still saying QUIT. */
	while (!(atomic_load(&w->draining) && w->sessions == NULL &&
	    backend_closing_count() == 0)) {
		if (event_base_loop(w->base, EVLOOP_ONCE) < 0) {
			log_error("worker %u: event loop failed", w->index);
			break;
		}
	}
}

/* worker_start - run the worker's loop in a new thread */
bool
worker_start(struct worker *w)
{
	if (pthread_create(&w->thread, NULL, worker_thread, w) != 0)
		return false;
	w->thread_started = true;
	return true;
}

/* worker_post - run fn(w, arg) on w's thread soon; callable from any thread */
void
worker_post(struct worker *w, worker_call_fn *fn, void *arg)
{
	struct posted_call *call = malloc(sizeof(*call));
	uint64_t one = 1;

	if (call == NULL) {
		/* Losing a completion would stall a session until its timeout. */
		log_error("worker %u: out of memory posting a call", w->index);
		return;
	}
	call->fn = fn;
	call->arg = arg;
	call->next = NULL;
	pthread_mutex_lock(&w->queue_lock);
	if (w->queue_tail != NULL)
		w->queue_tail->next = call;
	else
		w->queue_head = call;
	w->queue_tail = call;
	pthread_mutex_unlock(&w->queue_lock);
	if (write(w->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warning("worker %u: wake-up write: %s", w->index, strerror(errno));
}

/* drain_in_thread - close the listeners and tell sessions to finish */
static void
drain_in_thread(struct worker *w, void *arg)
{
	for (size_t i = 0; i < w->nlisten; i++) {
		if (w->listen_events[i] != NULL) {
			event_free(w->listen_events[i]);
			w->listen_events[i] = NULL;
		}
		if (w->listen_fds[i] >= 0) {
			close(w->listen_fds[i]);
			w->listen_fds[i] = -1;
		}
	}
	atomic_store(&w->draining, true);
	session_drain_all(w);
}

/* worker_drain - stop accepting, ask sessions to finish; any thread */
void
worker_drain(struct worker *w)
{
	worker_post(w, drain_in_thread, NULL);
}

/* worker_wait - wait for the worker's thread to end (the worker stays) */
void
worker_wait(struct worker *w)
{
	if (w->thread_started) {
		pthread_join(w->thread, NULL);
		w->thread_started = false;
	}
}

/* worker_join - wait for the thread to end, then free the worker */
void
worker_join(struct worker **wp)
{
	struct worker *w = *wp;

	if (w == NULL)
		return;
	worker_wait(w);
	for (size_t i = 0; i < w->nlisten; i++) {
		if (w->listen_events[i] != NULL)
			event_free(w->listen_events[i]);
		if (w->listen_fds[i] >= 0)
			close(w->listen_fds[i]);
	}
	if (w->wake_event != NULL)
		event_free(w->wake_event);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	/* Late calls (results of jobs that outlived their session) still own
	 * what they carry: run them, now that no loop thread is left. */
	while (w->queue_head != NULL) {
		struct posted_call *call = w->queue_head;
		w->queue_head = call->next;
		call->fn(w, call->arg);
		free(call);
	}
	for (size_t b = 0; b < CHAIN_MAP_BUCKETS; b++) {
		while (w->chains[b] != NULL) {
			struct chain_entry *next = w->chains[b]->next;
			free(w->chains[b]);
			w->chains[b] = next;
		}
	}
	if (w->base != NULL)
		event_base_free(w->base);
	pthread_mutex_destroy(&w->queue_lock);
	free(w);
	*wp = NULL;
}

struct event_base *
worker_base(const struct worker *w)
{
	return w->base;
}

unsigned
worker_index(const struct worker *w)
{
	return w->index;
}

bool
worker_draining(const struct worker *w)
{
	return atomic_load(&((struct worker *)w)->draining);
}

struct session **
worker_sessions(struct worker *w)
{
	return &w->sessions;
}

static size_t
bucket_of(uint64_t id)
{
	/* Ids are sequential; mix them so neighbours spread over buckets. */
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)(id & (CHAIN_MAP_BUCKETS - 1));
}

void
worker_register_chain(struct worker *w, uint64_t session_id, struct chain *chain)
{
	struct chain_entry *e = malloc(sizeof(*e));
	size_t b = bucket_of(session_id);

	if (e == NULL) {
		/* Without an entry, async results for this session are dropped
		 * and its checks run into their timeout: degraded, not broken. */
		log_error("worker %u: out of memory registering a session", w->index);
		return;
	}
	e->session_id = session_id;
	e->chain = chain;
	e->next = w->chains[b];
	w->chains[b] = e;
}

void
worker_unregister_chain(struct worker *w, uint64_t session_id)
{
	for (struct chain_entry **p = &w->chains[bucket_of(session_id)]; *p != NULL;
	    p = &(*p)->next) {
		if ((*p)->session_id == session_id) {
			struct chain_entry *dead = *p;
			*p = dead->next;
			free(dead);
			return;
		}
	}
}

struct chain *
worker_find_chain(struct worker *w, uint64_t session_id)
{
	for (struct chain_entry *e = w->chains[bucket_of(session_id)]; e != NULL; e = e->next)
		if (e->session_id == session_id)
			return e->chain;
	return NULL;
}
