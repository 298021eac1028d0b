/*
 * decision.h - the decision record: one JSON object per line, per decision
 * (accept, tag, reject, tempfail at any stage), in the format DESIGN.md
 * fixes, for moat-log, jq and the people reviewing rejections.
 */
#ifndef MOAT_DECISION_H
#define MOAT_DECISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "policy.h"

struct decision {
	uint64_t session_id;
	const char *client_ip;
	const char *client_name;	/* NULL -> null */
	const char *helo;
	const char *tls;
	const char *mail_from;
	const char *const *rcpts;
	size_t nrcpts;
	int64_t size;			/* -1 -> null */
	enum stage stage;
	enum action action;
	const struct symbol_list *symbols;
	const char *reply;		/* what moat answered the client */
	const char *backend_reply;	/* what the backend answered, if asked */
	const char *queue_id;
	double ms;
	uint64_t config_generation;
};

/* decision_open - "stderr" or a file (append); also used to reopen on SIGHUP */
bool decision_open(const char *target, char *error, size_t esize);

/* decision_write - format and append one record; thread-safe */
void decision_write(const struct decision *d);

/* decision_format - the record as one line with "\n"; returns length or 0 */
size_t decision_format(const struct decision *d, char *buf, size_t size);

/* stage_name - the record's name of a stage */
const char *stage_name(enum stage stage);

#endif
