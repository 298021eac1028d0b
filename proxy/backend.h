/*
 * backend.h - moat's SMTP client session toward the backend mail server.
 *
 * Opened late (at a client's first MAIL), it greets with EHLO, passes the
 * real client with XCLIENT or XFORWARD, then relays one command at a time
 * and replays held messages.  Every operation completes through one
 * callback, never synchronously, with either the backend's own reply or,
 * when the backend is down, slow or rude, a 4xx reply of moat's own: the
 * caller never sees garbage and never has to guess.
 */
#ifndef MOAT_BACKEND_H
#define MOAT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caps.h"
#include "reply.h"

struct config;
struct event_base;
struct msgbuf;
struct backend;

enum backend_result {
	BACKEND_REPLY,		/* reply is the backend's (421 relayed as 451) */
	BACKEND_FAILED,		/* reply is moat's 4xx; the backend is unusable */
};

typedef void backend_reply_fn(void *owner, enum backend_result result,
    const struct reply *reply);

/* Who the real client is, for XCLIENT / XFORWARD. */
struct backend_client {
	const char *addr;	/* "192.0.2.1" or "2001:db8::1" */
	const char *name;	/* NULL: unknown */
	const char *helo;
	bool esmtp;
};

/* backend_new - an unconnected backend session owned by owner */
struct backend *backend_new(struct event_base *base, const struct config *cfg,
    uint64_t session_id, void *owner);

/* backend_open - connect, EHLO, XCLIENT/XFORWARD; cb gets 250 or a failure */
void backend_open(struct backend *b, const struct backend_client *client,
    backend_reply_fn *cb);

/* backend_command - send one command line (no CRLF) and relay its reply */
void backend_command(struct backend *b, const char *line, backend_reply_fn *cb);

/* backend_send_message - DATA, the held message dot-stuffed, "."; the final reply */
void backend_send_message(struct backend *b, const char *prepend,
    size_t prepend_len, const struct msgbuf *mb, backend_reply_fn *cb);

/* backend_usable - open and not broken: may take another command */
bool backend_usable(const struct backend *b);

/* backend_in_transaction - a MAIL was accepted and not yet ended */
bool backend_in_transaction(const struct backend *b);

/* backend_caps - what this session's final EHLO offered */
const struct caps *backend_caps(const struct backend *b);

/* backend_closing_count - backends of this thread still saying QUIT */
unsigned backend_closing_count(void);

/* backend_close - say QUIT if possible and let go; sets *b to NULL */
void backend_close(struct backend **b);

#endif
