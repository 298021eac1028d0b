/*
 * rules.c - the regex rule check: at end of data, runs the configuration's
 * rule set over the message and records each hit as a symbol (the rule's
 * name, score and description).
 *
 * Asynchronous: matching a large message takes milliseconds, so it runs in
 * the thread pool, never on an event loop.  The job owns a copy of the
 * message (at most scan_limit bytes), of the envelope, and a reference to
 * the rule set, so it stays valid whatever happens to the session; its
 * result comes back through chain_complete() and is dropped if the session
 * has gone.  Failure action: rules_failure (default continue).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "filter.h"
#include "log.h"
#include "message.h"
#include "msgbuf.h"
#include "pool.h"
#include "ruleset.h"

struct rules_job {
	struct filter_request req;
	struct ruleset *ruleset;
	size_t scan_limit;
	char *data;
	size_t len;
	char *client_ip, *client_name, *helo, *mail_from;
	char **rcpts;
	size_t nrcpts;
};

static void
job_free(struct rules_job *job)
{
	ruleset_unref(&job->ruleset);
	free(job->data);
	free(job->client_ip);
	free(job->client_name);
	free(job->helo);
	free(job->mail_from);
	for (size_t i = 0; i < job->nrcpts; i++)
		free(job->rcpts[i]);
	free(job->rcpts);
	free(job);
}

/* run_rules - in a pool thread: parse, match, report */
static void
run_rules(void *arg)
{
	struct rules_job *job = arg;
	struct filter_result res;
	struct rule_result rr;
	const char *why = NULL;

	memset(&res, 0, sizeof(res));
	struct message_view *mv = message_view_parse(job->data, job->len, job->scan_limit, &why);
	if (mv == NULL) {
		log_warning("%016llx: check rules: cannot parse the message: %s",
		    (unsigned long long)job->req.session_id, why != NULL ? why : "?");
		chain_complete(&job->req, &res);
		job_free(job);
		return;
	}
	struct rule_envelope env = {
		.client_ip = job->client_ip,
		.client_name = job->client_name,
		.helo = job->helo,
		.mail_from = job->mail_from,
		.rcpts = (const char *const *)job->rcpts,
		.nrcpts = job->nrcpts,
	};
	if (ruleset_eval(job->ruleset, mv, &env, &rr)) {
		for (size_t i = 0; i < rr.nhits; i++) {
			if (!filter_add_symbol(&res, "rules", rr.hits[i].name, rr.hits[i].score,
			    rr.hits[i].description)) {
				log_warning("%016llx: check rules: more than %d hits, the rest dropped",
				    (unsigned long long)job->req.session_id, FILTER_RESULT_SYMBOLS_MAX);
				break;
			}
		}
		if (rr.limit_errors > 0)
			log_warning("%016llx: check rules: %u rules stopped by the match limit "
			    "(counted as not matched), first: %s",
			    (unsigned long long)job->req.session_id, rr.limit_errors, rr.first_error);
		rule_result_free(&rr);
	}
	message_view_free(&mv);
	chain_complete(&job->req, &res);
	job_free(job);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static enum filter_status
rules_eod(const struct filter_txn *txn, void **state, const struct filter_request *req,
    struct filter_result *result_r)
{
	const struct config *cfg = txn->cfg;
	struct rules_job *job;

	if (cfg->ruleset == NULL)
		return FILTER_DONE;
	job = calloc(1, sizeof(*job));
	if (job == NULL)
		return FILTER_ERROR;
	job->req = *req;
	job->ruleset = ruleset_ref(cfg->ruleset);
	job->scan_limit = (size_t)cfg->scan_limit;
	job->len = txn->message->size < cfg->scan_limit ? (size_t)txn->message->size :
	    (size_t)cfg->scan_limit;
	job->data = malloc(job->len + 1);
	job->client_ip = dup_or_null(txn->client_ip);
	job->client_name = dup_or_null(txn->client_name);
	job->helo = dup_or_null(txn->helo);
	job->mail_from = dup_or_null(txn->mail_from);
	job->rcpts = calloc(txn->nrcpts + 1, sizeof(*job->rcpts));
	if (job->data == NULL || job->rcpts == NULL ||
	    msgbuf_read(txn->message, 0, job->data, job->len) != (ssize_t)job->len) {
		job_free(job);
		return FILTER_ERROR;
	}
	job->data[job->len] = '\0';
	for (size_t i = 0; i < txn->nrcpts; i++) {
		job->rcpts[i] = strdup(txn->rcpts[i]);
		if (job->rcpts[i] == NULL) {
			job_free(job);
			return FILTER_ERROR;
		}
		job->nrcpts++;
	}
	if (!pool_submit(run_rules, job)) {
		log_warning("%016llx: check rules: thread pool full",
		    (unsigned long long)req->session_id);
		job_free(job);
		return FILTER_ERROR;
	}
	return FILTER_PENDING;
}

static enum check_mode
rules_mode(const struct config *cfg)
{
	return cfg->rules_mode;
}

static struct filter_limits
rules_limits(const struct config *cfg)
{
	return (struct filter_limits){ cfg->rules_timeout_ms, cfg->rules_failure };
}

const struct filter filter_rules = {
	.name = "rules",
	.mode = rules_mode,
	.limits = rules_limits,
	.hooks = { [STAGE_EOD] = rules_eod },
};
