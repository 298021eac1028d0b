/*
 * policy.c - turns the evidence of a transaction into an action (see policy.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "lists.h"
#include "policy.h"

#define TEMPFAIL_REPLY "451 4.7.1 Try again later"
/* An X-Spam-Status line is folded before it passes this (RFC 5322 2.1.1: 78). */
#define HEADER_FOLD_AT 76

static const char *const action_names[ACTION_COUNT] = {
	[ACTION_ACCEPT] = "accept",
	[ACTION_TAG] = "tag",
	[ACTION_TEMPFAIL] = "tempfail",
	[ACTION_REJECT] = "reject",
};

/* action_name - "accept", "tag", "tempfail", "reject" */
const char *
action_name(enum action action)
{
	return (unsigned)action < ACTION_COUNT ? action_names[action] : "?";
}

/* reject_reply - "550 5.7.1 <reject_message> [(RULE, RULE)]" */
static void
reject_reply(const struct config *cfg, const struct symbol_list *symbols, char *buf,
    size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "550 5.7.1 %s", cfg->reject_message);
	size_t listed = 0;

	for (size_t i = 0; cfg->reject_show_rules && i < symbols->count && n < size; i++) {
		const struct symbol *s = &symbols->items[i];
		if (s->monitor || s->score <= 0)
			continue;
		n += (size_t)snprintf(buf + n, size - n, "%s%s", listed++ ? ", " : " (", s->name);
	}
	if (listed > 0 && n < size)
		n += (size_t)snprintf(buf + n, size - n, ")");
	if (n >= size) {
		/* Too many names for one reply line: keep the message alone. */
		snprintf(buf, size, "550 5.7.1 %s", cfg->reject_message);
	}
}

/* policy_decide - the action for a message at end of data */
void
policy_decide(const struct config *cfg, enum verdict verdict,
    const char *verdict_reply, const struct symbol_list *symbols, const char *rcpt,
    struct policy_decision *d)
{
	const char *reply = "";
	int dom = domain_scores_find(cfg->domain_scores, cfg->ndomain_scores, rcpt);

	d->score = symbol_list_score(symbols);
	d->reject_score = dom >= 0 ? cfg->domain_scores[dom].reject_score : cfg->reject_score;
	d->tag_score = dom >= 0 ? cfg->domain_scores[dom].tag_score : cfg->tag_score;
	switch (verdict) {
	case VERDICT_DISCONNECT:
	case VERDICT_REJECT:
		d->action = ACTION_REJECT;
		reply = verdict_reply;
		break;
	case VERDICT_TEMPFAIL:
		d->action = ACTION_TEMPFAIL;
		reply = verdict_reply[0] ? verdict_reply : TEMPFAIL_REPLY;
		break;
	case VERDICT_ACCEPT:
		d->action = ACTION_ACCEPT;
		break;
	case VERDICT_CONTINUE:
	case VERDICT_COUNT:
		if (d->score >= d->reject_score) {
			d->action = ACTION_REJECT;
			reply = "";
		} else if (!isnan(cfg->tempfail_score) && d->score >= cfg->tempfail_score) {
			/* Doubtful mail: a legitimate sender retries, much spamware does not. */
			d->action = ACTION_TEMPFAIL;
			reply = TEMPFAIL_REPLY;
		} else if (d->score >= d->tag_score) {
			d->action = ACTION_TAG;
		} else {
			d->action = ACTION_ACCEPT;
		}
		break;
	}
	if (d->action == ACTION_REJECT && reply[0] == '\0') {
		reject_reply(cfg, symbols, d->reply, sizeof(d->reply));
		return;
	}
	snprintf(d->reply, sizeof(d->reply), "%s", reply);
}

/* policy_tag_headers - the X-Spam-* header block for a tagged message */
size_t
policy_tag_headers(const struct config *cfg, const struct policy_decision *d,
    const struct symbol_list *symbols, char *buf, size_t size)
{
	size_t n, line_start;
	bool first = true;

	if (size == 0)
		return 0;
	line_start = (size_t)snprintf(buf, size, "X-Spam-Flag: YES\r\nX-Spam-Score: %.1f\r\n",
	    d->score);
	if (line_start >= size)
		return 0;
	n = line_start + (size_t)snprintf(buf + line_start, size - line_start,
	    "X-Spam-Status: Yes, score=%.1f required=%.1f tests=", d->score, d->tag_score);
	for (size_t i = 0; i < symbols->count && n < size; i++) {
		const struct symbol *s = &symbols->items[i];
		if (s->monitor)
			continue;
		/* Fold long lists: a header line stays readable and under 998. */
		if (n - line_start + strlen(s->name) + 1 > HEADER_FOLD_AT) {
			n += (size_t)snprintf(buf + n, size - n, "%s\r\n\t", first ? "" : ",");
			line_start = n;
			first = true;
		}
		n += (size_t)snprintf(buf + n, size - n, "%s%s", first ? "" : ",", s->name);
		first = false;
	}
	if (n < size)
		n += (size_t)snprintf(buf + n, size - n, "\r\n");
	if (n >= size) {
		/* A header cut short would corrupt the message: send none. */
		buf[0] = '\0';
		return 0;
	}
	return n;
}
