/*
 * policy.c - turns the evidence of a transaction into an action (see policy.h).
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "policy.h"

#define REJECT_REPLY "550 5.7.1 Message rejected as spam"
#define TEMPFAIL_REPLY "451 4.7.1 Try again later"

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

/* policy_decide - the action for a message at end of data */
void
policy_decide(const struct config *cfg, enum verdict verdict,
    const char *verdict_reply, const struct symbol_list *symbols,
    struct policy_decision *d)
{
	const char *reply = "";

	d->score = symbol_list_score(symbols);
	switch (verdict) {
	case VERDICT_DISCONNECT:
	case VERDICT_REJECT:
		d->action = ACTION_REJECT;
		reply = verdict_reply[0] ? verdict_reply : REJECT_REPLY;
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
		if (d->score >= cfg->reject_score) {
			d->action = ACTION_REJECT;
			reply = REJECT_REPLY;
		} else if (d->score >= cfg->tag_score) {
			d->action = ACTION_TAG;
		} else {
			d->action = ACTION_ACCEPT;
		}
		break;
	}
	snprintf(d->reply, sizeof(d->reply), "%s", reply);
}

/* policy_tag_headers - the X-Spam-* header block for a tagged message */
size_t
policy_tag_headers(const struct config *cfg, const struct policy_decision *d,
    const struct symbol_list *symbols, char *buf, size_t size)
{
	size_t n;

	if (size == 0)
		return 0;
	n = (size_t)snprintf(buf, size,
	    "X-Spam-Flag: YES\r\nX-Spam-Score: %.1f\r\n"
	    "X-Spam-Status: Yes, score=%.1f required=%.1f tests=",
	    d->score, d->score, cfg->tag_score);
	for (size_t i = 0; i < symbols->count && n < size; i++) {
		if (symbols->items[i].monitor)
			continue;
		n += (size_t)snprintf(buf + n, size - n, "%s%s",
		    buf[n - 1] == '=' ? "" : ",", symbols->items[i].name);
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
