/*
 * msgbuf.c - holds one message between end of DATA and its replay.
 *
 * Spill files are opened with O_TMPFILE where the file system allows it
 * (never visible in a directory), else created and unlinked at once.
 * Writes to the spill file go through a 64 KiB buffer: the framer hands
 * over one line at a time and a write(2) per line would dominate.
 */
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

/* msgbuf_stuff - append up to max message bytes to out, dot-stuffed */
int
msgbuf_stuff(const struct msgbuf *mb, struct msgbuf_cursor *cur,
    struct evbuffer *out, size_t max)
{
	while (max > 0 && cur->offset < mb->size) {
		size_t want = max < MSGBUF_READ_CHUNK ? max : MSGBUF_READ_CHUNK;
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

/* msgbuf_reset - empty it for the next message (keeps a small buffer) */
void
msgbuf_reset(struct msgbuf *mb)
{
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
