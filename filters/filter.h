/*
 * filter.h - the one interface every check implements.
 *
 * A check hooks SMTP stages.  It sees a read-only view of the transaction
 * (struct filter_txn), never the session, and answers with evidence
 * (symbols with scores) and, rarely, a verdict of its own (a connection
 * limit, a deny list).  policy/ turns the evidence into an action.
 *
 * Asynchronous contract: a hook returns FILTER_DONE with its result filled
 * in, FILTER_ERROR, or FILTER_PENDING after starting work elsewhere (a DNS
 * query, a worker thread).  A pending check later calls chain_complete()
 * exactly once, from any thread, with the request it was given; the chain
 * looks the session up by id and drops the result if the session or the
 * request is gone.  Each check has a timeout and an explicit failure
 * action (tempfail or continue); the chain applies it, logs that it did,
 * and calls cancel() so the check can stop its work.  A second or late
 * completion is ignored.  Nothing crosses the boundary as a session pointer.
 */
#ifndef MOAT_FILTER_H
#define MOAT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct config;
struct msgbuf;
struct worker;

enum stage {
	STAGE_CONNECT,
	STAGE_HELO,
	STAGE_MAIL,
	STAGE_RCPT,
	STAGE_DATA,		/* the DATA command, before 354 */
	STAGE_EOD,		/* end of data: the whole message is held */
	STAGE_COUNT /* must be last */
};

enum check_mode {
	CHECK_OFF,
	CHECK_MONITOR,		/* logged, score not counted, verdict not applied */
	CHECK_ON,
	CHECK_MODE_COUNT /* must be last */
};

/* Ordered by precedence: when checks disagree the highest wins. */
enum verdict {
	VERDICT_CONTINUE,	/* no opinion: evidence only */
	VERDICT_ACCEPT,		/* allow-listed: skip scoring */
	VERDICT_TEMPFAIL,	/* 4xx */
	VERDICT_REJECT,		/* 5xx */
	VERDICT_DISCONNECT,	/* 421 and close */
	VERDICT_COUNT /* must be last */
};

enum failure_action {
	FAILURE_TEMPFAIL,	/* a check that cannot answer defers the mail */
	FAILURE_CONTINUE,	/* ... or is skipped, and the log says so */
	FAILURE_ACTION_COUNT /* must be last */
};

enum filter_status {
	FILTER_ERROR = -1,
	FILTER_PENDING = 0,
	FILTER_DONE = 1,
};

#define SYMBOL_NAME_MAX 64
#define SYMBOL_CHECK_MAX 24
#define SYMBOL_DETAIL_MAX 200
/* Evidence one check may add in one stage (a rule set can hit dozens). */
#define FILTER_RESULT_SYMBOLS_MAX 256
#define FILTER_REPLY_MAX 512
#define FILTERS_MAX 32

struct symbol {
	char name[SYMBOL_NAME_MAX];	/* SPF_FAIL, RBL_ZEN, a rule name */
	char check[SYMBOL_CHECK_MAX];	/* the check that recorded it */
	char detail[SYMBOL_DETAIL_MAX];
	double score;
	bool monitor;			/* recorded in monitor mode: not counted */
};

struct symbol_list {
	struct symbol *items;
	size_t count;
	size_t cap;
};

/* A check's answer.  Its symbols are heap-allocated: the result owns them
 * until it is handed to the chain (returned DONE, or chain_complete()). */
struct filter_result {
	enum verdict verdict;
	char reply[FILTER_REPLY_MAX];	/* "421 4.7.0 text"; "" = the default */
	struct symbol_list symbols;
};

/* What a check may know of a transaction; valid only during the hook call. */
struct filter_txn {
	uint64_t session_id;
	const struct config *cfg;
	const struct sockaddr *client_addr;
	const char *client_ip;
	const char *client_name;	/* NULL: unknown */
	const char *helo;		/* NULL before HELO/EHLO */
	const char *mail_from;		/* NULL before MAIL; "" for <> */
	const char *rcpt;		/* STAGE_RCPT: the recipient asked for */
	const char *const *rcpts;	/* recipients accepted so far */
	size_t nrcpts;
	const struct msgbuf *message;	/* STAGE_EOD: the message as held */
};

/* The ticket a pending check keeps to report back with chain_complete(). */
struct filter_request {
	struct worker *worker;		/* the session's event loop */
	uint64_t session_id;
	uint64_t request_id;
	unsigned filter_index;
};

struct filter_limits {
	unsigned timeout_ms;
	enum failure_action on_failure;
};

/*
 * A hook fills result_r and returns FILTER_DONE, or keeps req and returns
 * FILTER_PENDING.  state points at the check's per-session slot (NULL at
 * first), released by session_end.
 */
typedef enum filter_status filter_hook_fn(const struct filter_txn *txn,
    void **state, const struct filter_request *req, struct filter_result *result_r);

struct filter {
	const char *name;
	enum check_mode (*mode)(const struct config *cfg);
	struct filter_limits (*limits)(const struct config *cfg);	/* NULL: defaults */
	int (*init)(const struct config *cfg, const char **error_r);	/* process-wide */
	void (*deinit)(void);
	filter_hook_fn *hooks[STAGE_COUNT];
	void (*cancel)(const struct filter_request *req);		/* may be NULL */
	void (*session_end)(const struct filter_txn *txn, void *state);	/* may be NULL */
};

/* chain_complete - report a pending check's result (taking over its
 * symbols); callable from any thread */
void chain_complete(const struct filter_request *req, const struct filter_result *result);

/* filter_add_symbol - append evidence to a result (bounded; false if full) */
bool filter_add_symbol(struct filter_result *result, const char *check,
    const char *name, double score, const char *detail);

/* filter_result_free - release a result's symbols (when not handed over) */
void filter_result_free(struct filter_result *result);

/* filter_set_verdict - set a verdict with its reply line ("421 4.7.0 ...") */
void filter_set_verdict(struct filter_result *result, enum verdict verdict,
    const char *reply);

/* The checks moatd runs, in order (registry.c); NULL-terminated.  A
 * pointer so that unit tests can run the chain over checks of their own. */
extern const struct filter *const *filter_registry;

/* filters_init / filters_deinit - process-wide set-up of every check */
int filters_init(const struct config *cfg, const char **error_r);
void filters_deinit(void);

#endif
