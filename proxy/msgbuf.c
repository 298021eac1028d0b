/*
 * msgbuf.c - holds one message between end of DATA and its replay.
 *
 * Spill files are opened with O_TMPFILE where the file system allows it
 * (never visible in a directory), else created and unlinked at once.
 * Writes to the spill file go through a 64 KiB buffer: the framer hands
 * over one line at a time and a write(2) per line would dominate.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "msgbuf.h"

#define MSGBUF_WRITE_BEHIND (64 * 1024)
#define MSGBUF_INITIAL (8 * 1024)
/* A buffer this small is kept across messages of a session. */
#define MSGBUF_KEEP (64 * 1024)
#define MSGBUF_READ_CHUNK (64 * 1024)

/* msgbuf_init - an empty holder; temp_dir must outlive it */
void
msgbuf_init(struct msgbuf *mb, size_t mem_limit, const char *temp_dir)
{
	memset(mb, 0, sizeof(*mb));
	mb->fd = -1;
	mb->mem_limit = mem_limit;
	mb->temp_dir = temp_dir;
}

/* open_spill - an anonymous file in temp_dir */
static int
open_spill(const char *dir)
{
	char path[4096];
	int fd;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
#endif
	snprintf(path, sizeof(path), "%s/moat.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* spill - move what is in memory to a new spill file */
static bool
spill(struct msgbuf *mb)
{
	mb->fd = open_spill(mb->temp_dir);
	if (mb->fd < 0)
		return false;
	mb->wbuf = malloc(MSGBUF_WRITE_BEHIND);
	if (mb->wbuf == NULL) {
		errno = ENOMEM;
		return false;
	}
	if (!write_all(mb->fd, mb->mem, mb->mem_len))
		return false;
	free(mb->mem);
	mb->mem = NULL;
	mb->mem_len = mb->mem_cap = 0;
	return true;
}

/* msgbuf_append - add canonical bytes; false (and mb->error) if it failed */
bool
msgbuf_append(struct msgbuf *mb, const char *data, size_t len)
{
	if (mb->error != 0)
		return false;
	if (len == 0)
		return true;
	if (mb->fd < 0 && mb->mem_len + len > mb->mem_limit && !spill(mb)) {
		mb->error = errno != 0 ? errno : EIO;
		return false;
	}
	if (mb->fd >= 0) {
		if (mb->wlen + len > MSGBUF_WRITE_BEHIND) {
			if (!write_all(mb->fd, mb->wbuf, mb->wlen)) {
				mb->error = errno;
				return false;
			}
			mb->wlen = 0;
		}
		if (len > MSGBUF_WRITE_BEHIND) {
			if (!write_all(mb->fd, data, len)) {
				mb->error = errno;
				return false;
			}
		} else {
			memcpy(mb->wbuf + mb->wlen, data, len);
			mb->wlen += len;
		}
	} else {
		if (mb->mem_len + len > mb->mem_cap) {
			size_t cap = mb->mem_cap ? mb->mem_cap : MSGBUF_INITIAL;
			while (cap < mb->mem_len + len)
				cap *= 2;
			char *n = realloc(mb->mem, cap);
			if (n == NULL) {
				mb->error = ENOMEM;
				return false;
			}
			mb->mem = n;
			mb->mem_cap = cap;
		}
		memcpy(mb->mem + mb->mem_len, data, len);
		mb->mem_len += len;
	}
	mb->size += len;
	return true;
}

/* msgbuf_flush - make every appended byte readable */
bool
msgbuf_flush(struct msgbuf *mb)
{
	if (mb->error != 0)
		return false;
	if (mb->fd >= 0 && mb->wlen > 0) {
		if (!write_all(mb->fd, mb->wbuf, mb->wlen)) {
			mb->error = errno;
			return false;
		}
		mb->wlen = 0;
	}
	return true;
}

/* msgbuf_spilled - is the message in a file? */
bool
msgbuf_spilled(const struct msgbuf *mb)
{
	return mb->fd >= 0;
}

/* msgbuf_read - copy bytes from offset; returns bytes read or -1 */
ssize_t
msgbuf_read(const struct msgbuf *mb, uint64_t offset, char *buf, size_t len)
{
	if (offset >= mb->size)
		return 0;
	if (len > mb->size - offset)
		len = (size_t)(mb->size - offset);
	if (mb->fd < 0) {
		memcpy(buf, mb->mem + offset, len);
		return (ssize_t)len;
	}
	for (;;) {
		ssize_t r = pread(mb->fd, buf, len, (off_t)offset);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

/* msgbuf_cursor_init - start a replay from the first byte */
void
msgbuf_cursor_init(struct msgbuf_cursor *cur)
{
	cur->offset = 0;
	cur->at_line_start = true;
}

/* stuff_span - append p[0..n) to out, doubling each dot that starts a line */
static void
stuff_span(const char *p, size_t n, bool *at_line_start, struct evbuffer *out)
{
	const char *end = p + n;

	while (p < end) {
		if (*at_line_start && *p == '.')
			evbuffer_add(out, ".", 1);
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl != NULL ? nl + 1 : end;
		evbuffer_add(out, p, (size_t)(stop - p));
		*at_line_start = nl != NULL;
		p = stop;
	}
}

/* next_stop - skip a span starting here; how many bytes may go before the next one */
static uint64_t
next_stop(const struct msgbuf *mb, struct msgbuf_cursor *cur)
{
	for (size_t i = 0; i < mb->nskip; i++) {
		if (cur->offset >= mb->skip[i].end)
			continue;
		if (cur->offset >= mb->skip[i].start) {
			/* Spans are whole lines: the next byte still starts a line. */
			cur->offset = mb->skip[i].end;
			continue;
		}
		return mb->skip[i].start - cur->offset;
	}
	return mb->size > cur->offset ? mb->size - cur->offset : 0;
}

/* msgbuf_stuff - append up to max message bytes to out, dot-stuffed */
int
msgbuf_stuff(const struct msgbuf *mb, struct msgbuf_cursor *cur,
    struct evbuffer *out, size_t max)
{
	while (max > 0 && cur->offset < mb->size) {
		uint64_t room = next_stop(mb, cur);
		if (room == 0)
			continue;
		size_t want = max < MSGBUF_READ_CHUNK ? max : MSGBUF_READ_CHUNK;
		if (want > room)
			want = (size_t)room;
		if (mb->fd < 0) {
			size_t n = mb->size - cur->offset < want ?
			    (size_t)(mb->size - cur->offset) : want;
			stuff_span(mb->mem + cur->offset, n, &cur->at_line_start, out);
			cur->offset += n;
			max -= n;
			continue;
		}
		char chunk[MSGBUF_READ_CHUNK];
		ssize_t r = msgbuf_read(mb, cur->offset, chunk, want);
		if (r <= 0)
			return -1;
		stuff_span(chunk, (size_t)r, &cur->at_line_start, out);
		cur->offset += (uint64_t)r;
		max -= (size_t)r;
	}
	return cur->offset >= mb->size ? 1 : 0;
}

/* Header sections are far smaller; past this, nothing is looked for. */
#define HEADER_SCAN_MAX (256 * 1024)

struct field_scan {
	const char *prefix;
	size_t plen;
	bool line_start, in_field, name_done, match;
	size_t name_pos;
	uint64_t field_start;
};

static void
close_field(struct msgbuf *mb, struct field_scan *fs, uint64_t end)
{
	if (fs->in_field && fs->match && fs->name_done && mb->nskip < MSGBUF_SKIP_MAX) {
		mb->skip[mb->nskip].start = fs->field_start;
		mb->skip[mb->nskip].end = end;
		mb->nskip++;
	}
	fs->in_field = false;
}

/* msgbuf_skip_fields - leave matching top-level header fields out of the replay */
size_t
msgbuf_skip_fields(struct msgbuf *mb, const char *prefix)
{
	struct field_scan fs = { prefix, strlen(prefix), true, false, false, false, 0, 0 };
	char buf[4096];
	uint64_t off = 0;

	mb->nskip = 0;
	if (!msgbuf_flush(mb))
		return 0;
	while (off < mb->size && off < HEADER_SCAN_MAX) {
		ssize_t n = msgbuf_read(mb, off, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			char c = buf[i];
			uint64_t pos = off + (uint64_t)i;
			if (fs.line_start) {
				fs.line_start = false;
				if (c == '\r' || c == '\n') {
					/* The empty line: the header section ends here. */
					close_field(mb, &fs, pos);
					return mb->nskip;
				}
				if (c != ' ' && c != '\t') {
					close_field(mb, &fs, pos);
					fs.in_field = true;
					fs.field_start = pos;
					fs.name_done = false;
					fs.match = true;
					fs.name_pos = 0;
				}
			}
			if (fs.in_field && !fs.name_done) {
				if (c == ':') {
					fs.name_done = true;
					fs.match = fs.match && fs.name_pos >= fs.plen;
				} else if (fs.name_pos < fs.plen) {
					if (tolower((unsigned char)c) !=
					    tolower((unsigned char)fs.prefix[fs.name_pos]))
						fs.match = false;
					fs.name_pos++;
				}
			}
			if (c == '\n')
				fs.line_start = true;
		}
		off += (uint64_t)n;
	}
	/* A message that is all header: the last field ends with it. */
	if (off >= mb->size)
		close_field(mb, &fs, mb->size);
	return mb->nskip;
}

/* msgbuf_reset - empty it for the next message (keeps a small buffer) */
void
msgbuf_reset(struct msgbuf *mb)
{
	mb->nskip = 0;
	if (mb->fd >= 0) {
		close(mb->fd);
		mb->fd = -1;
	}
	free(mb->wbuf);
	mb->wbuf = NULL;
	mb->wlen = 0;
	if (mb->mem_cap > MSGBUF_KEEP) {
		free(mb->mem);
		mb->mem = NULL;
		mb->mem_cap = 0;
	}
	mb->mem_len = 0;
	mb->size = 0;
	mb->error = 0;
}

/* msgbuf_free - release everything */
void
msgbuf_free(struct msgbuf *mb)
{
	msgbuf_reset(mb);
	free(mb->mem);
	mb->mem = NULL;
	mb->mem_cap = 0;
}
