/*
 * lists.c - the allow and deny lists as a check: client address, HELO
 * name, sender and recipient.
 *
 * Deny refuses at the earliest stage it can (554 5.7.1 at connect, HELO or
 * MAIL; 554 5.7.1 for that recipient at RCPT).  Allow skips scoring: the
 * message is still checked, for the record, but accepted whatever its
 * score, unless a check refuses it outright.  Deny beats allow.
 *
 * Recipients with different policies (allow-listed or not, different
 * domain_scores) cannot share one verdict at end of data, so a recipient
 * whose policy differs from the transaction's first one gets 452 4.5.3 and
 * the client sends it again in a transaction of its own (RFC 5321
 * 4.5.3.1.10: 452 for recipients is how a server asks for that).
 * Per-session state: what was allow-listed, and the transaction's policy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "filter.h"
#include "lists.h"

#define NO_CLASS (-2)

struct lists_state {
	bool session_allowed;		/* client or HELO allow-listed */
	bool txn_allowed;		/* sender allow-listed */
	int txn_class;			/* the first recipient's policy, or NO_CLASS */
};

static struct lists_state *
state_of(void **state)
{
	if (*state == NULL) {
		struct lists_state *st = calloc(1, sizeof(*st));
		if (st == NULL)
			return NULL;
		st->txn_class = NO_CLASS;
		*state = st;
	}
	return *state;
}

static void
allowed(struct filter_result *res, const char *symbol, const char *detail)
{
	filter_add_symbol(res, "lists", symbol, 0, detail);
	filter_set_verdict(res, VERDICT_ACCEPT, "");
}

/* denied - refuse; what names the refused item in the reply ("Sender address") */
static void
denied(struct filter_result *res, const char *symbol, const char *value, const char *what)
{
	char reply[FILTER_REPLY_MAX];

	if (what != NULL)
		snprintf(reply, sizeof(reply), "554 5.7.1 <%s>: %s rejected: Access denied",
		    value, what);
	else
		snprintf(reply, sizeof(reply), "554 5.7.1 Access denied");
	filter_add_symbol(res, "lists", symbol, 0, value);
	filter_set_verdict(res, VERDICT_REJECT, reply);
}

/* One allow/deny pair of lists, as the stage that checks it sees it. */
struct pair_check {
	bool denied, allowed;		/* the value is on the deny / allow list */
	const char *deny_symbol, *allow_symbol;
	const char *value;
	const char *what;		/* names the value in the reply; NULL: none */
};

/* check_pair - deny beats allow; an allow-listed value sets *allowed_r */
static void
check_pair(struct filter_result *res, const struct pair_check *c, bool *allowed_r)
{
	if (c->denied) {
		denied(res, c->deny_symbol, c->value, c->what);
	} else if (c->allowed) {
		*allowed_r = true;
		allowed(res, c->allow_symbol, c->value);
	}
}

static enum filter_status
lists_connect(const struct filter_txn *txn, void **state, const struct filter_request *req,
    struct filter_result *res)
{
	struct lists_state *st = state_of(state);
	struct list *const *lists = txn->cfg->lists;

	if (st == NULL)
		return FILTER_ERROR;
	check_pair(res, &(struct pair_check){
		list_match_ip(lists[LIST_DENY_CLIENTS], txn->client_addr),
		list_match_ip(lists[LIST_ALLOW_CLIENTS], txn->client_addr),
		"DENYLIST_CLIENT", "ALLOWLIST_CLIENT", txn->client_ip, NULL },
	    &st->session_allowed);
	return FILTER_DONE;
}

static enum filter_status
lists_helo(const struct filter_txn *txn, void **state, const struct filter_request *req,
    struct filter_result *res)
{
	struct lists_state *st = state_of(state);
	struct list *const *lists = txn->cfg->lists;

	if (st == NULL)
		return FILTER_ERROR;
	check_pair(res, &(struct pair_check){
		list_match_name(lists[LIST_DENY_HELO], txn->helo),
		list_match_name(lists[LIST_ALLOW_HELO], txn->helo),
		"DENYLIST_HELO", "ALLOWLIST_HELO", txn->helo, "Helo command" },
	    &st->session_allowed);
	return FILTER_DONE;
}

static enum filter_status
lists_mail(const struct filter_txn *txn, void **state, const struct filter_request *req,
    struct filter_result *res)
{
	struct lists_state *st = state_of(state);
	struct list *const *lists = txn->cfg->lists;

	if (st == NULL)
		return FILTER_ERROR;
	st->txn_allowed = false;
	st->txn_class = NO_CLASS;
	check_pair(res, &(struct pair_check){
		list_match_address(lists[LIST_DENY_SENDERS], txn->mail_from),
		list_match_address(lists[LIST_ALLOW_SENDERS], txn->mail_from),
		"DENYLIST_SENDER", "ALLOWLIST_SENDER", txn->mail_from, "Sender address" },
	    &st->txn_allowed);
	return FILTER_DONE;
}

static enum filter_status
lists_rcpt(const struct filter_txn *txn, void **state, const struct filter_request *req,
    struct filter_result *res)
{
	struct lists_state *st = state_of(state);
	const struct config *cfg = txn->cfg;

	if (st == NULL)
		return FILTER_ERROR;
	if (list_match_address(cfg->lists[LIST_DENY_RECIPIENTS], txn->rcpt)) {
		denied(res, "DENYLIST_RECIPIENT", txn->rcpt, "Recipient address");
		return FILTER_DONE;
	}
	bool rcpt_allowed = list_match_address(cfg->lists[LIST_ALLOW_RECIPIENTS], txn->rcpt);
	/* (domain_scores entry + 1) * 2 + allowed: 0 and up, never NO_CLASS. */
	int class = (domain_scores_find(cfg->domain_scores, cfg->ndomain_scores, txn->rcpt) + 1) * 2 +
	    (rcpt_allowed ? 1 : 0);
	if (st->txn_class == NO_CLASS) {
		st->txn_class = class;
	} else if (class != st->txn_class) {
		filter_set_verdict(res, VERDICT_TEMPFAIL, "452 4.5.3 Error: recipient has a "
		    "different policy, send it in a transaction of its own");
		return FILTER_DONE;
	}
	if (rcpt_allowed)
		allowed(res, "ALLOWLIST_RECIPIENT", txn->rcpt);
	return FILTER_DONE;
}

static enum filter_status
lists_eod(const struct filter_txn *txn, void **state, const struct filter_request *req,
    struct filter_result *res)
{
	struct lists_state *st = state_of(state);

	if (st == NULL)
		return FILTER_ERROR;
	/* Recipients all share the transaction's class: the first one tells. */
	bool rcpt_allowed = st->txn_class != NO_CLASS && (st->txn_class & 1);
	if (st->session_allowed || st->txn_allowed || rcpt_allowed)
		filter_set_verdict(res, VERDICT_ACCEPT, "");
	return FILTER_DONE;
}

static void
lists_session_end(const struct filter_txn *txn, void *state)
{
	free(state);
}

static enum check_mode
lists_mode(const struct config *cfg)
{
	/* Nothing listed: no per-session state, no work. */
	bool any = cfg->ndomain_scores > 0;
	for (int i = 0; i < LIST_SLOT_COUNT && !any; i++)
		any = cfg->lists[i] != NULL;
	return any ? cfg->lists_mode : CHECK_OFF;
}

const struct filter filter_lists = {
	.name = "lists",
	.mode = lists_mode,
	.hooks = {
		[STAGE_CONNECT] = lists_connect,
		[STAGE_HELO] = lists_helo,
		[STAGE_MAIL] = lists_mail,
		[STAGE_RCPT] = lists_rcpt,
		[STAGE_EOD] = lists_eod,
	},
	.session_end = lists_session_end,
};
