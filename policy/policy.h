/*
 * policy.h - turns the evidence of a transaction into an action.
 *
 * A check's own verdict (a limit, a deny list) wins; otherwise the total of
 * the counted symbol scores is held against reject_score and tag_score.
 * Pure functions over the configuration and the symbol list.
 */
#ifndef MOAT_POLICY_H
#define MOAT_POLICY_H

#include <stddef.h>

#include "chain.h"

struct config;

enum action {
	ACTION_ACCEPT,
	ACTION_TAG,
	ACTION_TEMPFAIL,
	ACTION_REJECT,
	ACTION_COUNT /* must be last */
};

#define POLICY_REPLY_MAX FILTER_REPLY_MAX

struct policy_decision {
	enum action action;
	double score;
	double tag_score;		/* the thresholds that applied */
	double reject_score;
	char reply[POLICY_REPLY_MAX];	/* moat's own reply; "" for accept/tag */
};

/*
 * policy_decide - the action for a message at end of data.  rcpt (any of
 * the transaction's recipients: they share one policy) selects the
 * domain_scores thresholds; NULL means the global ones.
 */
void policy_decide(const struct config *cfg, enum verdict verdict,
    const char *verdict_reply, const struct symbol_list *symbols, const char *rcpt,
    struct policy_decision *decision_r);

/* policy_tag_headers - the X-Spam-* header block for a tagged message */
size_t policy_tag_headers(const struct config *cfg, const struct policy_decision *d,
    const struct symbol_list *symbols, char *buf, size_t size);

/* action_name - "accept", "tag", "tempfail", "reject" */
const char *action_name(enum action action);

#endif
