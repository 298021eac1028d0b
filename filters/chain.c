/*
 * chain.c - runs the checks of one SMTP stage for one session (see chain.h).
 *
 * Owns: one timer per pending check, freed when the check answers, times
 * out, or the session ends.  Results from other threads arrive through
 * worker_post() and are matched by (session id, request id); anything that
 * does not match a pending slot is a late or duplicate answer and dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chain.h"
#include "config.h"
#include "log.h"
#include "worker.h"

#define DEFAULT_CHECK_TIMEOUT_MS 10000
#define TEMPFAIL_REPLY "451 4.7.1 Temporary failure in a check, try again later"

struct posted_result {
	struct filter_request req;
	struct filter_result result;
};

static const char *const verdict_names[VERDICT_COUNT] = {
	[VERDICT_CONTINUE] = "continue",
	[VERDICT_ACCEPT] = "accept",
	[VERDICT_TEMPFAIL] = "tempfail",
	[VERDICT_REJECT] = "reject",
	[VERDICT_DISCONNECT] = "disconnect",
};

/* verdict_name - "continue", "accept", "tempfail", "reject", "disconnect" */
const char *
verdict_name(enum verdict verdict)
{
	return (unsigned)verdict < VERDICT_COUNT ? verdict_names[verdict] : "?";
}

bool
symbol_list_add(struct symbol_list *list, const struct symbol *sym)
{
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 8;
		struct symbol *n = realloc(list->items, cap * sizeof(*n));
		if (n == NULL)
			return false;
		list->items = n;
		list->cap = cap;
	}
	list->items[list->count++] = *sym;
	return true;
}

void
symbol_list_truncate(struct symbol_list *list, size_t count)
{
	if (count < list->count)
		list->count = count;
}

void
symbol_list_free(struct symbol_list *list)
{
	free(list->items);
	list->items = NULL;
	list->count = list->cap = 0;
}

/* symbol_list_score - the sum of the scores that count (not monitor) */
double
symbol_list_score(const struct symbol_list *list)
{
	double total = 0;

	for (size_t i = 0; i < list->count; i++)
		if (!list->items[i].monitor)
			total += list->items[i].score;
	return total;
}

static enum check_mode
filter_mode(const struct filter *f, const struct config *cfg)
{
	return f->mode != NULL ? f->mode(cfg) : CHECK_ON;
}

/* merge - fold one check's result into the stage's; frees its symbols */
static void
merge(struct chain *c, unsigned index, struct filter_result *res)
{
	const struct filter *f = filter_registry[index];
	bool monitor = filter_mode(f, c->cfg) == CHECK_MONITOR;

	for (size_t i = 0; i < res->symbols.count; i++) {
		struct symbol sym = res->symbols.items[i];
		if (sym.check[0] == '\0')
			snprintf(sym.check, sizeof(sym.check), "%s", f->name);
		sym.monitor = monitor;
		if (!symbol_list_add(c->symbols, &sym))
			log_error("%016llx: check %s: out of memory recording %s",
			    (unsigned long long)c->session_id, f->name, sym.name);
	}
	filter_result_free(res);
	if (res->verdict == VERDICT_CONTINUE)
		return;
	if (monitor) {
		log_info("%016llx: check %s: monitor: would %s: %s",
		    (unsigned long long)c->session_id, f->name,
		    verdict_name(res->verdict), res->reply);
		return;
	}
	if (res->verdict > c->verdict) {
		c->verdict = res->verdict;
		snprintf(c->reply, sizeof(c->reply), "%s", res->reply);
	}
}

/* finish_if_done - call the session back when nothing is pending */
static void
finish_if_done(struct chain *c)
{
	if (c->pending > 0 || c->starting || !c->running)
		return;
	c->running = false;
	c->done(c->done_arg, c->verdict, c->reply);
}

/* fail_check - a check errored or timed out: apply its failure action */
static void
fail_check(struct chain *c, unsigned index, enum failure_action on_failure,
    const char *what)
{
	const struct filter *f = filter_registry[index];
	bool monitor = filter_mode(f, c->cfg) == CHECK_MONITOR;

	if (on_failure == FAILURE_TEMPFAIL && !monitor) {
		log_warning("%016llx: check %s: %s: failure action tempfail",
		    (unsigned long long)c->session_id, f->name, what);
		if (c->verdict < VERDICT_TEMPFAIL) {
			c->verdict = VERDICT_TEMPFAIL;
			snprintf(c->reply, sizeof(c->reply), "%s", TEMPFAIL_REPLY);
		}
	} else {
		log_warning("%016llx: check %s: %s: continuing without it",
		    (unsigned long long)c->session_id, f->name, what);
	}
}

static void
slot_clear(struct chain_slot *slot)
{
	slot->request_id = 0;
	if (slot->timer != NULL) {
		event_free(slot->timer);
		slot->timer = NULL;
	}
}

/* slot_timeout - a pending check did not answer in time */
static void
slot_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct chain_slot *slot = arg;
	struct chain *c = slot->chain;
	const struct filter *f = filter_registry[slot->index];
	struct filter_request req = { c->worker, c->session_id, slot->request_id, slot->index };

	slot_clear(slot);
	if (f->cancel != NULL)
		f->cancel(&req);
	fail_check(c, slot->index, slot->on_failure, "timeout");
	c->pending--;
	finish_if_done(c);
}

/* deliver - on the session's thread: a pending check's result arrived */
static void
deliver(struct worker *w, void *arg)
{
	struct posted_result *pr = arg;
	struct chain *c = worker_find_chain(w, pr->req.session_id);
	unsigned index = pr->req.filter_index;

	if (c != NULL && c->running && index < FILTERS_MAX &&
	    c->slots[index].request_id == pr->req.request_id &&
	    pr->req.request_id != 0) {
		slot_clear(&c->slots[index]);
		merge(c, index, &pr->result);
		c->pending--;
		finish_if_done(c);
	} else {
		filter_result_free(&pr->result);
	}
	free(pr);
}

/* chain_complete - report a pending check's result; callable from any thread */
void
chain_complete(const struct filter_request *req, const struct filter_result *result)
{
	struct posted_result *pr = malloc(sizeof(*pr));

	if (pr == NULL) {
		/* The check's timeout will settle the slot. */
		log_error("%016llx: out of memory delivering a check result",
		    (unsigned long long)req->session_id);
		struct filter_result lost = *result;
		filter_result_free(&lost);
		return;
	}
	pr->req = *req;
	pr->result = *result;
	/* Always through the queue, even from the same thread: done() must
	 * never run inside a check's own hook or callback. */
	worker_post(req->worker, deliver, pr);
}

/* chain_init - bind a chain to its session; registers it with the worker */
void
chain_init(struct chain *c, struct worker *w, uint64_t session_id,
    const struct config *cfg, void **states, struct symbol_list *symbols)
{
	memset(c, 0, sizeof(*c));
	c->worker = w;
	c->session_id = session_id;
	c->cfg = cfg;
	c->states = states;
	c->symbols = symbols;
	for (unsigned i = 0; i < FILTERS_MAX; i++) {
		c->slots[i].chain = c;
		c->slots[i].index = i;
	}
	worker_register_chain(w, session_id, c);
}

/* chain_run - run every active check's hook for stage */
void
chain_run(struct chain *c, enum stage stage, const struct filter_txn *txn,
    chain_done_fn *done, void *arg)
{
	c->stage = stage;
	c->running = true;
	c->starting = true;
	c->pending = 0;
	c->verdict = VERDICT_CONTINUE;
	c->reply[0] = '\0';
	c->done = done;
	c->done_arg = arg;

	for (unsigned i = 0; filter_registry[i] != NULL && i < FILTERS_MAX; i++) {
		const struct filter *f = filter_registry[i];
		if (f->hooks[stage] == NULL || filter_mode(f, c->cfg) == CHECK_OFF)
			continue;
		struct filter_limits limits = { DEFAULT_CHECK_TIMEOUT_MS, FAILURE_TEMPFAIL };
		if (f->limits != NULL)
			limits = f->limits(c->cfg);
		struct filter_request req = { c->worker, c->session_id, ++c->next_request_id, i };
		struct filter_result res;
		memset(&res, 0, sizeof(res));
		enum filter_status st = f->hooks[stage](txn, &c->states[i], &req, &res);
		if (st == FILTER_DONE) {
			merge(c, i, &res);
			continue;
		}
		/* Evidence is only taken from a completed check. */
		filter_result_free(&res);
		if (st == FILTER_PENDING) {
			struct chain_slot *slot = &c->slots[i];
			struct timeval tv = { limits.timeout_ms / 1000,
			    (limits.timeout_ms % 1000) * 1000 };
			slot->request_id = req.request_id;
			slot->on_failure = limits.on_failure;
			slot->timer = evtimer_new(worker_base(c->worker), slot_timeout, slot);
			if (slot->timer == NULL || evtimer_add(slot->timer, &tv) != 0) {
				/* No timer, no guarantee of an answer: fail it now. */
				slot_clear(slot);
				fail_check(c, i, limits.on_failure, "cannot arm timeout");
				continue;
			}
			c->pending++;
		} else {
			fail_check(c, i, limits.on_failure, "error");
		}
	}
	c->starting = false;
	finish_if_done(c);
}

/* chain_end - the session is ending: cancel pending checks, release states */
void
chain_end(struct chain *c, const struct filter_txn *txn)
{
	for (unsigned i = 0; filter_registry[i] != NULL && i < FILTERS_MAX; i++) {
		const struct filter *f = filter_registry[i];
		struct chain_slot *slot = &c->slots[i];
		if (slot->request_id != 0) {
			struct filter_request req = { c->worker, c->session_id, slot->request_id, i };
			slot_clear(slot);
			if (f->cancel != NULL)
				f->cancel(&req);
		}
		if (c->states[i] != NULL && f->session_end != NULL)
			f->session_end(txn, c->states[i]);
		c->states[i] = NULL;
	}
	c->running = false;
	c->pending = 0;
	worker_unregister_chain(c->worker, c->session_id);
}
