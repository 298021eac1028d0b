/*
 * backend.c - moat's SMTP client session toward the backend (see backend.h).
 *
 * Owns: the backend socket (a bufferevent), one timer that bounds every
 * wait (connect, each reply, each stretch of body writing), and the reply
 * being read.  The owner (a session) is called back through deliver(),
 * which tolerates the owner closing the backend from inside the callback.
 * A backend that failed is "dead": it never takes another command.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "backend.h"
#include "config.h"
#include "log.h"
#include "msgbuf.h"
#include "smtp_parse.h"

/* Body bytes queued toward the backend at once; refilled as it drains. */
#define BODY_CHUNK (256 * 1024)
#define BODY_LOW_WATER (64 * 1024)
/* Bytes buffered from the backend without a complete line: a broken peer. */
#define BACKEND_INPUT_MAX (REPLY_LINE_MAX + 2)
#define QUIT_GRACE_MS 2000

/* moat's own replies when the backend cannot be used (enhanced code, text). */
#define UNAVAILABLE "4.4.1", "Error: backend not available, try again later"
#define CONNECTION_LOST "4.4.2", "Error: backend connection lost, try again later"
#define TIMED_OUT "4.4.2", "Error: backend timeout, try again later"
#define PROTOCOL_ERROR "4.4.0", "Error: backend protocol error, try again later"
#define MISCONFIGURED "4.3.0", "Error: backend configuration problem, try again later"
#define NO_RESOURCES "4.3.0", "Error: out of resources, try again later"

enum phase {
	PHASE_IDLE,		/* connected, nothing asked */
	PHASE_CONNECTING,
	PHASE_BANNER,
	PHASE_EHLO,
	PHASE_HELO,
	PHASE_XCLIENT,
	PHASE_EHLO_AFTER_XCLIENT,
	PHASE_XFORWARD,
	PHASE_COMMAND,		/* MAIL, RCPT, RSET, NOOP: any final reply */
	PHASE_RSET_BEFORE_MAIL,
	PHASE_DATA,		/* waiting for 354 */
	PHASE_BODY,		/* writing the message */
	PHASE_DOT,		/* waiting for the final reply */
	PHASE_QUIT,		/* detached: QUIT sent, freeing when written */
	PHASE_DEAD,
	PHASE_COUNT /* must be last */
};

static const char *const phase_names[PHASE_COUNT] = {
	[PHASE_IDLE] = "idle",
	[PHASE_CONNECTING] = "connect",
	[PHASE_BANNER] = "greeting",
	[PHASE_EHLO] = "EHLO",
	[PHASE_HELO] = "HELO",
	[PHASE_XCLIENT] = "XCLIENT",
	[PHASE_EHLO_AFTER_XCLIENT] = "EHLO after XCLIENT",
	[PHASE_XFORWARD] = "XFORWARD",
	[PHASE_COMMAND] = "command",
	[PHASE_RSET_BEFORE_MAIL] = "RSET",
	[PHASE_DATA] = "DATA",
	[PHASE_BODY] = "message body",
	[PHASE_DOT] = "end of data",
	[PHASE_QUIT] = "QUIT",
	[PHASE_DEAD] = "closed",
};

struct backend {
	uint64_t session_id;
	const struct config *cfg;
	struct event_base *base;
	void *owner;
	struct bufferevent *bev;
	struct event *timer;
	enum phase phase;
	backend_reply_fn *cb;
	struct reply reply;
	struct caps caps;
	bool in_transaction;
	bool calling;		/* inside the owner's callback */
	bool close_requested;	/* the owner let go during its callback */
	bool fail_pending;	/* a failure waits for the timer to deliver it */
	struct reply fail_reply;
	char client_addr[NETADDR_TEXT_MAX];
	char client_name[CONFIG_NAME_MAX];
	char client_helo[CONFIG_NAME_MAX];
	bool client_esmtp;
	char pending_mail[SMTP_COMMAND_LINE_MAX + 2];
	const struct msgbuf *body;
	struct msgbuf_cursor cursor;
	char *prepend;		/* header lines added in front of the message */
	size_t prepend_len;
};

static void backend_free(struct backend *b);

/* Backends let go by their session but still saying QUIT, on this thread. */
static _Thread_local unsigned backends_closing;

static void
arm_timer(struct backend *b, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(b->timer, &tv);
}

/* deliver - hand a reply to the owner; true if the backend was freed meanwhile */
static bool
deliver(struct backend *b, enum backend_result result, const struct reply *r)
{
	backend_reply_fn *cb = b->cb;

	b->cb = NULL;
	if (cb == NULL || b->owner == NULL)
		return false;
	b->calling = true;
	cb(b->owner, result, r);
	b->calling = false;
	if (b->close_requested) {
		backend_free(b);
		return true;
	}
	return false;
}

/* disconnect - drop the connection; the backend becomes dead */
static void
disconnect(struct backend *b)
{
	if (b->bev != NULL) {
		bufferevent_free(b->bev);
		b->bev = NULL;
	}
	evtimer_del(b->timer);
	b->phase = PHASE_DEAD;
	b->in_transaction = false;
}

/* fail - the backend is unusable: tell the owner with a 4xx of our own */
static bool
fail(struct backend *b, const char *enhanced, const char *text, const char *why)
{
	struct reply r;

	log_warning("%016llx: backend %s: %s: %s", (unsigned long long)b->session_id,
	    b->cfg->backend_text, phase_names[b->phase], why);
	disconnect(b);
	reply_set(&r, 451, enhanced, text);
	return deliver(b, BACKEND_FAILED, &r);
}

/* fail_later - report a failure from the loop, never from the caller's stack */
static void
fail_later(struct backend *b, const char *enhanced, const char *text, const char *why)
{
	log_warning("%016llx: backend %s: %s: %s", (unsigned long long)b->session_id,
	    b->cfg->backend_text, phase_names[b->phase], why);
	disconnect(b);
	reply_set(&b->fail_reply, 451, enhanced, text);
	b->fail_pending = true;
	arm_timer(b, 0);
}

static void
send_line(struct backend *b, const char *line, enum phase phase)
{
	struct evbuffer *out = bufferevent_get_output(b->bev);

	log_debug("%016llx: backend < %s", (unsigned long long)b->session_id, line);
	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\r\n", 2);
	b->phase = phase;
	reply_reset(&b->reply);
	arm_timer(b, b->cfg->backend_timeout_ms);
}

/* append_xattrs - " ADDR=..." etc., values xtext-encoded (RFC 3461, XCLIENT) */
static void
append_xattrs(struct backend *b, char *line, size_t size, uint32_t attrs)
{
	char value[CONFIG_NAME_MAX * 3 + 8], raw[CONFIG_NAME_MAX + 8];
	size_t n = strlen(line);

	for (int a = 0; a < XATTR_COUNT; a++) {
		if (!(attrs & (1u << a)))
			continue;
		const char *key = NULL;
		switch ((enum xattr)a) {
		case XATTR_ADDR:
			key = "ADDR";
			/* Postfix wants IPv6 addresses tagged (XCLIENT_README). */
			snprintf(raw, sizeof(raw), "%s%s",
			    strchr(b->client_addr, ':') ? "IPV6:" : "", b->client_addr);
			break;
		case XATTR_NAME:
			key = "NAME";
			snprintf(raw, sizeof(raw), "%s",
			    b->client_name[0] ? b->client_name : "[UNAVAILABLE]");
			break;
		case XATTR_HELO:
			key = "HELO";
			snprintf(raw, sizeof(raw), "%s", b->client_helo);
			break;
		case XATTR_PROTO:
			key = "PROTO";
			snprintf(raw, sizeof(raw), "%s", b->client_esmtp ? "ESMTP" : "SMTP");
			break;
		case XATTR_COUNT:
			break;
		}
		if (key == NULL || raw[0] == '\0' ||
		    smtp_xtext_encode(raw, value, sizeof(value)) < 0)
			continue;
		n += (size_t)snprintf(line + n, size - n, " %s=%s", key, value);
		if (n >= size) {
			line[0] = '\0';
			return;
		}
	}
}

/* send_greeting - EHLO (or HELO) with moat's name toward the backend */
static void
send_greeting(struct backend *b, const char *verb, enum phase phase)
{
	char line[CONFIG_NAME_MAX + 8];

	snprintf(line, sizeof(line), "%s %s", verb, b->cfg->backend_helo);
	send_line(b, line, phase);
}

/* refused_forwarding - the backend will not take XCLIENT/XFORWARD from moat */
static bool
refused_forwarding(struct backend *b, const char *command, const char *postfix_key,
    const char *moat_key)
{
	/* Relaying as moat's own address could make moat an open relay. */
	log_error("%016llx: backend refused %s: allow moat in the backend "
	    "(Postfix: %s) or set %s = no", (unsigned long long)b->session_id,
	    command, postfix_key, moat_key);
	return fail(b, MISCONFIGURED, command);
}

/* after_ehlo - EHLO accepted: pass the client on, or be ready */
static bool
after_ehlo(struct backend *b)
{
	char line[SMTP_COMMAND_LINE_MAX];
	struct reply ok;

	caps_parse_ehlo(&b->reply, &b->caps);
	if (b->phase == PHASE_EHLO) {
		caps_publish(&b->caps);
		if (b->cfg->backend_xclient && caps_has(&b->caps, CAP_XCLIENT) &&
		    b->caps.xclient != 0) {
			snprintf(line, sizeof(line), "XCLIENT");
			append_xattrs(b, line, sizeof(line), b->caps.xclient);
			if (line[0] != '\0') {
				send_line(b, line, PHASE_XCLIENT);
				return false;
			}
		}
		if (b->cfg->backend_xforward && caps_has(&b->caps, CAP_XFORWARD) &&
		    b->caps.xforward != 0) {
			snprintf(line, sizeof(line), "XFORWARD");
			append_xattrs(b, line, sizeof(line), b->caps.xforward);
			if (line[0] != '\0') {
				send_line(b, line, PHASE_XFORWARD);
				return false;
			}
		}
	}
	b->phase = PHASE_IDLE;
	evtimer_del(b->timer);
	reply_set(&ok, 250, NULL, "backend ready");
	return deliver(b, BACKEND_REPLY, &ok);
}

/* fill_body - queue the next stretch of the message, then the dot */
static bool
fill_body(struct backend *b)
{
	struct evbuffer *out = bufferevent_get_output(b->bev);
	size_t queued = evbuffer_get_length(out);

	if (queued >= BODY_CHUNK)
		return false;
	int done = msgbuf_stuff(b->body, &b->cursor, out, BODY_CHUNK - queued);
	if (done < 0)
		return fail(b, "4.3.0", "Error: cannot read the held message, try again later",
		    "message read failed");
	arm_timer(b, b->cfg->backend_timeout_ms);
	if (done == 1) {
		evbuffer_add(out, ".\r\n", 3);
		b->phase = PHASE_DOT;
		reply_reset(&b->reply);
		bufferevent_setwatermark(b->bev, EV_WRITE, 0, 0);
	}
	return false;
}

/* relay - a final reply to a command: 421 means the backend is leaving */
static bool
relay(struct backend *b)
{
	if (b->reply.code == 421) {
		/* The backend closes; moat's client session need not. */
		for (size_t i = 0; i + 3 <= b->reply.len; i++) {
			if (i == 0 || b->reply.wire[i - 1] == '\n')
				memcpy(b->reply.wire + i, "451", 3);
		}
		b->reply.code = 451;
		log_warning("%016llx: backend %s: %s: closing (421)",
		    (unsigned long long)b->session_id, b->cfg->backend_text,
		    phase_names[b->phase]);
		disconnect(b);
	} else {
		b->phase = PHASE_IDLE;
		evtimer_del(b->timer);
	}
	return deliver(b, BACKEND_REPLY, &b->reply);
}

/* handle_reply - one complete reply arrived; true if b was freed */
static bool
handle_reply(struct backend *b)
{
	int code = b->reply.code, klass = code / 100;

	log_debug("%016llx: backend > %.*s", (unsigned long long)b->session_id,
	    (int)(b->reply.len > 2 ? b->reply.len - 2 : 0), b->reply.wire);
	switch (b->phase) {
	case PHASE_BANNER:
		if (code != 220)
			return fail(b, UNAVAILABLE,
			    "greeting refused");
		send_greeting(b, "EHLO", PHASE_EHLO);
		return false;
	case PHASE_EHLO:
		if (code == 250)
			return after_ehlo(b);
		if (klass == 5) {
			send_greeting(b, "HELO", PHASE_HELO);
			return false;
		}
		return fail(b, UNAVAILABLE,
		    "EHLO refused");
	case PHASE_HELO:
		if (code != 250)
			return fail(b, UNAVAILABLE,
			    "HELO refused");
		memset(&b->caps, 0, sizeof(b->caps));
		b->caps.known = true;
		b->phase = PHASE_IDLE;
		evtimer_del(b->timer);
		return deliver(b, BACKEND_REPLY, &b->reply);
	case PHASE_XCLIENT:
		/* Postfix answers XCLIENT with a new greeting: EHLO again. */
		if (code == 220) {
			send_greeting(b, "EHLO", PHASE_EHLO_AFTER_XCLIENT);
			return false;
		}
		if (klass == 2)
			return after_ehlo(b);
		return refused_forwarding(b, "XCLIENT", "smtpd_authorized_xclient_hosts",
		    "backend_xclient");
	case PHASE_EHLO_AFTER_XCLIENT:
		if (code != 250)
			return fail(b, UNAVAILABLE,
			    "EHLO refused");
		return after_ehlo(b);
	case PHASE_XFORWARD:
		if (code == 250)
			return after_ehlo(b);
		return refused_forwarding(b, "XFORWARD", "smtpd_authorized_xforward_hosts",
		    "backend_xforward");
	case PHASE_RSET_BEFORE_MAIL:
		if (code != 250)
			return fail(b, PROTOCOL_ERROR,
			    "RSET refused");
		b->in_transaction = false;
		send_line(b, b->pending_mail, PHASE_COMMAND);
		return false;
	case PHASE_COMMAND:
		if (klass == 3)
			return fail(b, PROTOCOL_ERROR,
			    "unexpected 3xx reply");
		if (klass == 2 && strncasecmp(b->pending_mail, "MAIL", 4) == 0)
			b->in_transaction = true;
		else if (klass == 2 && strncasecmp(b->pending_mail, "RSET", 4) == 0)
			b->in_transaction = false;
		return relay(b);
	case PHASE_DATA:
		if (code == 354) {
			b->phase = PHASE_BODY;
			if (b->prepend_len > 0)
				evbuffer_add(bufferevent_get_output(b->bev), b->prepend,
				    b->prepend_len);
			bufferevent_setwatermark(b->bev, EV_WRITE, BODY_LOW_WATER, 0);
			return fill_body(b);
		}
		if (klass == 2 || klass == 3)
			return fail(b, PROTOCOL_ERROR,
			    "unexpected reply to DATA");
		return relay(b);
	case PHASE_DOT:
		if (klass == 3)
			return fail(b, PROTOCOL_ERROR,
			    "unexpected 3xx reply");
		b->in_transaction = false;
		return relay(b);
	case PHASE_BODY:
		/* A reply before the dot: the backend gave up on the message. */
		return fail(b, PROTOCOL_ERROR,
		    "reply while receiving the message");
	case PHASE_IDLE:
		return fail(b, PROTOCOL_ERROR,
		    "unsolicited reply");
	case PHASE_QUIT:
		backend_free(b);
		return true;
	case PHASE_CONNECTING:
	case PHASE_DEAD:
	case PHASE_COUNT:
		break;
	}
	return false;
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct backend *b = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char line[REPLY_LINE_MAX + 3];

	if (b->phase == PHASE_QUIT) {
		/* Whatever the backend says to QUIT, we are done with it. */
		backend_free(b);
		return;
	}
	/* libevent may report the greeting before the connect completion. */
	if (b->phase == PHASE_CONNECTING) {
		b->phase = PHASE_BANNER;
		reply_reset(&b->reply);
	}
	for (;;) {
		size_t eol_len = 0;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > BACKEND_INPUT_MAX)
				fail(b, PROTOCOL_ERROR,
				    "reply line too long");
			return;
		}
		if ((size_t)eol.pos > REPLY_LINE_MAX) {
			fail(b, PROTOCOL_ERROR,
			    "reply line too long");
			return;
		}
		evbuffer_remove(in, line, (size_t)eol.pos);
		evbuffer_drain(in, eol_len);
		enum reply_status st = reply_add_line(&b->reply, line, (size_t)eol.pos);
		if (st == REPLY_BAD) {
			fail(b, PROTOCOL_ERROR,
			    "malformed reply");
			return;
		}
		if (st == REPLY_MORE)
			continue;
		if (handle_reply(b) || b->phase == PHASE_DEAD || b->bev == NULL)
			return;
	}
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct backend *b = arg;

	if (b->phase == PHASE_BODY)
		fill_body(b);
	else if (b->phase == PHASE_QUIT)
		backend_free(b);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct backend *b = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* The greeting may have been read already (see read_cb). */
		if (b->phase == PHASE_CONNECTING) {
			b->phase = PHASE_BANNER;
			arm_timer(b, b->cfg->backend_timeout_ms);
		}
		return;
	}
	if (b->phase == PHASE_QUIT) {
		backend_free(b);
		return;
	}
	if (b->phase == PHASE_IDLE) {
		log_info("%016llx: backend %s: connection closed while idle",
		    (unsigned long long)b->session_id, b->cfg->backend_text);
		disconnect(b);
		return;
	}
	const char *why = (what & BEV_EVENT_EOF) ? "connection closed" :
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
	if (b->phase == PHASE_CONNECTING)
		fail(b, UNAVAILABLE, why);
	else
		fail(b, CONNECTION_LOST, why);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct backend *b = arg;

	if (b->fail_pending) {
		b->fail_pending = false;
		deliver(b, BACKEND_FAILED, &b->fail_reply);
		return;
	}
	if (b->phase == PHASE_QUIT) {
		backend_free(b);
		return;
	}
	if (b->phase == PHASE_CONNECTING)
		fail(b, UNAVAILABLE,
		    "connect timed out");
	else
		fail(b, TIMED_OUT, "timed out");
}

/* backend_new - an unconnected backend session owned by owner */
struct backend *
backend_new(struct event_base *base, const struct config *cfg, uint64_t session_id,
    void *owner)
{
	struct backend *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->base = base;
	b->cfg = cfg;
	b->session_id = session_id;
	b->owner = owner;
	b->phase = PHASE_DEAD;
	b->timer = evtimer_new(base, timer_cb, b);
	if (b->timer == NULL) {
		free(b);
		return NULL;
	}
	return b;
}

/* backend_open - connect, EHLO, XCLIENT/XFORWARD; cb gets 250 or a failure */
void
backend_open(struct backend *b, const struct backend_client *client, backend_reply_fn *cb)
{
	int one = 1;

	b->cb = cb;
	snprintf(b->client_addr, sizeof(b->client_addr), "%s", client->addr);
	snprintf(b->client_name, sizeof(b->client_name), "%s",
	    client->name != NULL ? client->name : "");
	snprintf(b->client_helo, sizeof(b->client_helo), "%s", client->helo);
	b->client_esmtp = client->esmtp;
	b->phase = PHASE_CONNECTING;
	reply_reset(&b->reply);
	b->bev = bufferevent_socket_new(b->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (b->bev == NULL) {
		fail_later(b, NO_RESOURCES, "out of memory");
		return;
	}
	bufferevent_setcb(b->bev, read_cb, write_cb, event_cb, b);
	bufferevent_setwatermark(b->bev, EV_READ, 0, BACKEND_INPUT_MAX * 4);
	if (bufferevent_socket_connect(b->bev, (const struct sockaddr *)&b->cfg->backend.ss,
	    (int)b->cfg->backend.len) != 0) {
		fail_later(b, UNAVAILABLE,
		    strerror(errno));
		return;
	}
	/* Replies and commands are small and alternate: Nagle would only add
	 * a delayed-ACK stall to every exchange. */
	setsockopt(bufferevent_getfd(b->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bufferevent_enable(b->bev, EV_READ | EV_WRITE);
	arm_timer(b, b->cfg->backend_connect_timeout_ms);
}

/* backend_command - send one command line (no CRLF) and relay its reply */
void
backend_command(struct backend *b, const char *line, backend_reply_fn *cb)
{
	b->cb = cb;
	if (!backend_usable(b)) {
		fail_later(b, CONNECTION_LOST,
		    "not connected");
		return;
	}
	snprintf(b->pending_mail, sizeof(b->pending_mail), "%s", line);
	/* A transaction left open (refused at end of data by moat, or aborted)
	 * is closed first, so the backend never mixes two. */
	if (b->in_transaction && strncasecmp(line, "MAIL", 4) == 0) {
		send_line(b, "RSET", PHASE_RSET_BEFORE_MAIL);
		return;
	}
	send_line(b, line, PHASE_COMMAND);
}

/* backend_send_message - DATA, the held message dot-stuffed, "."; the final reply */
void
backend_send_message(struct backend *b, const char *prepend, size_t prepend_len,
    const struct msgbuf *mb, backend_reply_fn *cb)
{
	b->cb = cb;
	if (!backend_usable(b)) {
		fail_later(b, CONNECTION_LOST,
		    "not connected");
		return;
	}
	b->body = mb;
	msgbuf_cursor_init(&b->cursor);
	free(b->prepend);
	b->prepend = NULL;
	b->prepend_len = 0;
	if (prepend_len > 0) {
		b->prepend = malloc(prepend_len);
		if (b->prepend == NULL) {
			fail_later(b, NO_RESOURCES,
			    "out of memory");
			return;
		}
		memcpy(b->prepend, prepend, prepend_len);
		b->prepend_len = prepend_len;
	}
	snprintf(b->pending_mail, sizeof(b->pending_mail), "DATA");
	send_line(b, "DATA", PHASE_DATA);
}

/* backend_closing_count - detached backends of this thread not yet freed */
unsigned
backend_closing_count(void)
{
	return backends_closing;
}

bool
backend_usable(const struct backend *b)
{
	return b != NULL && b->bev != NULL && b->phase == PHASE_IDLE;
}

bool
backend_in_transaction(const struct backend *b)
{
	return b != NULL && b->in_transaction;
}

const struct caps *
backend_caps(const struct backend *b)
{
	return &b->caps;
}

static void
backend_free(struct backend *b)
{
	if (b->phase == PHASE_QUIT)
		backends_closing--;
	if (b->bev != NULL)
		bufferevent_free(b->bev);
	if (b->timer != NULL)
		event_free(b->timer);
	free(b->prepend);
	free(b);
}

/* backend_close - say QUIT if possible and let go; sets *bp to NULL */
void
backend_close(struct backend **bp)
{
	struct backend *b = *bp;

	*bp = NULL;
	if (b == NULL)
		return;
	b->owner = NULL;
	b->cb = NULL;
	if (b->calling) {
		b->close_requested = true;
		return;
	}
	if (b->phase == PHASE_IDLE && b->bev != NULL) {
		/* Politeness toward the backend, bounded by a short grace. */
		b->fail_pending = false;
		send_line(b, "QUIT", PHASE_QUIT);
		arm_timer(b, QUIT_GRACE_MS);
		backends_closing++;
		return;
	}
	backend_free(b);
}
