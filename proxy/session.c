/*
 * session.c - one client's SMTP session (see session.h).
 *
 * Commands are taken one at a time from the input buffer; a command that
 * must wait (for the filter chain or the backend) parks the session in
 * STATE_BUSY with reading off, and its completion resumes the loop, so
 * pipelined commands are answered strictly in order and a slow backend
 * costs no client timeouts.  The resume path is a trampoline: a completion
 * that arrives while the input loop is running only flips the state.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "backend.h"
#include "caps.h"
#include "chain.h"
#include "config.h"
#include "decision.h"
#include "framer.h"
#include "log.h"
#include "msgbuf.h"
#include "netaddr.h"
#include "policy.h"
#include "session.h"
#include "smtp_parse.h"
#include "worker.h"

/* Input read ahead of processing; a command line is far smaller. */
#define SESSION_INPUT_MAX (256 * 1024)
/* Replies queued to a client that does not read: stop taking commands. */
#define SESSION_OUTPUT_MAX (64 * 1024)
#define SESSION_REPLY_MAX 1024

enum session_state {
	STATE_CONNECT,		/* connect checks running; no greeting yet */
	STATE_COMMAND,		/* reading commands */
	STATE_BUSY,		/* a command waits for the chain or the backend */
	STATE_DATA,		/* reading the message */
	STATE_CLOSING,		/* last reply being flushed */
	STATE_COUNT /* must be last */
};

struct session {
	uint64_t id;
	struct worker *worker;
	struct config *cfg;
	struct bufferevent *bev;
	struct session *prev, *next;
	enum session_state state;
	bool in_input_loop;
	bool draining;
	struct timespec connected_at;
	struct sockaddr_storage client_ss;
	char client_ip[NETADDR_TEXT_MAX];

	bool helo_seen;
	bool esmtp;
	bool enhanced;			/* ENHANCEDSTATUSCODES offered */
	struct caps offered;		/* what this client was told */
	char helo[SMTP_DOMAIN_MAX + 1];
	unsigned bad_commands;
	bool discarding_line;		/* inside a command line over the limit */
	unsigned transactions;

	/* The transaction. */
	bool in_mail;			/* MAIL accepted (by checks and backend) */
	bool mail_given;		/* MAIL being checked or accepted */
	struct timespec mail_at;
	char mail_from[SMTP_PATH_MAX + 1];
	char backend_mail[SMTP_COMMAND_LINE_MAX + 1];
	bool smtputf8;
	char **rcpts;
	size_t nrcpts, rcpts_cap;
	unsigned rcpt_attempts;
	char pending_rcpt[SMTP_PATH_MAX + 1];
	char backend_rcpt[SMTP_COMMAND_LINE_MAX + 1];
	struct msgbuf msg;
	struct framer framer;
	bool msg_too_big;
	bool msg_bare_newline;
	struct policy_decision decision;

	struct symbol_list symbols;
	size_t session_symbols;		/* symbols from connect/helo: kept per session */
	struct chain chain;
	void *filter_states[FILTERS_MAX];
	struct backend *backend;
};

static void process_input(struct session *s);
static void session_free(struct session *s);
static void reset_transaction(struct session *s);

#define slog(level, s, fmt, ...) \
	log_msg(level, "%016llx: " fmt, (unsigned long long)(s)->id, ##__VA_ARGS__)

static _Atomic uint64_t next_session_id;

/* new_session_id - unique within a run, unlikely to repeat across runs */
static uint64_t
new_session_id(void)
{
	uint64_t expected = 0;

	if (atomic_load(&next_session_id) == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t seed = ((uint64_t)ts.tv_sec << 24) ^ (uint64_t)ts.tv_nsec ^
		    ((uint64_t)getpid() << 40);
		atomic_compare_exchange_strong(&next_session_id, &expected, seed | 1);
	}
	return atomic_fetch_add(&next_session_id, 1);
}

static double
ms_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) * 1e3 +
	    (double)(now.tv_nsec - t->tv_nsec) / 1e6;
}

/* ---- replies ------------------------------------------------------------ */

/*
 * send_own - write one of moat's replies, "CODE [X.Y.Z] text"; the enhanced
 * code is dropped where the client was not offered ENHANCEDSTATUSCODES.
 * Returns the line as sent (without CRLF) for the decision record.
 */
static const char *
send_own(struct session *s, const char *line)
{
	static _Thread_local char sent[SESSION_REPLY_MAX];
	size_t n = strlen(line);

	if (!s->enhanced && n > 4 && line[4] >= '2' && line[4] <= '5' && line[5] == '.') {
		const char *space = strchr(line + 4, ' ');
		n = (size_t)snprintf(sent, sizeof(sent), "%.3s %s", line,
		    space != NULL ? space + 1 : "");
	} else {
		n = (size_t)snprintf(sent, sizeof(sent), "%s", line);
	}
	if (n >= sizeof(sent))
		n = sizeof(sent) - 1;
	slog(LOG_LEVEL_DEBUG, s, "> %s", sent);
	evbuffer_add(bufferevent_get_output(s->bev), sent, n);
	evbuffer_add(bufferevent_get_output(s->bev), "\r\n", 2);
	return sent;
}

static const char * __attribute__((format(printf, 2, 3)))
reply(struct session *s, const char *fmt, ...)
{
	char line[SESSION_REPLY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return send_own(s, line);
}

/* relay - the backend's own reply, verbatim (it was checked line by line) */
static void
relay(struct session *s, const struct reply *r)
{
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char one[REPLY_MAX];
		reply_oneline(r, one, sizeof(one));
		slog(LOG_LEVEL_DEBUG, s, "> %s", one);
	}
	evbuffer_add(bufferevent_get_output(s->bev), r->wire, r->len);
}

/* answer - a backend result: relay its reply, or moat's own 4xx */
static void
answer(struct session *s, enum backend_result result, const struct reply *r,
    char *oneline, size_t size)
{
	reply_oneline(r, oneline, size);
	if (result == BACKEND_REPLY) {
		relay(s, r);
	} else {
		const char *sent = send_own(s, oneline);
		snprintf(oneline, size, "%s", sent);
	}
}

/* close_after_reply - flush what is queued, then end the session */
static void
close_after_reply(struct session *s)
{
	s->state = STATE_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_enable(s->bev, EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_free(s);
}

/* ---- decision records ----------------------------------------------------- */

static void
record(struct session *s, enum stage stage, enum action action, const char *reply_line,
    const char *backend_reply, const char *queue_id, const char *const *rcpts,
    size_t nrcpts)
{
	struct decision d = {
		.session_id = s->id,
		.client_ip = s->client_ip,
		.client_name = NULL,
		.helo = s->helo_seen ? s->helo : NULL,
		.tls = NULL,
		.mail_from = s->in_mail || stage >= STAGE_MAIL ? s->mail_from : NULL,
		.rcpts = rcpts,
		.nrcpts = nrcpts,
		.size = stage == STAGE_EOD ? (int64_t)s->framer.output_bytes : -1,
		.stage = stage,
		.action = action,
		.symbols = &s->symbols,
		.reply = reply_line,
		.backend_reply = backend_reply,
		.queue_id = queue_id,
		.ms = stage >= STAGE_MAIL ? ms_since(&s->mail_at) : ms_since(&s->connected_at),
		.config_generation = s->cfg->generation,
	};
	if (stage < STAGE_MAIL)
		d.mail_from = NULL;
	decision_write(&d);
	slog(LOG_LEVEL_INFO, s, "%s: stage=%s from=<%s> rcpts=%zu: %s",
	    action_name(action), stage_name(stage), stage >= STAGE_MAIL ? s->mail_from : "",
	    nrcpts, reply_line != NULL ? reply_line : "");
}

static enum action
action_of_code(int code)
{
	return code / 100 == 2 ? ACTION_ACCEPT : code / 100 == 4 ? ACTION_TEMPFAIL :
	    ACTION_REJECT;
}

/* ---- the filter chain view ------------------------------------------------ */

static void
make_txn(struct session *s, struct filter_txn *txn, const char *rcpt)
{
	memset(txn, 0, sizeof(*txn));
	txn->session_id = s->id;
	txn->cfg = s->cfg;
	txn->client_addr = (const struct sockaddr *)&s->client_ss;
	txn->client_ip = s->client_ip;
	txn->helo = s->helo_seen ? s->helo : NULL;
	txn->mail_from = s->mail_given ? s->mail_from : NULL;
	txn->rcpt = rcpt;
	txn->rcpts = (const char *const *)s->rcpts;
	txn->nrcpts = s->nrcpts;
	txn->message = &s->msg;
}

static void
run_chain(struct session *s, enum stage stage, const char *rcpt, chain_done_fn *done)
{
	struct filter_txn txn;

	s->state = STATE_BUSY;
	make_txn(s, &txn, rcpt);
	chain_run(&s->chain, stage, &txn, done, s);
}

/* refused - a check's verdict stops this command; true if it did */
static bool
refused(struct session *s, enum stage stage, enum verdict verdict, const char *vreply,
    const char *const *rcpts, size_t nrcpts)
{
	const char *sent;

	switch (verdict) {
	case VERDICT_CONTINUE:
	case VERDICT_ACCEPT:
	case VERDICT_COUNT:
		return false;
	case VERDICT_TEMPFAIL:
		sent = send_own(s, vreply[0] ? vreply : "451 4.7.1 Try again later");
		record(s, stage, ACTION_TEMPFAIL, sent, NULL, NULL, rcpts, nrcpts);
		return true;
	case VERDICT_REJECT:
		sent = send_own(s, vreply[0] ? vreply : "550 5.7.1 Rejected by policy");
		record(s, stage, ACTION_REJECT, sent, NULL, NULL, rcpts, nrcpts);
		return true;
	case VERDICT_DISCONNECT:
		if (vreply[0]) {
			sent = send_own(s, vreply);
		} else {
			sent = reply(s, "421 4.7.0 %s Error: closing connection",
			    s->cfg->hostname);
		}
		record(s, stage, ACTION_TEMPFAIL, sent, NULL, NULL, rcpts, nrcpts);
		close_after_reply(s);
		return true;
	}
	return false;
}

/* resume - a command finished: go on with the next one */
static void
resume(struct session *s)
{
	if (s->state == STATE_CLOSING)
		return;
	if (s->draining && !s->in_mail) {
		reply(s, "421 4.3.2 %s Service shutting down", s->cfg->hostname);
		close_after_reply(s);
		return;
	}
	s->state = STATE_COMMAND;
	if (!s->in_input_loop)
		process_input(s);
}

/* bad_command - count a protocol error; true if the session was closed */
static bool
bad_command(struct session *s)
{
	if (++s->bad_commands < s->cfg->max_bad_commands)
		return false;
	slog(LOG_LEVEL_INFO, s, "too many errors: %u", s->bad_commands);
	reply(s, "421 4.7.0 %s Error: too many errors", s->cfg->hostname);
	close_after_reply(s);
	return true;
}

/* protocol_error - a command refused for its syntax or order: counts toward the limit */
static void
protocol_error(struct session *s, const char *line)
{
	send_own(s, line);
	bad_command(s);
}

/* ---- connect and HELO ------------------------------------------------------- */

static void
connect_done(void *arg, enum verdict verdict, const char *vreply)
{
	struct session *s = arg;

	if (refused(s, STAGE_CONNECT, verdict, vreply, NULL, 0)) {
		if (s->state != STATE_CLOSING)
			close_after_reply(s);
		return;
	}
	s->session_symbols = s->symbols.count;
	reply(s, "220 %s %s", s->cfg->hostname, s->cfg->banner);
	bufferevent_enable(s->bev, EV_READ);
	resume(s);
}

/* send_ehlo_reply - what this client may use: moat's own plus the backend's */
static void
send_ehlo_reply(struct session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	struct caps backend;
	uint64_t size = s->cfg->max_message_size;

	caps_snapshot(&backend);
	memset(&s->offered, 0, sizeof(s->offered));
	s->offered.known = true;
	s->offered.bits = (1u << CAP_PIPELINING) | (1u << CAP_SIZE);
	static const enum cap passthrough[] = {
		CAP_8BITMIME, CAP_SMTPUTF8, CAP_ENHANCEDSTATUSCODES, CAP_DSN,
	};
	for (size_t i = 0; i < sizeof(passthrough) / sizeof(passthrough[0]); i++)
		if (caps_has(&backend, passthrough[i]))
			s->offered.bits |= 1u << passthrough[i];
	/* Announce the smaller limit: moat's, or the backend's own. */
	if (backend.size != 0 && backend.size < size)
		size = backend.size;
	s->offered.size = size;
	s->enhanced = caps_has(&s->offered, CAP_ENHANCEDSTATUSCODES);

	evbuffer_add_printf(out, "250-%s\r\n", s->cfg->hostname);
	evbuffer_add_printf(out, "250-PIPELINING\r\n");
	for (size_t i = 0; i < sizeof(passthrough) / sizeof(passthrough[0]); i++)
		if (caps_has(&s->offered, passthrough[i]))
			evbuffer_add_printf(out, "250-%s\r\n", caps_name(passthrough[i]));
	evbuffer_add_printf(out, "250 SIZE %llu\r\n", (unsigned long long)size);
	slog(LOG_LEVEL_DEBUG, s, "> 250 %s (capabilities 0x%x)", s->cfg->hostname,
	    s->offered.bits);
}

static void
helo_done(void *arg, enum verdict verdict, const char *vreply)
{
	struct session *s = arg;

	/* The HELO name stays recorded even when refused: it is evidence. */
	if (refused(s, STAGE_HELO, verdict, vreply, NULL, 0)) {
		s->session_symbols = s->symbols.count;
		resume(s);
		return;
	}
	s->session_symbols = s->symbols.count;
	if (s->esmtp)
		send_ehlo_reply(s);
	else
		reply(s, "250 %s", s->cfg->hostname);
	resume(s);
}

static void
cmd_helo(struct session *s, const struct smtp_command *cmd)
{
	bool esmtp = cmd->verb == SMTP_VERB_EHLO;

	if (!smtp_helo_valid(cmd->args, cmd->args_len)) {
		reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		bad_command(s);
		return;
	}
	/* RFC 5321 4.1.4: EHLO/HELO reset the transaction like RSET. */
	reset_transaction(s);
	symbol_list_truncate(&s->symbols, 0);
	s->session_symbols = 0;
	memcpy(s->helo, cmd->args, cmd->args_len);
	s->helo[cmd->args_len] = '\0';
	s->helo_seen = true;
	s->esmtp = esmtp;
	if (!esmtp) {
		s->enhanced = false;
		memset(&s->offered, 0, sizeof(s->offered));
	}
	run_chain(s, STAGE_HELO, NULL, helo_done);
}

/* ---- MAIL ---------------------------------------------------------------------- */

/* check_params - MAIL/RCPT parameters against what was offered; true if fine */
static bool
check_params(struct session *s, const struct smtp_path *path, bool is_mail,
    uint64_t *size_r, char *forward, size_t fsize)
{
	size_t n = strlen(forward);

	for (size_t i = 0; i < path->nparams; i++) {
		const struct smtp_param *p = &path->params[i];
		bool ok = false, send = true;
		if (is_mail && smtp_param_is(p, "SIZE")) {
			char num[24];
			ok = p->value != NULL && p->value_len < sizeof(num) &&
			    strspn(p->value, "0123456789") >= p->value_len;
			if (ok) {
				memcpy(num, p->value, p->value_len);
				num[p->value_len] = '\0';
				*size_r = strtoull(num, NULL, 10);
			}
			/* A backend without SIZE would refuse the parameter. */
			struct caps known;
			if (s->backend != NULL)
				known = *backend_caps(s->backend);
			else
				caps_snapshot(&known);
			send = caps_has(&known, CAP_SIZE);
		} else if (is_mail && smtp_param_is(p, "BODY")) {
			ok = p->value != NULL && caps_has(&s->offered, CAP_8BITMIME) &&
			    ((p->value_len == 4 && strncasecmp(p->value, "7BIT", 4) == 0) ||
			    (p->value_len == 8 && strncasecmp(p->value, "8BITMIME", 8) == 0));
		} else if (is_mail && smtp_param_is(p, "SMTPUTF8")) {
			ok = p->value == NULL && caps_has(&s->offered, CAP_SMTPUTF8);
			if (ok)
				s->smtputf8 = true;
		} else if (is_mail && (smtp_param_is(p, "RET") || smtp_param_is(p, "ENVID"))) {
			ok = p->value != NULL && caps_has(&s->offered, CAP_DSN);
		} else if (!is_mail && (smtp_param_is(p, "NOTIFY") || smtp_param_is(p, "ORCPT"))) {
			ok = p->value != NULL && caps_has(&s->offered, CAP_DSN);
		}
		if (!ok) {
			reply(s, "555 5.5.4 Unsupported option: %.*s", (int)p->keyword_len,
			    p->keyword);
			return false;
		}
		if (!send)
			continue;
		int w = snprintf(forward + n, fsize - n, " %.*s%s%.*s", (int)p->keyword_len,
		    p->keyword, p->value ? "=" : "", (int)p->value_len,
		    p->value ? p->value : "");
		if (w < 0 || (size_t)w >= fsize - n) {
			reply(s, "500 5.5.2 Error: line too long");
			return false;
		}
		n += (size_t)w;
	}
	return true;
}

static void
mail_replied(void *owner, enum backend_result result, const struct reply *r)
{
	struct session *s = owner;
	char line[REPLY_MAX];

	answer(s, result, r, line, sizeof(line));
	if (result == BACKEND_REPLY && r->code / 100 == 2) {
		s->in_mail = true;
	} else {
		record(s, STAGE_MAIL, result == BACKEND_FAILED ? ACTION_TEMPFAIL :
		    action_of_code(r->code), line, result == BACKEND_REPLY ? line : NULL,
		    NULL, NULL, 0);
		if (result == BACKEND_FAILED)
			backend_close(&s->backend);
	}
	resume(s);
}

static void
backend_opened(void *owner, enum backend_result result, const struct reply *r)
{
	struct session *s = owner;
	char line[REPLY_MAX];

	if (result == BACKEND_FAILED) {
		answer(s, result, r, line, sizeof(line));
		record(s, STAGE_MAIL, ACTION_TEMPFAIL, line, NULL, NULL, NULL, 0);
		backend_close(&s->backend);
		resume(s);
		return;
	}
	backend_command(s->backend, s->backend_mail, mail_replied);
}

static void
mail_checked(void *arg, enum verdict verdict, const char *vreply)
{
	struct session *s = arg;

	if (refused(s, STAGE_MAIL, verdict, vreply, NULL, 0)) {
		resume(s);
		return;
	}
	if (backend_usable(s->backend)) {
		backend_command(s->backend, s->backend_mail, mail_replied);
		return;
	}
	backend_close(&s->backend);
	s->backend = backend_new(worker_base(s->worker), s->cfg, s->id, s);
	if (s->backend == NULL) {
		const char *sent = reply(s, "451 4.3.0 Error: out of resources, try again later");
		record(s, STAGE_MAIL, ACTION_TEMPFAIL, sent, NULL, NULL, NULL, 0);
		resume(s);
		return;
	}
	struct backend_client client = { s->client_ip, NULL, s->helo, s->esmtp };
	backend_open(s->backend, &client, backend_opened);
}

static void
cmd_mail(struct session *s, const struct smtp_command *cmd)
{
	struct smtp_path path;
	uint64_t size = 0;

	if (!s->helo_seen) {
		protocol_error(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->in_mail) {
		protocol_error(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	switch (smtp_path_parse(cmd->args, cmd->args_len, "FROM", true, &path)) {
	case SMTP_PATH_OK:
		break;
	case SMTP_PATH_BAD_ADDRESS:
		protocol_error(s, "501 5.1.7 Bad sender address syntax");
		return;
	default:
		protocol_error(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	reset_transaction(s);
	clock_gettime(CLOCK_MONOTONIC, &s->mail_at);
	memcpy(s->mail_from, path.address, sizeof(s->mail_from));
	s->mail_given = true;
	snprintf(s->backend_mail, sizeof(s->backend_mail), "MAIL FROM:<%s>", path.address);
	if (!check_params(s, &path, true, &size, s->backend_mail, sizeof(s->backend_mail))) {
		s->smtputf8 = false;
		bad_command(s);
		return;
	}
	if (path.has_8bit && !s->smtputf8) {
		reply(s, "553 5.6.7 Error: SMTPUTF8 is required for this address");
		return;
	}
	if (size > s->cfg->max_message_size) {
		const char *sent = reply(s, "552 5.3.4 Message size exceeds fixed limit");
		record(s, STAGE_MAIL, ACTION_REJECT, sent, NULL, NULL, NULL, 0);
		return;
	}
	run_chain(s, STAGE_MAIL, NULL, mail_checked);
}

/* ---- RCPT ----------------------------------------------------------------------- */

static bool
add_rcpt(struct session *s, const char *rcpt)
{
	if (s->nrcpts == s->rcpts_cap) {
		size_t cap = s->rcpts_cap ? s->rcpts_cap * 2 : 4;
		char **n = realloc(s->rcpts, cap * sizeof(*n));
		if (n == NULL)
			return false;
		s->rcpts = n;
		s->rcpts_cap = cap;
	}
	s->rcpts[s->nrcpts] = strdup(rcpt);
	if (s->rcpts[s->nrcpts] == NULL)
		return false;
	s->nrcpts++;
	return true;
}

static void
rcpt_replied(void *owner, enum backend_result result, const struct reply *r)
{
	struct session *s = owner;
	char line[REPLY_MAX];
	const char *rcpt = s->pending_rcpt;

	answer(s, result, r, line, sizeof(line));
	if (result == BACKEND_REPLY && r->code / 100 == 2) {
		if (!add_rcpt(s, rcpt))
			slog(LOG_LEVEL_ERROR, s, "out of memory recording a recipient");
	} else {
		record(s, STAGE_RCPT, result == BACKEND_FAILED ? ACTION_TEMPFAIL :
		    action_of_code(r->code), line, result == BACKEND_REPLY ? line : NULL,
		    NULL, &rcpt, 1);
		if (result == BACKEND_FAILED) {
			/* The backend's transaction is gone; so is ours. */
			backend_close(&s->backend);
			reset_transaction(s);
		}
	}
	resume(s);
}

static void
rcpt_checked(void *arg, enum verdict verdict, const char *vreply)
{
	struct session *s = arg;
	const char *rcpt = s->pending_rcpt;

	if (refused(s, STAGE_RCPT, verdict, vreply, &rcpt, 1)) {
		resume(s);
		return;
	}
	if (s->backend == NULL) {
		const char *sent = reply(s, "451 4.4.2 Error: backend connection lost, try again later");
		record(s, STAGE_RCPT, ACTION_TEMPFAIL, sent, NULL, NULL, &rcpt, 1);
		reset_transaction(s);
		resume(s);
		return;
	}
	backend_command(s->backend, s->backend_rcpt, rcpt_replied);
}

static void
cmd_rcpt(struct session *s, const struct smtp_command *cmd)
{
	struct smtp_path path;
	uint64_t unused;

	if (!s->in_mail) {
		protocol_error(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	switch (smtp_path_parse(cmd->args, cmd->args_len, "TO", false, &path)) {
	case SMTP_PATH_OK:
		break;
	case SMTP_PATH_BAD_ADDRESS:
		protocol_error(s, "501 5.1.3 Bad recipient address syntax");
		return;
	default:
		protocol_error(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	snprintf(s->backend_rcpt, sizeof(s->backend_rcpt), "RCPT TO:<%s>", path.address);
	if (!check_params(s, &path, false, &unused, s->backend_rcpt, sizeof(s->backend_rcpt))) {
		bad_command(s);
		return;
	}
	if (path.has_8bit && !s->smtputf8) {
		reply(s, "553 5.6.7 Error: SMTPUTF8 is required for this address");
		return;
	}
	if (s->nrcpts >= s->cfg->max_recipients) {
		const char *rcpt = path.address;
		const char *sent = reply(s, "452 4.5.3 Error: too many recipients");
		record(s, STAGE_RCPT, ACTION_TEMPFAIL, sent, NULL, NULL, &rcpt, 1);
		return;
	}
	s->rcpt_attempts++;
	memcpy(s->pending_rcpt, path.address, sizeof(s->pending_rcpt));
	run_chain(s, STAGE_RCPT, s->pending_rcpt, rcpt_checked);
}

/* ---- DATA and end of data ---------------------------------------------------------- */

static void
data_checked(void *arg, enum verdict verdict, const char *vreply)
{
	struct session *s = arg;

	if (refused(s, STAGE_DATA, verdict, vreply, (const char *const *)s->rcpts,
	    s->nrcpts)) {
		reset_transaction(s);
		resume(s);
		return;
	}
	msgbuf_reset(&s->msg);
	framer_init(&s->framer, s->cfg->bare_newline == BARE_NEWLINE_REJECT);
	s->msg_too_big = false;
	s->msg_bare_newline = false;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	s->state = STATE_DATA;
	struct timeval tv = { s->cfg->data_timeout_ms / 1000,
	    (s->cfg->data_timeout_ms % 1000) * 1000 };
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	if (!s->in_input_loop)
		process_input(s);
}

static void
cmd_data(struct session *s, const struct smtp_command *cmd)
{
	if (!s->in_mail) {
		protocol_error(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->nrcpts == 0) {
		if (s->rcpt_attempts > 0)
			reply(s, "554 5.5.1 Error: no valid recipients");
		else
			protocol_error(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (cmd->args_len > 0) {
		protocol_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	run_chain(s, STAGE_DATA, NULL, data_checked);
}

static void
finish_message(struct session *s)
{
	s->transactions++;
	reset_transaction(s);
	resume(s);
}

static void
message_replied(void *owner, enum backend_result result, const struct reply *r)
{
	struct session *s = owner;
	char line[REPLY_MAX], queue_id[64];
	enum action action;

	answer(s, result, r, line, sizeof(line));
	if (result == BACKEND_FAILED) {
		action = ACTION_TEMPFAIL;
		backend_close(&s->backend);
	} else {
		action = action_of_code(r->code);
		if (action == ACTION_ACCEPT && s->decision.action == ACTION_TAG)
			action = ACTION_TAG;
	}
	bool have_id = result == BACKEND_REPLY && reply_queue_id(r, queue_id, sizeof(queue_id));
	record(s, STAGE_EOD, action, line, result == BACKEND_REPLY ? line : NULL,
	    have_id ? queue_id : NULL, (const char *const *)s->rcpts, s->nrcpts);
	finish_message(s);
}

static void
message_checked(void *arg, enum verdict verdict, const char *vreply)
{
	struct session *s = arg;
	char headers[16384];
	size_t hlen = 0;

	policy_decide(s->cfg, verdict, vreply, &s->symbols,
	    s->nrcpts > 0 ? s->rcpts[0] : NULL, &s->decision);
	if (s->decision.action == ACTION_REJECT || s->decision.action == ACTION_TEMPFAIL) {
		const char *sent = send_own(s, s->decision.reply);
		record(s, STAGE_EOD, s->decision.action, sent, NULL, NULL,
		    (const char *const *)s->rcpts, s->nrcpts);
		finish_message(s);
		return;
	}
	if (s->decision.action == ACTION_TAG)
		hlen = policy_tag_headers(s->cfg, &s->decision, &s->symbols, headers,
		    sizeof(headers));
	/* X-Spam-* headers are moat's to write: a sender's own (a forged
	 * "X-Spam-Flag: NO") never reach the backend, tagged or not. */
	if (msgbuf_skip_fields(&s->msg, "X-Spam-") > 0)
		slog(LOG_LEVEL_INFO, s, "removed %zu X-Spam-* header fields sent by the client",
		    s->msg.nskip);
	backend_send_message(s->backend, headers, hlen, &s->msg, message_replied);
}

/* end_of_data - CRLF.CRLF seen: refuse what cannot go, else check and replay */
static void
end_of_data(struct session *s)
{
	const char *sent;
	const char *const *rcpts = (const char *const *)s->rcpts;

	s->state = STATE_BUSY;
	struct timeval tv = { s->cfg->command_timeout_ms / 1000,
	    (s->cfg->command_timeout_ms % 1000) * 1000 };
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	if (s->msg_too_big) {
		sent = reply(s, "552 5.3.4 Message size exceeds fixed limit");
		record(s, STAGE_EOD, ACTION_REJECT, sent, NULL, NULL, rcpts, s->nrcpts);
		finish_message(s);
		return;
	}
	if (s->msg_bare_newline) {
		sent = reply(s, "550 5.5.2 Error: message contains bare CR or LF "
		    "(RFC 5321 section 2.3.8)");
		record(s, STAGE_EOD, ACTION_REJECT, sent, NULL, NULL, rcpts, s->nrcpts);
		finish_message(s);
		return;
	}
	if (!msgbuf_flush(&s->msg)) {
		slog(LOG_LEVEL_ERROR, s, "cannot hold the message in %s: %s",
		    s->cfg->temp_dir, strerror(s->msg.error));
		sent = reply(s, "451 4.3.0 Error: local problem storing the message, "
		    "try again later");
		record(s, STAGE_EOD, ACTION_TEMPFAIL, sent, NULL, NULL, rcpts, s->nrcpts);
		finish_message(s);
		return;
	}
	if (!backend_usable(s->backend)) {
		sent = reply(s, "451 4.4.2 Error: backend connection lost, try again later");
		record(s, STAGE_EOD, ACTION_TEMPFAIL, sent, NULL, NULL, rcpts, s->nrcpts);
		backend_close(&s->backend);
		finish_message(s);
		return;
	}
	run_chain(s, STAGE_EOD, NULL, message_checked);
}

/* framer_output - canonical message bytes, kept unless the message is doomed */
static void
framer_output(void *ctx, const char *data, size_t len)
{
	struct session *s = ctx;

	if (s->msg_too_big || s->msg_bare_newline)
		return;
	if (s->framer.output_bytes + len > s->cfg->max_message_size) {
		s->msg_too_big = true;
		return;
	}
	msgbuf_append(&s->msg, data, len);
}

/* process_data - feed the framer; returns when input runs out or data ends */
static void
process_data(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	bool strict = s->cfg->bare_newline == BARE_NEWLINE_REJECT;

	while (s->state == STATE_DATA && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec vec[8];
		int nvec = evbuffer_peek(in, -1, NULL, vec, 8);
		size_t total = 0;
		enum framer_status st = FRAMER_MORE;
		if (nvec > 8)
			nvec = 8;
		for (int i = 0; i < nvec && st == FRAMER_MORE; i++) {
			size_t used;
			st = framer_feed(&s->framer, vec[i].iov_base, vec[i].iov_len, &used,
			    framer_output, s);
			total += used;
			if (strict && (s->framer.saw_bare_lf || s->framer.saw_bare_cr))
				s->msg_bare_newline = true;
		}
		evbuffer_drain(in, total);
		if (st == FRAMER_END) {
			end_of_data(s);
		} else if (st == FRAMER_END_LOOSE) {
			/* Whatever follows could be smuggled commands: read no more. */
			const char *const *rcpts = (const char *const *)s->rcpts;
			const char *sent = reply(s, "550 5.5.2 Error: bare CR or LF around the "
			    "end-of-data dot (RFC 5321 section 2.3.8); closing");
			slog(LOG_LEVEL_INFO, s, "smuggling attempt or broken client: "
			    "closing after a loose end of data");
			record(s, STAGE_EOD, ACTION_REJECT, sent, NULL, NULL, rcpts, s->nrcpts);
			reset_transaction(s);
			close_after_reply(s);
		}
	}
}

/* ---- commands ------------------------------------------------------------------ */

static void
dispatch(struct session *s, const char *line, size_t len)
{
	struct smtp_command cmd;

	smtp_command_parse(line, len, &cmd);
	slog(LOG_LEVEL_DEBUG, s, "< %.*s", (int)len, line);
	switch (cmd.verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		cmd_helo(s, &cmd);
		break;
	case SMTP_VERB_MAIL:
		cmd_mail(s, &cmd);
		break;
	case SMTP_VERB_RCPT:
		cmd_rcpt(s, &cmd);
		break;
	case SMTP_VERB_DATA:
		cmd_data(s, &cmd);
		break;
	case SMTP_VERB_RSET:
		reset_transaction(s);
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VERB_NOOP:
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VERB_QUIT:
		reply(s, "221 2.0.0 Bye");
		close_after_reply(s);
		break;
	case SMTP_VERB_VRFY:
		/* RFC 5321 3.5.3: 252 when moat cannot verify but will relay. */
		reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
		break;
	case SMTP_VERB_HELP:
		reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
		break;
	case SMTP_VERB_EXPN:
	case SMTP_VERB_STARTTLS:
	case SMTP_VERB_AUTH:
	case SMTP_VERB_BDAT:
	case SMTP_VERB_ETRN:
		protocol_error(s, "502 5.5.1 Error: command not implemented");
		break;
	case SMTP_VERB_UNKNOWN:
	case SMTP_VERB_COUNT:
		protocol_error(s, "502 5.5.2 Error: command not recognized");
		break;
	}
}

/* next_line - take one command line; 1 got one, 0 need more, -1 handled (too long) */
static int
next_line(struct session *s, char *line, size_t *len_r)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t eol_len = 0;
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);

	if (eol.pos < 0) {
		if (evbuffer_get_length(in) >= SMTP_COMMAND_LINE_MAX) {
			/* Discard as it comes: a 1 MB line costs no memory. */
			evbuffer_drain(in, evbuffer_get_length(in));
			s->discarding_line = true;
		}
		return 0;
	}
	if (s->discarding_line || (size_t)eol.pos + eol_len > SMTP_COMMAND_LINE_MAX) {
		evbuffer_drain(in, (size_t)eol.pos + eol_len);
		s->discarding_line = false;
		protocol_error(s, "500 5.5.2 Error: line too long");
		return -1;
	}
	evbuffer_remove(in, line, (size_t)eol.pos);
	evbuffer_drain(in, eol_len);
	size_t len = (size_t)eol.pos;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	*len_r = len;
	return 1;
}

/* process_input - answer every complete command waiting, in order */
static void
process_input(struct session *s)
{
	char line[SMTP_COMMAND_LINE_MAX + 1];
	size_t len;

	s->in_input_loop = true;
	for (;;) {
		if (s->state == STATE_DATA) {
			process_data(s);
			if (s->state == STATE_DATA)
				break;
			continue;
		}
		if (s->state != STATE_COMMAND)
			break;
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) > SESSION_OUTPUT_MAX)
			break;	/* resumed by write_cb once the client reads */
		int got = next_line(s, line, &len);
		if (got == 0)
			break;
		if (got < 0)
			continue;
		if (memchr(line, '\0', len) != NULL) {
			protocol_error(s, "500 5.5.2 Error: NUL character in command");
			continue;
		}
		dispatch(s, line, len);
	}
	if (s->state == STATE_CLOSING) {
		s->in_input_loop = false;
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
			session_free(s);
		return;
	}
	s->in_input_loop = false;
	if (s->state == STATE_BUSY)
		bufferevent_disable(s->bev, EV_READ);
	else
		bufferevent_enable(s->bev, EV_READ);
}

/* ---- transaction and session lifetime -------------------------------------------- */

static void
reset_transaction(struct session *s)
{
	s->in_mail = false;
	s->mail_given = false;
	s->smtputf8 = false;
	s->mail_from[0] = '\0';
	for (size_t i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	s->nrcpts = 0;
	s->rcpt_attempts = 0;
	msgbuf_reset(&s->msg);
	s->msg_too_big = false;
	s->msg_bare_newline = false;
	memset(&s->decision, 0, sizeof(s->decision));
	symbol_list_truncate(&s->symbols, s->session_symbols);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->state == STATE_COMMAND || s->state == STATE_DATA)
		process_input(s);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->state == STATE_CLOSING)
		session_free(s);
	else if (s->state == STATE_COMMAND && !s->in_input_loop)
		process_input(s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    s->state != STATE_CLOSING) {
		slog(LOG_LEVEL_INFO, s, "timeout after %s",
		    s->state == STATE_DATA ? "DATA" : "command");
		reply(s, "421 4.4.2 %s Error: timeout exceeded", s->cfg->hostname);
		/* Give the reply its own bounded chance to leave. */
		struct timeval tv = { 5, 0 };
		bufferevent_set_timeouts(s->bev, NULL, &tv);
		close_after_reply(s);
		return;
	}
	if (what & BEV_EVENT_EOF)
		slog(LOG_LEVEL_INFO, s, "lost connection%s", s->in_mail ? " in a transaction" : "");
	else if (what & BEV_EVENT_ERROR)
		slog(LOG_LEVEL_INFO, s, "connection error: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	session_free(s);
}

static void
session_free(struct session *s)
{
	struct filter_txn txn;
	struct session **head = worker_sessions(s->worker);

	make_txn(s, &txn, NULL);
	chain_end(&s->chain, &txn);
	slog(LOG_LEVEL_INFO, s, "disconnect from %s: %u messages", s->client_ip,
	    s->transactions);
	backend_close(&s->backend);
	reset_transaction(s);
	free(s->rcpts);
	msgbuf_free(&s->msg);
	symbol_list_free(&s->symbols);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	atomic_fetch_sub(&worker_total_sessions, 1);
	config_unref(&s->cfg);
	free(s);
}

/* refuse_early - over max_connections: answer without a session */
static void
refuse_early(int fd, const struct config *cfg, const char *ip)
{
	char line[CONFIG_NAME_MAX + 64];
	int n = snprintf(line, sizeof(line), "421 4.7.0 %s Error: too many connections\r\n",
	    cfg->hostname);

	/* Best effort: the socket is new, its send buffer empty. */
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("refuse %s: %s", ip, strerror(errno));
	close(fd);
	struct decision d = {
		.session_id = new_session_id(),
		.client_ip = ip,
		.size = -1,
		.stage = STAGE_CONNECT,
		.action = ACTION_TEMPFAIL,
		.reply = "421 4.7.0 Error: too many connections",
		.config_generation = cfg->generation,
	};
	decision_write(&d);
	log_warning("refused %s: max_connections (%u) reached", ip, cfg->max_connections);
}

/* session_accept - a new client connection (fd is the session's from now) */
void
session_accept(struct worker *w, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct config *cfg = config_current();
	char ip[NETADDR_TEXT_MAX];
	int one = 1;

	netaddr_ip(sa, ip, sizeof(ip));
	if (cfg == NULL) {
		close(fd);
		return;
	}
	if (atomic_load(&worker_total_sessions) >= cfg->max_connections) {
		refuse_early(fd, cfg, ip);
		config_unref(&cfg);
		return;
	}
	struct session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		log_error("accept %s: out of memory", ip);
		close(fd);
		config_unref(&cfg);
		return;
	}
	s->bev = bufferevent_socket_new(worker_base(w), fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		log_error("accept %s: out of memory", ip);
		close(fd);
		config_unref(&cfg);
		free(s);
		return;
	}
	atomic_fetch_add(&worker_total_sessions, 1);
	s->id = new_session_id();
	s->worker = w;
	s->cfg = cfg;
	memcpy(&s->client_ss, sa, salen < sizeof(s->client_ss) ? salen : sizeof(s->client_ss));
	snprintf(s->client_ip, sizeof(s->client_ip), "%s", ip);
	clock_gettime(CLOCK_MONOTONIC, &s->connected_at);
	s->mail_at = s->connected_at;
	msgbuf_init(&s->msg, cfg->message_memory_limit, cfg->temp_dir);
	struct session **head = worker_sessions(w);
	s->next = *head;
	if (*head != NULL)
		(*head)->prev = s;
	*head = s;

	/* Each reply is complete when written: send it now (no Nagle delay). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_INPUT_MAX);
	struct timeval tv = { cfg->command_timeout_ms / 1000,
	    (cfg->command_timeout_ms % 1000) * 1000 };
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_WRITE);
	slog(LOG_LEVEL_INFO, s, "connect from %s", ip);

	chain_init(&s->chain, w, s->id, cfg, s->filter_states, &s->symbols);
	run_chain(s, STAGE_CONNECT, NULL, connect_done);
}

static void
drain_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct session *s = *worker_sessions(w), *next;

	for (; s != NULL; s = next) {
		next = s->next;
		if (s->state == STATE_CLOSING)
			continue;
		slog(LOG_LEVEL_INFO, s, "drain timeout: closing");
		reply(s, "421 4.3.2 %s Service shutting down", s->cfg->hostname);
		struct timeval tv = { 5, 0 };
		bufferevent_set_timeouts(s->bev, NULL, &tv);
		close_after_reply(s);
	}
}

/* session_drain_all - shutting down: finish sessions, force them after drain_timeout */
void
session_drain_all(struct worker *w)
{
	struct session *s = *worker_sessions(w), *next;
	struct config *cfg = config_current();
	unsigned ms = cfg != NULL ? cfg->drain_timeout_ms : 0;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	config_unref(&cfg);
	for (; s != NULL; s = next) {
		next = s->next;
		s->draining = true;
		if (s->state == STATE_COMMAND && !s->in_mail) {
			reply(s, "421 4.3.2 %s Service shutting down", s->cfg->hostname);
			close_after_reply(s);
		}
	}
	if (*worker_sessions(w) != NULL)
		event_base_once(worker_base(w), -1, EV_TIMEOUT, drain_deadline, w, &tv);
}
