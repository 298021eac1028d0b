/*
 * test-chain.c - the filter chain's contract: verdict precedence, monitor
 * mode, asynchronous completion from another thread, timeouts with their
 * failure action, and late, duplicate or orphaned results being dropped.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "chain.h"
#include "config.h"
#include "test.h"
#include "worker.h"

static struct worker *w;
static struct config *cfg;

/* What the test checks do, set per test. */
static enum check_mode mode_a = CHECK_ON, mode_b = CHECK_ON;
static enum verdict verdict_a, verdict_b;
static enum filter_status status_b;
static enum failure_action failure_b;
static struct filter_request saved_req;
static int cancels, session_ends;
static char state_marker;

static enum check_mode get_mode_a(const struct config *c) { return mode_a; }
static enum check_mode get_mode_b(const struct config *c) { return mode_b; }

static struct filter_limits
limits_b(const struct config *c)
{
	return (struct filter_limits){ 50, failure_b };
}

static enum filter_status
hook_a(const struct filter_txn *txn, void **state, const struct filter_request *req,
    struct filter_result *res)
{
	filter_add_symbol(res, NULL, "SYM_A", 2.5, "from a");
	filter_set_verdict(res, verdict_a, verdict_a == VERDICT_REJECT ?
	    "550 5.7.1 a says no" : "451 4.7.1 a says later");
	*state = &state_marker;
	return FILTER_DONE;
}

static enum filter_status
hook_b(const struct filter_txn *txn, void **state, const struct filter_request *req,
    struct filter_result *res)
{
	saved_req = *req;
	if (status_b == FILTER_DONE) {
		filter_add_symbol(res, "custom", "SYM_B", 1.0, NULL);
		filter_set_verdict(res, verdict_b, "550 5.7.1 b says no");
	}
	return status_b;
}

static void
cancel_b(const struct filter_request *req)
{
	cancels++;
}

static void
end_a(const struct filter_txn *txn, void *state)
{
	CHECK(state == &state_marker);
	session_ends++;
}

static const struct filter filter_a = {
	.name = "a", .mode = get_mode_a,
	.hooks = { [STAGE_MAIL] = hook_a }, .session_end = end_a,
};
static const struct filter filter_b = {
	.name = "b", .mode = get_mode_b, .limits = limits_b,
	.hooks = { [STAGE_MAIL] = hook_b }, .cancel = cancel_b,
};
static const struct filter *const test_filters[] = { &filter_a, &filter_b, NULL };

struct outcome {
	int calls;
	enum verdict verdict;
	char reply[FILTER_REPLY_MAX];
};

static void
done(void *arg, enum verdict verdict, const char *reply)
{
	struct outcome *o = arg;
	o->calls++;
	o->verdict = verdict;
	snprintf(o->reply, sizeof(o->reply), "%s", reply);
}

struct fixture {
	struct chain chain;
	void *states[FILTERS_MAX];
	struct symbol_list symbols;
	struct outcome out;
	struct filter_txn txn;
};

static void
setup(struct fixture *f, uint64_t id)
{
	memset(f, 0, sizeof(*f));
	f->txn.session_id = id;
	f->txn.cfg = cfg;
	f->txn.client_ip = "192.0.2.1";
	chain_init(&f->chain, w, id, cfg, f->states, &f->symbols);
	mode_a = mode_b = CHECK_ON;
	verdict_a = verdict_b = VERDICT_CONTINUE;
	status_b = FILTER_DONE;
	failure_b = FAILURE_TEMPFAIL;
	cancels = session_ends = 0;
}

static void
teardown(struct fixture *f)
{
	chain_end(&f->chain, &f->txn);
	symbol_list_free(&f->symbols);
}

/* spin - run the worker's loop until cond or a bounded number of rounds */
static void
spin(const int *calls, int want)
{
	for (int i = 0; i < 200 && *calls < want; i++) {
		struct timeval tv = { 0, 10000 };
		event_base_loopexit(worker_base(w), &tv);
		event_base_dispatch(worker_base(w));
	}
}

static void
test_sync_evidence(void)
{
	struct fixture f;
	setup(&f, 1);
	chain_run(&f.chain, STAGE_MAIL, &f.txn, done, &f.out);
	CHECK_INT(f.out.calls, 1);
	CHECK_INT(f.out.verdict, VERDICT_CONTINUE);
	CHECK_INT(f.symbols.count, 2);
	CHECK_STR(f.symbols.items[0].check, "a");
	CHECK_STR(f.symbols.items[1].check, "custom");
	CHECK(symbol_list_score(&f.symbols) == 3.5);
	/* A stage without hooks completes at once too. */
	chain_run(&f.chain, STAGE_RCPT, &f.txn, done, &f.out);
	CHECK_INT(f.out.calls, 2);
	teardown(&f);
	CHECK_INT(session_ends, 1);
}

static void
test_precedence(void)
{
	struct fixture f;
	setup(&f, 2);
	verdict_a = VERDICT_TEMPFAIL;
	verdict_b = VERDICT_REJECT;
	chain_run(&f.chain, STAGE_MAIL, &f.txn, done, &f.out);
	CHECK_INT(f.out.verdict, VERDICT_REJECT);
	CHECK_STR(f.out.reply, "550 5.7.1 b says no");
	teardown(&f);
}

static void
test_monitor(void)
{
	struct fixture f;
	setup(&f, 3);
	mode_a = CHECK_MONITOR;
	verdict_a = VERDICT_REJECT;
	chain_run(&f.chain, STAGE_MAIL, &f.txn, done, &f.out);
	CHECK_INT(f.out.verdict, VERDICT_CONTINUE);
	CHECK(f.symbols.items[0].monitor);
	CHECK(symbol_list_score(&f.symbols) == 1.0);
	teardown(&f);
}

static void
test_off(void)
{
	struct fixture f;
	setup(&f, 4);
	mode_a = CHECK_OFF;
	mode_b = CHECK_OFF;
	chain_run(&f.chain, STAGE_MAIL, &f.txn, done, &f.out);
	CHECK_INT(f.out.calls, 1);
	CHECK_INT(f.symbols.count, 0);
	teardown(&f);
	CHECK_INT(session_ends, 0);
}

static void *
complete_later(void *arg)
{
	struct filter_result res;
	memset(&res, 0, sizeof(res));
	usleep(5000);
	filter_add_symbol(&res, NULL, "SYM_ASYNC", 4.0, "from a thread");
	filter_set_verdict(&res, VERDICT_REJECT, "554 5.7.1 async no");
	chain_complete(&saved_req, &res);
	return NULL;
}

static void
test_async_from_thread(void)
{
	struct fixture f;
	pthread_t t;
	setup(&f, 5);
	status_b = FILTER_PENDING;
	chain_run(&f.chain, STAGE_MAIL, &f.txn, done, &f.out);
	CHECK_INT(f.out.calls, 0);
	pthread_create(&t, NULL, complete_later, NULL);
	spin(&f.out.calls, 1);
	pthread_join(t, NULL);
	CHECK_INT(f.out.calls, 1);
	CHECK_INT(f.out.verdict, VERDICT_REJECT);
	CHECK_STR(f.out.reply, "554 5.7.1 async no");
	CHECK_INT(f.symbols.count, 2);
	CHECK_STR(f.symbols.items[1].name, "SYM_ASYNC");
	CHECK_STR(f.symbols.items[1].check, "b");
	/* A duplicate answer changes nothing. */
	complete_later(NULL);
	spin(&f.out.calls, 2);
	CHECK_INT(f.out.calls, 1);
	CHECK_INT(f.symbols.count, 2);
	CHECK_INT(cancels, 0);
	teardown(&f);
}

static void
test_timeout_tempfail(void)
{
	struct fixture f;
	setup(&f, 6);
	status_b = FILTER_PENDING;
	chain_run(&f.chain, STAGE_MAIL, &f.txn, done, &f.out);
	spin(&f.out.calls, 1);
	CHECK_INT(f.out.calls, 1);
	CHECK_INT(f.out.verdict, VERDICT_TEMPFAIL);
	CHECK(strncmp(f.out.reply, "451 4.7.1", 9) == 0);
	CHECK_INT(cancels, 1);
	/* The late answer is dropped: no second call, no evidence added. */
	complete_later(NULL);
	spin(&f.out.calls, 2);
	CHECK_INT(f.out.calls, 1);
	CHECK_INT(f.symbols.count, 1);
	teardown(&f);
}

static void
test_timeout_continue(void)
{
	struct fixture f;
	setup(&f, 7);
	status_b = FILTER_PENDING;
	failure_b = FAILURE_CONTINUE;
	chain_run(&f.chain, STAGE_MAIL, &f.txn, done, &f.out);
	spin(&f.out.calls, 1);
	CHECK_INT(f.out.calls, 1);
	CHECK_INT(f.out.verdict, VERDICT_CONTINUE);
	teardown(&f);
}

static void
test_error_applies_failure_action(void)
{
	struct fixture f;
	setup(&f, 8);
	status_b = FILTER_ERROR;
	chain_run(&f.chain, STAGE_MAIL, &f.txn, done, &f.out);
	CHECK_INT(f.out.calls, 1);
	CHECK_INT(f.out.verdict, VERDICT_TEMPFAIL);
	teardown(&f);
}

static void
test_session_gone(void)
{
	struct fixture f;
	int never = 0;
	setup(&f, 9);
	status_b = FILTER_PENDING;
	chain_run(&f.chain, STAGE_MAIL, &f.txn, done, &f.out);
	teardown(&f);
	CHECK_INT(cancels, 1);
	/* The result for a session that ended is dropped without harm. */
	complete_later(NULL);
	spin(&never, 1);
	CHECK_INT(f.out.calls, 0);
}

int
main(void)
{
	static const struct test_case cases[] = {
		{ "sync_evidence", test_sync_evidence },
		{ "precedence", test_precedence },
		{ "monitor", test_monitor },
		{ "off", test_off },
		{ "async_from_thread", test_async_from_thread },
		{ "timeout_tempfail", test_timeout_tempfail },
		{ "timeout_continue", test_timeout_continue },
		{ "error_applies_failure_action", test_error_applies_failure_action },
		{ "session_gone", test_session_gone },
	};
	char *o[] = { "log_level=error", "rules=" };
	cfg = config_load(NULL, o, 2, NULL, NULL);
	log_set_level(LOG_LEVEL_ERROR);
	filter_registry = test_filters;
	w = worker_create(0, NULL, 0);
	int rc = test_main(cases, TEST_COUNT(cases));
	worker_join(&w);
	config_unref(&cfg);
	return rc;
}
