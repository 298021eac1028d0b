/*
 * reply.h - parsing and checking of SMTP replies read from the backend.
 *
 * The backend's replies are relayed to clients, so each one is checked
 * line by line: a reply that breaks RFC 5321 4.2 (no 3-digit code, mixed
 * codes, control characters, too long) is flagged, and the session answers
 * with a generic 4xx instead of passing garbage on (as Postfix's proxy does).
 */
#ifndef MOAT_REPLY_H
#define MOAT_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; we allow more. */
#define REPLY_LINE_MAX 1024
/* The whole reply, all lines; a large EHLO reply is about 300 octets. */
#define REPLY_MAX 4096
#define REPLY_LINES_MAX 64

enum reply_status {
	REPLY_MORE,	/* a continuation line ("250-"): read another */
	REPLY_DONE,	/* the last line ("250 "): the reply is complete */
	REPLY_BAD,	/* not an SMTP reply: treat the backend as broken */
};

struct reply {
	int code;			/* 200..599 */
	size_t nlines;
	size_t len;			/* of wire[] */
	char wire[REPLY_MAX];		/* "250-a\r\n250 b\r\n", ready to relay */
};

/* reply_reset - forget the previous reply */
void reply_reset(struct reply *r);

/* reply_add_line - add one line (without CRLF) of a reply being read */
enum reply_status reply_add_line(struct reply *r, const char *line, size_t len);

/* reply_set - make a reply of our own: "451", "4.4.1", "text" (enhanced may be NULL) */
void reply_set(struct reply *r, int code, const char *enhanced, const char *text);

/* reply_oneline - the reply as one line without CRLF, for logs */
void reply_oneline(const struct reply *r, char *buf, size_t size);

/*
 * reply_line_text - the text of line n (after "250-" / "250 "), not
 * NUL-terminated; returns its length, or -1 if there is no such line.
 */
int reply_line_text(const struct reply *r, size_t n, const char **text_r);

/* reply_queue_id - the queue id in a 250 reply to end of data, if any */
bool reply_queue_id(const struct reply *r, char *buf, size_t size);

#endif
