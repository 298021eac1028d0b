/*
 * reply.c - parsing and checking of SMTP replies read from the backend.
 *
 * Replies are stored as their wire form (CRLF after each line) so relaying
 * one to the client is a single buffer write.  Control characters in the
 * text are replaced by spaces rather than rejected: they are harmless once
 * neutralised, and a backend that sends them is otherwise working.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "reply.h"

/* reply_reset - forget the previous reply */
void
reply_reset(struct reply *r)
{
	r->code = 0;
	r->nlines = 0;
	r->len = 0;
	r->wire[0] = '\0';
}

/* reply_add_line - add one line (without CRLF) of a reply being read */
enum reply_status
reply_add_line(struct reply *r, const char *line, size_t len)
{
	int code;
	bool last;

	if (len < 3 || len > REPLY_LINE_MAX || r->nlines >= REPLY_LINES_MAX)
		return REPLY_BAD;
	if (line[0] < '2' || line[0] > '5' || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return REPLY_BAD;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (len == 3 || line[3] == ' ')
		last = true;
	else if (line[3] == '-')
		last = false;
	else
		return REPLY_BAD;
	if (r->nlines > 0 && code != r->code)
		return REPLY_BAD;
	/* A reply that is only "250" gets a space so relayed lines are uniform. */
	size_t need = (len == 3 ? 4 : len) + 2;
	if (r->len + need >= sizeof(r->wire))
		return REPLY_BAD;
	char *w = r->wire + r->len;
	memcpy(w, line, len);
	if (len == 3)
		w[3] = ' ';
	size_t wlen = len == 3 ? 4 : len;
	for (size_t i = 4; i < wlen; i++) {
		unsigned char c = (unsigned char)w[i];
		if (c < 0x20 || c == 0x7f)
			w[i] = ' ';
	}
	w[wlen] = '\r';
	w[wlen + 1] = '\n';
	r->len += wlen + 2;
	r->wire[r->len] = '\0';
	r->code = code;
	r->nlines++;
	return last ? REPLY_DONE : REPLY_MORE;
}

/* reply_set - make a reply of our own */
void
reply_set(struct reply *r, int code, const char *enhanced, const char *text)
{
	int n;

	if (enhanced != NULL)
		n = snprintf(r->wire, sizeof(r->wire), "%03d %s %s\r\n", code,
		    enhanced, text);
	else
		n = snprintf(r->wire, sizeof(r->wire), "%03d %s\r\n", code, text);
	if (n < 0 || (size_t)n >= sizeof(r->wire)) {
		/* Our own texts are short; truncate rather than send a broken line. */
		n = (int)sizeof(r->wire) - 1;
		r->wire[n - 2] = '\r';
		r->wire[n - 1] = '\n';
	}
	r->len = (size_t)n;
	r->code = code;
	r->nlines = 1;
}

/* reply_line_text - the text of line n after the code and separator */
int
reply_line_text(const struct reply *r, size_t n, const char **text_r)
{
	const char *p = r->wire, *end = r->wire + r->len;

	for (size_t i = 0; p < end; i++) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		if (eol == NULL)
			return -1;
		if (i == n) {
			*text_r = p + 4;
			return (int)(eol - p - 4);
		}
		p = eol + 2;
	}
	return -1;
}

/* reply_oneline - the reply as one line without CRLF, for logs */
void
reply_oneline(const struct reply *r, char *buf, size_t size)
{
	size_t o = 0;

	if (size == 0)
		return;
	for (size_t i = 0; i < r->len && o + 1 < size; i++) {
		char c = r->wire[i];
		if (c == '\r')
			continue;
		if (c == '\n') {
			if (i + 1 == r->len)
				break;
			/* Join continuation lines: "250-a" + "250 b" -> "250 a b". */
			buf[o++] = ' ';
			i += 4;
			continue;
		}
		buf[o++] = (i == 3 && c == '-') ? ' ' : c;
	}
	buf[o] = '\0';
}

/* reply_queue_id - the queue id in a 250 reply to end of data, if any */
bool
reply_queue_id(const struct reply *r, char *buf, size_t size)
{
	/* Postfix "queued as ID", Exim "OK id=ID", Sendmail "ID Message accepted". */
	static const char *const markers[] = { "queued as ", "id=", NULL };
	char line[REPLY_MAX];

	if (r->code / 100 != 2 || size == 0)
		return false;
	reply_oneline(r, line, sizeof(line));
	for (int m = 0; markers[m] != NULL; m++) {
		const char *p = strstr(line, markers[m]);
		if (p == NULL)
			continue;
		p += strlen(markers[m]);
		size_t n = 0;
		while (p[n] != '\0' && (isalnum((unsigned char)p[n]) || p[n] == '-' ||
		    p[n] == '.' || p[n] == '_'))
			n++;
		if (n == 0 || n >= size)
			continue;
		memcpy(buf, p, n);
		buf[n] = '\0';
		return true;
	}
	return false;
}
