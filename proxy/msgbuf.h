/*
 * msgbuf.h - holds one message between end of DATA and its replay.
 *
 * The canonical message (unstuffed, CRLF line endings) is kept in memory up
 * to a bound, then in an unlinked temporary file, so a 25 MB message costs
 * little RAM and a crash leaves nothing on disk.  Owned by the session's
 * transaction; reset at MAIL, RSET and end of message.
 */
#ifndef MOAT_MSGBUF_H
#define MOAT_MSGBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct evbuffer;

/* Header fields left out of the replay (moat's own X-Spam-* forged by a sender). */
#define MSGBUF_SKIP_MAX 32

struct msgbuf_span {
	uint64_t start, end;
};

struct msgbuf {
	char *mem;		/* the message while it fits in memory */
	size_t mem_len;
	size_t mem_cap;
	size_t mem_limit;
	int fd;			/* the unlinked spill file, or -1 */
	char *wbuf;		/* write-behind buffer for the spill file */
	size_t wlen;
	uint64_t size;		/* canonical bytes held */
	const char *temp_dir;
	int error;		/* errno of a failed spill; the message is lost */
	struct msgbuf_span skip[MSGBUF_SKIP_MAX];	/* sorted, not overlapping */
	size_t nskip;
};

struct msgbuf_cursor {
	uint64_t offset;
	bool at_line_start;
};

/* msgbuf_init - an empty holder; temp_dir must outlive it */
void msgbuf_init(struct msgbuf *mb, size_t mem_limit, const char *temp_dir);

/* msgbuf_append - add canonical bytes; false (and mb->error) if it failed */
bool msgbuf_append(struct msgbuf *mb, const char *data, size_t len);

/* msgbuf_flush - make every appended byte readable */
bool msgbuf_flush(struct msgbuf *mb);

/* msgbuf_spilled - is the message in a file? */
bool msgbuf_spilled(const struct msgbuf *mb);

/* msgbuf_read - copy bytes from offset; returns bytes read or -1 */
ssize_t msgbuf_read(const struct msgbuf *mb, uint64_t offset, char *buf, size_t len);

/* msgbuf_cursor_init - start a replay from the first byte */
void msgbuf_cursor_init(struct msgbuf_cursor *cur);

/*
 * msgbuf_stuff - append up to max message bytes to out, dot-stuffed
 * (RFC 5321 4.5.2), leaving out the skipped fields; returns 1 when the
 * whole message is out, 0 if more remains, -1 on a read error.  The
 * terminating ".\r\n" is the caller's.
 */
int msgbuf_stuff(const struct msgbuf *mb, struct msgbuf_cursor *cur,
    struct evbuffer *out, size_t max);

/*
 * msgbuf_skip_fields - leave out of the replay every top-level header field
 * whose name starts with prefix (case-insensitive), folded lines included;
 * returns how many; at most MSGBUF_SKIP_MAX.
 */
size_t msgbuf_skip_fields(struct msgbuf *mb, const char *prefix);

/* msgbuf_reset - empty it for the next message (keeps a small buffer) */
void msgbuf_reset(struct msgbuf *mb);

/* msgbuf_free - release everything */
void msgbuf_free(struct msgbuf *mb);

#endif
