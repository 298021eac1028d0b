/*
 * caps.c - the backend's EHLO capabilities (see caps.h).
 *
 * The probe is a short blocking SMTP exchange with poll()-bounded reads;
 * it only ever runs in the main thread, which serves no clients.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "config.h"
#include "reply.h"

static const char *const cap_names[CAP_COUNT] = {
	[CAP_PIPELINING] = "PIPELINING",
	[CAP_SIZE] = "SIZE",
	[CAP_8BITMIME] = "8BITMIME",
	[CAP_SMTPUTF8] = "SMTPUTF8",
	[CAP_ENHANCEDSTATUSCODES] = "ENHANCEDSTATUSCODES",
	[CAP_DSN] = "DSN",
	[CAP_STARTTLS] = "STARTTLS",
	[CAP_CHUNKING] = "CHUNKING",
	[CAP_XCLIENT] = "XCLIENT",
	[CAP_XFORWARD] = "XFORWARD",
};

static const char *const xattr_names[XATTR_COUNT] = {
	[XATTR_ADDR] = "ADDR",
	[XATTR_NAME] = "NAME",
	[XATTR_HELO] = "HELO",
	[XATTR_PROTO] = "PROTO",
};

static pthread_mutex_t published_lock = PTHREAD_MUTEX_INITIALIZER;
static struct caps published;

const char *
caps_name(enum cap cap)
{
	return (unsigned)cap < CAP_COUNT ? cap_names[cap] : "?";
}

/* parse_xattrs - the attribute list after XCLIENT / XFORWARD */
static uint32_t
parse_xattrs(const char *p, size_t len)
{
	uint32_t bits = 0;
	size_t i = 0;

	while (i < len) {
		while (i < len && p[i] == ' ')
			i++;
		size_t start = i;
		while (i < len && p[i] != ' ')
			i++;
		for (int a = 0; a < XATTR_COUNT; a++)
			if (strlen(xattr_names[a]) == i - start &&
			    strncasecmp(p + start, xattr_names[a], i - start) == 0)
				bits |= 1u << a;
	}
	return bits;
}

/* caps_parse_ehlo - read capabilities from an EHLO reply */
void
caps_parse_ehlo(const struct reply *r, struct caps *caps_r)
{
	memset(caps_r, 0, sizeof(*caps_r));
	caps_r->known = true;
	/* Line 0 is the greeting name; keywords follow (RFC 5321 4.1.1.1). */
	for (size_t n = 1; n < r->nlines; n++) {
		const char *text;
		int len = reply_line_text(r, n, &text);
		if (len <= 0)
			continue;
		size_t kwlen = 0;
		while (kwlen < (size_t)len && text[kwlen] != ' ')
			kwlen++;
		for (int c = 0; c < CAP_COUNT; c++) {
			if (strlen(cap_names[c]) != kwlen ||
			    strncasecmp(text, cap_names[c], kwlen) != 0)
				continue;
			caps_r->bits |= 1u << c;
			const char *arg = text + kwlen;
			size_t arglen = (size_t)len - kwlen;
			if (c == CAP_SIZE && arglen > 1)
				caps_r->size = strtoull(arg + 1, NULL, 10);
			else if (c == CAP_XCLIENT)
				caps_r->xclient = parse_xattrs(arg, arglen);
			else if (c == CAP_XFORWARD)
				caps_r->xforward = parse_xattrs(arg, arglen);
		}
	}
}

/* caps_publish - record the capabilities just learned */
void
caps_publish(const struct caps *caps)
{
	pthread_mutex_lock(&published_lock);
	published = *caps;
	pthread_mutex_unlock(&published_lock);
}

/* caps_snapshot - the last known capabilities */
void
caps_snapshot(struct caps *caps_r)
{
	pthread_mutex_lock(&published_lock);
	*caps_r = published;
	pthread_mutex_unlock(&published_lock);
}

static long
ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* probe_reply - read one complete reply before the deadline */
static bool
probe_reply(int fd, char *buf, size_t *buflen, size_t bufsize,
    const struct timespec *deadline, struct reply *r)
{
	reply_reset(r);
	for (;;) {
		char *eol = memchr(buf, '\n', *buflen);
		if (eol != NULL) {
			size_t linelen = (size_t)(eol - buf);
			size_t l = linelen > 0 && buf[linelen - 1] == '\r' ? linelen - 1 : linelen;
			enum reply_status st = reply_add_line(r, buf, l);
			memmove(buf, eol + 1, *buflen - linelen - 1);
			*buflen -= linelen + 1;
			if (st == REPLY_BAD)
				return false;
			if (st == REPLY_DONE)
				return true;
			continue;
		}
		if (*buflen == bufsize)
			return false;
		long left = ms_left(deadline);
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return false;
		ssize_t n = read(fd, buf + *buflen, bufsize - *buflen);
		if (n <= 0)
			return false;
		*buflen += (size_t)n;
	}
}

static bool
probe_send(int fd, const char *line)
{
	size_t len = strlen(line);
	return send(fd, line, len, MSG_NOSIGNAL) == (ssize_t)len;
}

/* caps_probe - blocking EHLO probe (main thread only) */
bool
caps_probe(const struct config *cfg, struct caps *caps_r, char *why, size_t why_size)
{
	char buf[REPLY_MAX * 2], line[CONFIG_NAME_MAX + 16];
	size_t buflen = 0;
	struct reply r;
	struct timespec deadline;
	bool ok = false;
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += cfg->backend_connect_timeout_ms / 1000 + 5;
	fd = socket(cfg->backend.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, why_size, "socket: %s", strerror(errno));
		return false;
	}
	if (connect(fd, (const struct sockaddr *)&cfg->backend.ss, cfg->backend.len) != 0 &&
	    errno != EINPROGRESS) {
		snprintf(why, why_size, "connect: %s", strerror(errno));
		goto out;
	}
	struct pollfd pfd = { fd, POLLOUT, 0 };
	int soerr = 0;
	socklen_t slen = sizeof(soerr);
	long left = ms_left(&deadline);
	if (left <= 0 || poll(&pfd, 1, (int)left) <= 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0 || soerr != 0) {
		snprintf(why, why_size, "connect: %s", soerr ? strerror(soerr) : "timed out");
		goto out;
	}
	if (!probe_reply(fd, buf, &buflen, sizeof(buf), &deadline, &r) || r.code != 220) {
		snprintf(why, why_size, "no 220 greeting");
		goto out;
	}
	snprintf(line, sizeof(line), "EHLO %s\r\n", cfg->backend_helo);
	if (!probe_send(fd, line) ||
	    !probe_reply(fd, buf, &buflen, sizeof(buf), &deadline, &r) || r.code != 250) {
		snprintf(why, why_size, "EHLO not accepted");
		goto out;
	}
	caps_parse_ehlo(&r, caps_r);
	ok = true;
	if (probe_send(fd, "QUIT\r\n"))
		probe_reply(fd, buf, &buflen, sizeof(buf), &deadline, &r);
out:
	close(fd);
	return ok;
}
