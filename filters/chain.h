/*
 * chain.h - runs the checks of one SMTP stage for one session.
 *
 * Every check of the stage starts at once (DNS-bound checks overlap); the
 * stage ends when the last one has answered, failed or timed out.  The
 * chain merges verdicts by precedence, appends symbols to the session's
 * list, applies monitor mode, and calls the session back once.
 */
#ifndef MOAT_CHAIN_H
#define MOAT_CHAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"

struct event;
struct config;

/* done(arg, verdict, reply): reply is "" when no check supplied one */
typedef void chain_done_fn(void *arg, enum verdict verdict, const char *reply);

struct chain_slot {
	struct chain *chain;	/* back-pointer for the timer callback */
	unsigned index;
	uint64_t request_id;	/* 0: not pending */
	struct event *timer;
	enum failure_action on_failure;
};

struct chain {
	struct worker *worker;
	uint64_t session_id;
	const struct config *cfg;
	void **states;			/* FILTERS_MAX per-session slots */
	struct symbol_list *symbols;	/* where evidence goes */
	enum stage stage;
	bool running;
	bool starting;			/* inside chain_run: hold back done() */
	unsigned pending;
	uint64_t next_request_id;
	enum verdict verdict;
	char reply[FILTER_REPLY_MAX];
	struct chain_slot slots[FILTERS_MAX];
	chain_done_fn *done;
	void *done_arg;
};

/* chain_init - bind a chain to its session; registers it with the worker */
void chain_init(struct chain *c, struct worker *w, uint64_t session_id,
    const struct config *cfg, void **states, struct symbol_list *symbols);

/*
 * chain_run - run every active check's hook for stage; done is called
 * exactly once, possibly before chain_run returns.
 */
void chain_run(struct chain *c, enum stage stage, const struct filter_txn *txn,
    chain_done_fn *done, void *arg);

/* chain_end - the session is ending: cancel pending checks, release states */
void chain_end(struct chain *c, const struct filter_txn *txn);

/* symbol_list_add / symbol_list_clear / symbol_list_free / symbol_list_score */
bool symbol_list_add(struct symbol_list *list, const struct symbol *sym);
void symbol_list_truncate(struct symbol_list *list, size_t count);
void symbol_list_free(struct symbol_list *list);
double symbol_list_score(const struct symbol_list *list);

/* verdict_name - "continue", "accept", "tempfail", "reject", "disconnect" */
const char *verdict_name(enum verdict verdict);

#endif
