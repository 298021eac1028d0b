/*
 * caps.h - what the backend offers in its EHLO reply, and what moat may
 * therefore offer its clients.
 *
 * moat offers 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES and DSN only when the
 * backend does, because it relays the client's use of them.  The knowledge
 * comes from a probe before moat listens, a re-probe every
 * backend_probe_interval, and every backend session's own EHLO, so it is
 * never older than the last session that reached the backend.
 */
#ifndef MOAT_CAPS_H
#define MOAT_CAPS_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct reply;

enum cap {
	CAP_PIPELINING,
	CAP_SIZE,
	CAP_8BITMIME,
	CAP_SMTPUTF8,
	CAP_ENHANCEDSTATUSCODES,
	CAP_DSN,
	CAP_STARTTLS,
	CAP_CHUNKING,
	CAP_XCLIENT,
	CAP_XFORWARD,
	CAP_COUNT /* must be last */
};

/* XCLIENT / XFORWARD attributes moat sends (bit per attribute). */
enum xattr {
	XATTR_ADDR,
	XATTR_NAME,
	XATTR_HELO,
	XATTR_PROTO,
	XATTR_COUNT /* must be last */
};

struct caps {
	bool known;		/* false until one EHLO reply was read */
	uint32_t bits;		/* 1 << enum cap */
	uint64_t size;		/* SIZE limit, 0 = none given */
	uint32_t xclient;	/* 1 << enum xattr */
	uint32_t xforward;
};

static inline bool
caps_has(const struct caps *c, enum cap cap)
{
	return (c->bits >> cap) & 1;
}

/* caps_parse_ehlo - read capabilities from an EHLO reply */
void caps_parse_ehlo(const struct reply *r, struct caps *caps_r);

/* caps_publish / caps_snapshot - the process-wide last known capabilities */
void caps_publish(const struct caps *caps);
void caps_snapshot(struct caps *caps_r);

/* caps_probe - blocking EHLO probe (main thread only); false and why on failure */
bool caps_probe(const struct config *cfg, struct caps *caps_r, char *why, size_t why_size);

/* caps_name - "8BITMIME" etc. */
const char *caps_name(enum cap cap);

#endif
