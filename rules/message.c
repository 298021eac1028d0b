/*
 * message.c - the parsed view of one message that rules match against.
 *
 * GMime finds the MIME structure; this file owns everything after that:
 * the top-level header list (raw and RFC 2047-decoded) and the body,
 * rawbody, uri and full texts, built the way SpamAssassin builds them
 * (text parts decoded and converted to UTF-8 by textbuf.c, HTML rendered
 * for body by html.c, body whitespace folded into paragraphs, URIs found
 * in text).  Every output is bounded by
 * scan_limit, so a hostile message costs bounded memory and time.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "html.h"
#include "message.h"
#include "textbuf.h"

#define URI_COUNT_MAX 1000
/*
 * GMime allocates an object per header field and per MIME part (about
 * 0.5 and 1.3 KB): 512 KB of "--b" lines would cost 100 MB and a second.
 * Lines shaped like a header field or a boundary are counted (re-parsed
 * messages included), and GMime sees text only up to the line that
 * exceeds this budget.
 */
#define STRUCTURE_LINES_MAX 10000
/* GMime stops nesting at 1024 levels itself; this is only a backstop. */
#define DEPTH_MAX 4096
/* Encoded message/rfc822 parts decoded and parsed again, per message. */
#define REPARSE_MAX 4

struct message_view {
	struct message_header *headers;
	size_t nheaders;
	struct buf strings;	/* every header name and value, NUL-separated */
	struct buf body, rawbody, full;
	char **uris;
	size_t nuris;
	struct buf uri_lines;	/* the URIs again, each ended by a line break */
};

/* The body normalizer's state: a whitespace run not yet written. */
struct norm {
	struct buf *out;
	bool in_run, lead, trail;	/* blanks before the first / after the last LF */
	unsigned nl;			/* LFs in the run, counted up to 2 */
};

/* What one parse needs besides the view it fills. */
struct build {
	struct message_view *mv;
	struct norm body;
	size_t part_cap;	/* bytes of one part's text looked at */
	size_t nraw;		/* parts added to rawbody */
	size_t structure_left;	/* of STRUCTURE_LINES_MAX */
	unsigned reparsed;	/* of REPARSE_MAX */
	GHashTable *seen;	/* the URIs in mv->uris */
	bool oom;
};

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static bool initialized;

/* clean_text - CRLF to LF and NUL to space, in place */
static void
clean_text(struct buf *b)
{
	size_t j = 0;

	for (size_t i = 0; i < b->len; i++) {
		char c = b->p[i];
		if (c == '\r' && i + 1 < b->len && b->p[i + 1] == '\n')
			continue;
		b->p[j++] = c == '\0' ? ' ' : c;
	}
	b->len = j;
	if (b->p != NULL)
		b->p[j] = '\0';
}

/* ws_len - the length of a whitespace character at s (U+00A0 counts), else 0 */
static size_t
ws_len(const char *s, size_t n)
{
	if (ascii_space((unsigned char)*s))
		return 1;
	return n >= 2 && (unsigned char)s[0] == 0xC2 && (unsigned char)s[1] == 0xA0 ? 2 : 0;
}

/* norm_flush - write the pending whitespace run */
static void
norm_flush(struct norm *n)
{
	if (!n->in_run)
		return;
	n->in_run = false;
	if (n->nl < 2) {
		buf_addc(n->out, ' ');
		return;
	}
	if (n->lead)
		buf_addc(n->out, ' ');
	buf_addc(n->out, '\n');
	if (n->trail)
		buf_addc(n->out, ' ');
}

/*
 * norm_add - SpamAssassin's body whitespace rule, applied as text streams
 * by: a run of whitespace holding two or more line breaks becomes one
 * line break (blanks on either side of it each become one space), any
 * other run one space.  So body lines are paragraphs.
 */
static void
norm_add(struct norm *n, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && !n->out->full) {
		size_t w = ws_len(s + i, len - i);
		if (w != 0) {
			if (!n->in_run) {
				n->in_run = true;
				n->nl = 0;
				n->lead = n->trail = false;
			}
			if (s[i] == '\n') {
				n->nl += n->nl < 2;
				n->trail = false;
			} else if (n->nl == 0) {
				n->lead = true;
			} else {
				n->trail = true;
			}
			i += w;
			continue;
		}
		norm_flush(n);
		size_t j = i + 1;
		while (j < len && !ascii_space((unsigned char)s[j]) && (unsigned char)s[j] != 0xC2)
			j++;
		buf_add(n->out, s + i, j - i);
		i = j;
	}
}

/* add_uri - record one URI (prefix + s[0, n)) unless seen or over the limits */
static void
add_uri(struct build *b, const char *prefix, const char *s, size_t n)
{
	struct message_view *mv = b->mv;
	size_t plen = strlen(prefix);

	if (n == 0 || mv->nuris >= URI_COUNT_MAX)
		return;
	if (n > URI_LEN_MAX)
		n = utf8_cut(s, URI_LEN_MAX);
	char *u = malloc(plen + n + 1);
	if (u == NULL) {
		b->oom = true;
		return;
	}
	memcpy(u, prefix, plen);
	memcpy(u + plen, s, n);
	u[plen + n] = '\0';
	if (g_hash_table_contains(b->seen, u)) {
		free(u);
		return;
	}
	if (mv->nuris % 64 == 0) {
		char **a = realloc(mv->uris, (mv->nuris + 64) * sizeof(*a));
		if (a == NULL) {
			free(u);
			b->oom = true;
			return;
		}
		mv->uris = a;
	}
	mv->uris[mv->nuris++] = u;
	g_hash_table_add(b->seen, u);
}

static bool
uri_char(unsigned char c)
{
	return c > ' ' && c != 0x7F && strchr("\"<>\\^`{|}", c) == NULL;
}

/* uri_trim - drop trailing punctuation that ends the sentence, not the URI */
static size_t
uri_trim(const char *s, size_t n)
{
	size_t open = 0, close = 0;

	for (size_t i = 0; i < n; i++) {
		open += s[i] == '(' || s[i] == '[';
		close += s[i] == ')' || s[i] == ']';
	}
	while (n > 0) {
		char c = s[n - 1];
		if (strchr(".,;:!?'*", c) != NULL) {
			n--;
		} else if ((c == ')' || c == ']') && close > open) {
			n--;
			close--;
		} else {
			break;
		}
	}
	return n;
}

/* www_ok - "www." followed by a host name with another dot in it */
static bool
www_ok(const char *s, size_t n)
{
	size_t i = 4, dot = 0;

	while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#' && s[i] != ':') {
		if (s[i] == '.')
			dot = i;
		i++;
	}
	return dot > 4 && dot + 1 < i;
}

/* scan_uris - the URIs written out in text (SpamAssassin's schemes and www.) */
static void
scan_uris(struct build *b, const char *s, size_t n)
{
	static const char *const schemes[] = { "http://", "https://", "ftp://", "mailto:", "www." };

	for (size_t i = 0; i < n && b->mv->nuris < URI_COUNT_MAX; i++) {
		unsigned char c = (unsigned char)(s[i] | 0x20);
		if ((c != 'h' && c != 'f' && c != 'm' && c != 'w') ||
		    (i > 0 && ascii_alnum((unsigned char)s[i - 1])))
			continue;
		size_t k, plen = 0;
		for (k = 0; k < G_N_ELEMENTS(schemes); k++) {
			plen = strlen(schemes[k]);
			if (n - i > plen && g_ascii_strncasecmp(s + i, schemes[k], plen) == 0)
				break;
		}
		bool www = k == 4;
		if (k == G_N_ELEMENTS(schemes) ||
		    (www && i > 0 && strchr(".-_/@", s[i - 1]) != NULL))
			continue;
		size_t j = i + plen;
		while (j < n && uri_char((unsigned char)s[j]) &&
		    !((unsigned char)s[j] == 0xC2 && j + 1 < n && (unsigned char)s[j + 1] == 0xA0))
			j++;
		size_t m = uri_trim(s + i, j - i > URI_LEN_MAX ? utf8_cut(s + i, URI_LEN_MAX) : j - i);
		if (m > plen && (!www || www_ok(s + i, m)))
			add_uri(b, www ? "http://" : "", s + i, m);
		i = j - 1;
	}
}

/* what html_render finds: text to search for URIs, and URI attributes */
static void
text_uris(void *ctx, const char *s, size_t n)
{
	scan_uris(ctx, s, n);
}

static void
attr_uri(void *ctx, const char *s, size_t n)
{
	add_uri(ctx, "", s, n);
}

/*
 * add_text - one leaf part's decoded bytes: converted to UTF-8, added to
 * rawbody (all but text/calendar, as SpamAssassin does) and, for text
 * parts, to body, rendered if HTML; its URIs recorded.
 */
static void
add_text(struct build *b, const char *s, size_t n, const char *charset,
    bool text, bool html, bool raw)
{
	struct message_view *mv = b->mv;
	struct buf t = { .limit = SIZE_MAX };

	buf_add_converted(&t, s, n, charset);
	clean_text(&t);
	if (t.len > b->part_cap)
		t.len = utf8_cut(t.p, b->part_cap);
	if (raw) {
		if (b->nraw++ > 0)
			buf_addc(&mv->rawbody, '\n');
		buf_add(&mv->rawbody, t.p, t.len);
	}
	if (text && html) {
		const struct html_uri_sink uris = { b, text_uris, attr_uri };
		struct buf h;
		html_render(t.p, t.len, &uris, &h);
		norm_add(&b->body, h.p, h.len);
		b->oom |= h.oom;
		free(h.p);
	} else if (text) {
		norm_add(&b->body, t.p, t.len);
		scan_uris(b, t.p, t.len);
	}
	b->oom |= t.oom;
	free(t.p);
}

/* read_part - a leaf part's content, quoted-printable or base64 undone, up to part_cap bytes */
static void
read_part(struct build *b, GMimePart *part, struct buf *out)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *st = w != NULL ? g_mime_data_wrapper_get_stream(w) : NULL;
	if (st == NULL)
		return;
	GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(w);
	bool decode = enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
	GMimeEncoding state;
	char chunk[8192];

	if (decode)
		g_mime_encoding_init_decode(&state, enc);
	g_mime_stream_reset(st);
	while (out->len < b->part_cap) {
		ssize_t n = g_mime_stream_read(st, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		if (!decode) {
			buf_add(out, chunk, (size_t)n);
		} else if (buf_reserve(out, g_mime_encoding_outlen(&state, (size_t)n))) {
			out->len += g_mime_encoding_step(&state, chunk, (size_t)n, out->p + out->len);
		}
	}
	if (decode && buf_reserve(out, g_mime_encoding_outlen(&state, 0)))
		out->len += g_mime_encoding_flush(&state, chunk, 0, out->p + out->len);
}

/* structure_cut - where GMime's input must end to keep within the structure budget */
static size_t
structure_cut(const char *s, size_t n, size_t *left)
{
	for (size_t i = 0; i < n; ) {
		const char *nl = memchr(s + i, '\n', n - i);
		size_t end = nl != NULL ? (size_t)(nl - s) + 1 : n, j = i;
		bool structural = end - i >= 2 && s[i] == '-' && s[i + 1] == '-';
		/* most lines (text, base64) have no colon: one memchr says so */
		if (!structural && memchr(s + i, ':', end - i) != NULL) {
			while (j < end && s[j] > ' ' && s[j] < 0x7F && s[j] != ':')
				j++;
			while (j < end && (s[j] == ' ' || s[j] == '\t'))
				j++;
			structural = j < end && s[j] == ':';
		}
		if (structural && (*left)-- == 0) {
			*left = 0;
			return i;
		}
		i = end;
	}
	return n;
}

/* gmime_parse - GMime's reading of s[0, n) as a message; NULL if it found no header */
static GMimeMessage *
gmime_parse(const char *s, size_t n)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(s, n);
	GMimeParser *parser = g_mime_parser_new_with_stream(st);
	GMimeMessage *msg;

	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(st);
	return msg;
}

/* walk - every leaf in order, into message/rfc822 parts too */
static void
walk(struct build *b, GMimeObject *o, unsigned depth)
{
	struct message_view *mv = b->mv;

	if (o == NULL || depth > DEPTH_MAX || b->oom || (mv->body.full && mv->rawbody.full))
		return;
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);
		const char *pro = g_mime_multipart_get_prologue(mp);
		/* No boundary found: SpamAssassin reads the part as text/plain. */
		if (n == 0 && pro != NULL) {
			norm_add(&b->body, "\n", 1);
			add_text(b, pro, strlen(pro), g_mime_object_get_content_type_parameter(o, "charset"),
			    true, false, true);
		}
		for (int i = 0; i < n; i++)
			walk(b, g_mime_multipart_get_part(mp, i), depth + 1);
		return;
	}
	if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
		if (m != NULL)
			walk(b, g_mime_message_get_mime_part(m), depth + 1);
		return;
	}
	if (!GMIME_IS_PART(o))
		return;
	/* SpamAssassin puts a line break in body for every leaf, text or not. */
	norm_add(&b->body, "\n", 1);
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	bool text = ct == NULL || g_mime_content_type_is_type(ct, "text", "*");
	bool msg = ct != NULL && g_mime_content_type_is_type(ct, "message", "*");
	if (!text && !msg)
		return;
	struct buf raw = { .limit = SIZE_MAX };
	read_part(b, GMIME_PART(o), &raw);
	GMimeMessage *inner = NULL;
	if (msg && raw.p != NULL && b->reparsed < REPARSE_MAX &&
	    g_mime_content_type_is_type(ct, "message", "rfc822")) {
		/* GMime leaves an encoded message whole; SpamAssassin decodes and parses it. */
		b->reparsed++;
		for (char *p = raw.p; (p = memchr(p, '\0', raw.len - (size_t)(p - raw.p))) != NULL; )
			*p = ' ';
		inner = gmime_parse(raw.p, structure_cut(raw.p, raw.len, &b->structure_left));
	}
	if (inner != NULL) {
		walk(b, g_mime_message_get_mime_part(inner), depth + 1);
		g_object_unref(inner);
	} else {
		add_text(b, raw.p != NULL ? raw.p : "", raw.len,
		    g_mime_object_get_content_type_parameter(o, "charset"), text,
		    ct != NULL && g_mime_content_type_is_type(ct, "text", "html"),
		    ct == NULL || !g_mime_content_type_is_type(ct, "text", "calendar"));
	}
	b->oom |= raw.oom;
	free(raw.p);
}

/* add_header - copy one field into mv->strings; offsets stand in for pointers until the end */
static void
add_header(struct build *b, GMimeHeader *h, size_t *subject_r)
{
	struct message_view *mv = b->mv;
	struct buf *s = &mv->strings;
	struct message_header *mh = &mv->headers[mv->nheaders++];
	const char *name = g_mime_header_get_name(h);
	const char *raw = g_mime_header_get_raw_value(h);

	mh->name = (const char *)(uintptr_t)s->len;
	buf_add(s, name != NULL ? name : "", name != NULL ? strlen(name) + 1 : 1);
	if (s->oom)
		return;
	/* Unfold: drop each line break, keep the whitespace after it. */
	size_t start = s->len;
	for (const char *p = raw != NULL ? raw : ""; *p != '\0'; p++) {
		if (*p == '\n' || (*p == '\r' && (p[1] == '\n' || p[1] == '\0')))
			continue;
		if ((*p == ' ' || *p == '\t') && s->len == start)
			continue;
		buf_addc(s, *p);
	}
	buf_add(s, "", 1);
	mh->raw = (const char *)(uintptr_t)start;
	if (s->oom)
		return;
	char *dec = g_mime_utils_header_decode_text(NULL, s->p + start);
	if (dec == NULL && (dec = g_strdup(s->p + start)) == NULL)
		return;
	mh->decoded = (const char *)(uintptr_t)s->len;
	buf_add_utf8(s, dec, strlen(dec));
	buf_add(s, "", 1);
	g_free(dec);
	if (name != NULL && g_ascii_strcasecmp(name, "Subject") == 0)
		*subject_r = (size_t)(uintptr_t)mh->decoded;
}

static bool
is_content_header(GMimeHeader *h)
{
	const char *name = g_mime_header_get_name(h);

	return name != NULL && g_ascii_strncasecmp(name, "Content-", 8) == 0;
}

/*
 * add_headers - the top-level fields in order.  GMime keeps the Content-*
 * fields on the top part and the rest on the message: merge them back
 * by their offsets in the message.
 */
static void
add_headers(struct build *b, GMimeMessage *msg, size_t *subject_r)
{
	GMimeHeaderList *l1 = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	GMimeObject *top = g_mime_message_get_mime_part(msg);
	GMimeHeaderList *l2 = top != NULL ? g_mime_object_get_header_list(top) : NULL;
	int n1 = l1 != NULL ? g_mime_header_list_get_count(l1) : 0;
	int n2 = l2 != NULL ? g_mime_header_list_get_count(l2) : 0;
	int i = 0, k = 0;

	b->mv->headers = calloc((size_t)n1 + (size_t)n2 + 1, sizeof(*b->mv->headers));
	if (b->mv->headers == NULL) {
		b->oom = true;
		return;
	}
	for (;;) {
		GMimeHeader *h1 = i < n1 ? g_mime_header_list_get_header_at(l1, i) : NULL;
		GMimeHeader *h2 = NULL;
		while (k < n2 && !is_content_header(h2 = g_mime_header_list_get_header_at(l2, k))) {
			h2 = NULL;
			k++;
		}
		if (h1 == NULL && h2 == NULL)
			break;
		if (h1 != NULL && (h2 == NULL || g_mime_header_get_offset(h1) <= g_mime_header_get_offset(h2))) {
			add_header(b, h1, subject_r);
			i++;
		} else {
			add_header(b, h2, subject_r);
			k++;
		}
	}
}

/* parse - s[0, n) turned into the view's texts */
static void
parse(struct build *b, const char *s, size_t n)
{
	struct message_view *mv = b->mv;
	size_t subject = SIZE_MAX;
	GMimeMessage *msg = gmime_parse(s, n);

	if (msg != NULL)
		add_headers(b, msg, &subject);
	/* SpamAssassin's body starts with the (last) Subject's line. */
	if (subject != SIZE_MAX && !mv->strings.oom)
		norm_add(&b->body, mv->strings.p + subject, strlen(mv->strings.p + subject));
	norm_add(&b->body, "\n", 1);
	if (msg != NULL) {
		walk(b, g_mime_message_get_mime_part(msg), 0);
		g_object_unref(msg);
	} else {
		/* Not even a header: all of it is one text/plain part. */
		norm_add(&b->body, "\n", 1);
		add_text(b, s, n, NULL, true, false, true);
	}
	norm_flush(&b->body);
}

/* done - a NUL-terminated string for every text, pointers for the header offsets */
static bool
done(struct message_view *mv)
{
	struct buf *texts[] = { &mv->body, &mv->rawbody, &mv->full, &mv->strings,
		&mv->uri_lines };

	mv->uri_lines.limit = SIZE_MAX;
	for (size_t i = 0; i < mv->nuris; i++) {
		buf_add(&mv->uri_lines, mv->uris[i], strlen(mv->uris[i]));
		buf_addc(&mv->uri_lines, '\n');
	}

	for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
		if (!buf_reserve(texts[i], 0))
			return false;
		texts[i]->p[texts[i]->len] = '\0';
	}
	for (size_t i = 0; i < mv->nheaders; i++) {
		struct message_header *h = &mv->headers[i];
		h->name = mv->strings.p + (uintptr_t)h->name;
		h->raw = mv->strings.p + (uintptr_t)h->raw;
		h->decoded = mv->strings.p + (uintptr_t)h->decoded;
	}
	return true;
}

/*
 * message_view_parse - the view of data[0, len).  Only the first
 * scan_limit bytes (0: MESSAGE_SCAN_LIMIT_DEFAULT) are looked at; NUL
 * bytes read as spaces everywhere, full included, so every text is also
 * a C string of its length.
 */
struct message_view *
message_view_parse(const char *data, size_t len, size_t scan_limit, const char **error_r)
{
	struct message_view *mv;
	struct build b;

	if (scan_limit == 0)
		scan_limit = MESSAGE_SCAN_LIMIT_DEFAULT;
	if (data == NULL)
		len = 0;
	message_view_init();
	if ((mv = calloc(1, sizeof(*mv))) == NULL)
		goto oom;
	mv->body.limit = mv->rawbody.limit = mv->full.limit = scan_limit;
	mv->strings.limit = SIZE_MAX;
	if (len > scan_limit)
		len = scan_limit;
	if (!buf_reserve(&mv->full, len))
		goto oom;
	if (len > 0)
		memcpy(mv->full.p, data, len);
	for (char *p = mv->full.p; (p = memchr(p, '\0', len - (size_t)(p - mv->full.p))) != NULL; )
		*p = ' ';
	mv->full.len = len;

	memset(&b, 0, sizeof(b));
	b.mv = mv;
	b.body.out = &mv->body;
	b.part_cap = scan_limit;
	b.structure_left = STRUCTURE_LINES_MAX;
	b.seen = g_hash_table_new(g_str_hash, g_str_equal);
	parse(&b, mv->full.p, structure_cut(mv->full.p, len, &b.structure_left));
	g_hash_table_destroy(b.seen);
	if (b.oom || mv->body.oom || mv->rawbody.oom || mv->strings.oom || !done(mv))
		goto oom;
	return mv;
oom:
	message_view_free(&mv);
	if (error_r != NULL)
		*error_r = "out of memory";
	return NULL;
}

void
message_view_free(struct message_view **mvp)
{
	struct message_view *mv = *mvp;

	if (mv == NULL)
		return;
	for (size_t i = 0; i < mv->nuris; i++)
		free(mv->uris[i]);
	free(mv->uris);
	free(mv->headers);
	free(mv->strings.p);
	free(mv->body.p);
	free(mv->rawbody.p);
	free(mv->full.p);
	free(mv->uri_lines.p);
	free(mv);
	*mvp = NULL;
}

size_t
message_view_header_count(const struct message_view *mv)
{
	return mv->nheaders;
}

const struct message_header *
message_view_header(const struct message_view *mv, size_t i)
{
	return i < mv->nheaders ? &mv->headers[i] : NULL;
}

const char *
message_view_body(const struct message_view *mv, size_t *len_r)
{
	*len_r = mv->body.len;
	return mv->body.p;
}

const char *
message_view_rawbody(const struct message_view *mv, size_t *len_r)
{
	*len_r = mv->rawbody.len;
	return mv->rawbody.p;
}

const char *
message_view_full(const struct message_view *mv, size_t *len_r)
{
	*len_r = mv->full.len;
	return mv->full.p;
}

size_t
message_view_uri_count(const struct message_view *mv)
{
	return mv->nuris;
}

const char *
message_view_uri(const struct message_view *mv, size_t i)
{
	return i < mv->nuris ? mv->uris[i] : NULL;
}

const char *
message_view_uri_lines(const struct message_view *mv, size_t *len_r)
{
	*len_r = mv->uri_lines.len;
	return mv->uri_lines.p;
}

/* A lock rather than pthread_once, so that init works again after deinit. */
void
message_view_init(void)
{
	pthread_mutex_lock(&init_lock);
	if (!initialized) {
		g_mime_init();
		initialized = true;
	}
	pthread_mutex_unlock(&init_lock);
}

void
message_view_deinit(void)
{
	pthread_mutex_lock(&init_lock);
	if (initialized) {
		g_mime_shutdown();
		initialized = false;
	}
	pthread_mutex_unlock(&init_lock);
}
