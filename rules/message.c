/*
 * message.c - the parsed view of one message that rules match against.
 *
 * GMime finds the MIME structure; this file owns everything after that:
 * the top-level header list (raw and RFC 2047-decoded) and the body,
 * rawbody, uri and full texts, built the way SpamAssassin builds them
 * (text parts decoded and converted to UTF-8, HTML rendered for body,
 * body whitespace folded into paragraphs).  Every output is bounded by
 * scan_limit, so a hostile message costs bounded memory and time.
 */
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "message.h"

#define URI_COUNT_MAX 1000
#define URI_LEN_MAX 4096
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

struct buf {
	char *p;
	size_t len, cap;
	size_t limit;		/* len never exceeds it */
	bool full;		/* text was cut at limit: add nothing more */
	bool oom;
};

struct message_view {
	struct message_header *headers;
	size_t nheaders;
	struct buf strings;	/* every header name and value, NUL-separated */
	struct buf body, rawbody, full;
	char **uris;
	size_t nuris;
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

/* Windows-1252 for 0x80-0x9F; the five holes stay C1 controls. */
static const uint16_t cp1252[32] = {
	0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
	0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
};

static const struct entity {
	const char *name;
	uint32_t cp;
} entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
	{ "AMP", '&' }, { "LT", '<' }, { "GT", '>' }, { "QUOT", '"' },
	{ "apos", '\'' }, { "nbsp", 0xA0 }, { "copy", 0xA9 }, { "reg", 0xAE },
	{ "trade", 0x2122 }, { "hellip", 0x2026 }, { "mdash", 0x2014 },
	{ "ndash", 0x2013 }, { "lsquo", 0x2018 }, { "rsquo", 0x2019 },
	{ "ldquo", 0x201C }, { "rdquo", 0x201D }, { "bull", 0x2022 },
	{ "euro", 0x20AC }, { "pound", 0xA3 }, { "yen", 0xA5 }, { "cent", 0xA2 },
	{ "middot", 0xB7 }, { "laquo", 0xAB }, { "raquo", 0xBB }, { "shy", 0xAD },
	{ "deg", 0xB0 }, { "times", 0xD7 }, { "eacute", 0xE9 }, { "egrave", 0xE8 },
	{ "aacute", 0xE1 }, { "agrave", 0xE0 }, { "auml", 0xE4 }, { "ouml", 0xF6 },
	{ "uuml", 0xFC }, { "szlig", 0xDF }, { "ccedil", 0xE7 }, { "ntilde", 0xF1 },
	{ "zwnj", 0x200C }, { "zwj", 0x200D }, { "thinsp", 0x2009 },
	{ "ensp", 0x2002 }, { "emsp", 0x2003 },
};

/* Tags that end a paragraph of rendered text (<br> only ends a line). */
static const char *const block_tags[] = {
	"p", "div", "tr", "li", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
	"table", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "title",
	"form", "address", "center", "section", "article", "header", "footer",
};

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool
is_alpha(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static bool
is_alnum(unsigned char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

/* buf_reserve - room for n more bytes and a NUL; false (and oom) if none */
static bool
buf_reserve(struct buf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->cap > b->len && n < b->cap - b->len)
		return true;
	if (n > SIZE_MAX / 4 - b->len) {
		b->oom = true;
		return false;
	}
	size_t cap = b->cap != 0 ? b->cap : 256;
	while (cap <= b->len + n)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

/* utf8_cut - the longest prefix of s[0, n) that ends on a character boundary */
static size_t
utf8_cut(const char *s, size_t n)
{
	size_t j = n;

	while (j > 0 && n - j < 3 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
		j--;
	if (j == 0)
		return n;
	unsigned char c = (unsigned char)s[j - 1];
	size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
	return n - (j - 1) < need ? j - 1 : n;
}

/* buf_add - append, or as much as fits under the limit without splitting a character */
static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->full || n == 0)
		return;
	if (n > b->limit - b->len) {
		n = utf8_cut(s, b->limit - b->len);
		b->full = true;
	}
	if (!buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

/* buf_add_cp - one character as UTF-8; NUL, surrogates and values past U+10FFFF as U+FFFD */
static void
buf_add_cp(struct buf *b, uint32_t cp)
{
	char u[8];

	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;
	buf_add(b, u, (size_t)g_unichar_to_utf8(cp, u));
}

/* add_legacy - a byte its charset does not define, read as Windows-1252 (NUL: space) */
static void
add_legacy(struct buf *b, unsigned char c)
{
	buf_add_cp(b, c == 0 ? ' ' : c >= 0x80 && c < 0xA0 ? cp1252[c - 0x80] : c);
}

/*
 * add_utf8 - valid UTF-8 as it is, any other byte as Windows-1252; a
 * character cut short at the end (by scan_limit) is dropped.
 */
static void
add_utf8(struct buf *b, const char *s, size_t n)
{
	while (n > 0) {
		const gchar *end;
		if (g_utf8_validate_len(s, n, &end)) {
			buf_add(b, s, n);
			return;
		}
		size_t ok = (size_t)(end - s);
		buf_add(b, s, ok);
		if (n - ok < 4 && s[ok] != '\0' &&
		    g_utf8_get_char_validated(s + ok, (gssize)(n - ok)) == (gunichar)-2)
			return;
		add_legacy(b, (unsigned char)s[ok]);
		s += ok + 1;
		n -= ok + 1;
	}
}

static bool
name_in(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (g_ascii_strcasecmp(name, list[i]) == 0)
			return true;
	return false;
}

/*
 * add_converted - s[0, n) in charset, as UTF-8.  Never fails: bytes the
 * charset does not define, and whole parts in a charset iconv does not
 * know, are read as UTF-8 where valid and Windows-1252 elsewhere.
 */
static void
add_converted(struct buf *out, const char *s, size_t n, const char *charset)
{
	static const char *const utf8[] = { "utf-8", "utf8", "us-ascii", "ascii", "us" };
	/* As browsers do: mail labelled Latin-1 is written in Windows-1252. */
	static const char *const latin1[] = { "iso-8859-1", "iso8859-1", "latin1", "l1",
		"iso_8859-1", "cp819", "ibm819", "iso-ir-100" };

	if (charset == NULL || *charset == '\0' || name_in(charset, utf8, G_N_ELEMENTS(utf8))) {
		add_utf8(out, s, n);
		return;
	}
	if (name_in(charset, latin1, G_N_ELEMENTS(latin1)))
		charset = "windows-1252";
	iconv_t cd = g_mime_iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1) {
		add_utf8(out, s, n);
		return;
	}
	char *in = (char *)s;
	size_t inleft = n, start = out->len;
	while (inleft > 0 && !out->oom) {
		if (!buf_reserve(out, inleft * 3 + 16))
			break;
		char *o = out->p + out->len;
		size_t oleft = out->cap - out->len - 1;
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		int err = errno;
		out->len = (size_t)(o - out->p);
		out->p[out->len] = '\0';
		if (r != (size_t)-1)
			break;
		if (err == EINVAL)
			break;		/* a character cut short at the end */
		if (err != E2BIG) {
			/* EILSEQ: a byte the charset does not define */
			add_legacy(out, (unsigned char)*in);
			in++;
			inleft--;
		}
	}
	if (buf_reserve(out, 16)) {
		/* End any shift state (ISO-2022-JP and the like). */
		char *o = out->p + out->len;
		size_t oleft = out->cap - out->len - 1;
		iconv(cd, NULL, NULL, &o, &oleft);
		out->len = (size_t)(o - out->p);
		out->p[out->len] = '\0';
	}
	g_mime_iconv_close(cd);
	/* glibc's iconv can write invalid UTF-8 ("$UTF-8" input past U+10FFFF, UCS-4). */
	if (!out->oom && !g_utf8_validate_len(out->p + start, out->len - start, NULL)) {
		size_t len = out->len - start;
		char *tmp = g_memdup2(out->p + start, len);
		out->len = start;
		add_utf8(out, tmp, len);
		g_free(tmp);
	}
}

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
	if (is_space((unsigned char)*s))
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
		while (j < len && !is_space((unsigned char)s[j]) && (unsigned char)s[j] != 0xC2)
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
		    (i > 0 && is_alnum((unsigned char)s[i - 1])))
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

/* entity - decode the character reference at s ('&'); its length, or 0 if none */
static size_t
entity(const char *s, size_t n, uint32_t *cp_r)
{
	size_t i = 1;

	if (n > 2 && s[1] == '#') {
		bool hex = (s[2] | 0x20) == 'x';
		uint32_t v = 0;
		size_t start;
		i = start = hex ? 3 : 2;
		for (; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			unsigned d;
			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f')
				d = (c | 0x20) - 'a' + 10;
			else
				break;
			v = v > 0x10FFFF ? v : v * (hex ? 16 : 10) + d;
		}
		if (i == start)
			return 0;
		/* As browsers do, &#128;-&#159; name Windows-1252 characters. */
		*cp_r = v >= 0x80 && v < 0xA0 ? cp1252[v - 0x80] : v;
		return i < n && s[i] == ';' ? i + 1 : i;
	}
	while (i < n && i <= 8 && is_alnum((unsigned char)s[i]))
		i++;
	for (size_t k = 0; k < G_N_ELEMENTS(entities); k++) {
		if (strlen(entities[k].name) == i - 1 && memcmp(s + 1, entities[k].name, i - 1) == 0) {
			*cp_r = entities[k].cp;
			return i < n && s[i] == ';' ? i + 1 : i;
		}
	}
	return 0;
}

/* decode_attr - an attribute value with character references decoded, tabs and line breaks dropped, trimmed */
static void
decode_attr(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n && out->len < URI_LEN_MAX; ) {
		uint32_t cp;
		size_t k = s[i] == '&' ? entity(s + i, n - i, &cp) : 0;
		if (k != 0) {
			buf_add_cp(out, cp);
			i += k;
		} else {
			if (s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
				buf_addc(out, s[i]);
			i++;
		}
	}
	/* Bytes are copied one by one: do not end inside a character. */
	size_t a = 0, z = out->p != NULL ? utf8_cut(out->p, out->len) : 0;
	while (a < z && out->p[a] == ' ')
		a++;
	while (z > a && out->p[z - 1] == ' ')
		z--;
	if (out->p != NULL) {
		memmove(out->p, out->p + a, z - a);
		out->len = z - a;
		out->p[out->len] = '\0';
	}
}

/* The HTML renderer's state for one part. */
struct render {
	struct build *b;
	struct buf out;		/* the rendered text */
	size_t scanned;		/* out[0, scanned) already searched for URIs */
};

/* find_ci - the offset of the ASCII string pat in s[from, n), case ignored; n if absent */
static size_t
find_ci(const char *s, size_t n, size_t from, const char *pat)
{
	size_t m = strlen(pat);

	for (size_t i = from; i + m <= n; i++) {
		const char *p = memchr(s + i, pat[0], n - i);
		if (p == NULL)
			break;
		i = (size_t)(p - s);
		if (i + m <= n && g_ascii_strncasecmp(s + i, pat, m) == 0)
			return i;
	}
	return n;
}

/* skip_past - the offset after the first pat in s[from, n), or n */
static size_t
skip_past(const char *s, size_t n, size_t from, const char *pat)
{
	size_t m = strlen(pat);
	const char *p = from < n ? memmem(s + from, n - from, pat, m) : NULL;

	return p != NULL ? (size_t)(p - s) + m : n;
}

/*
 * html_tag - handle the markup at s[i] == '<' and return where text
 * resumes.  Text before a tag is searched for URIs first, so URIs keep
 * their order of appearance and a tag always ends a URI.
 */
static size_t
html_tag(struct render *r, const char *s, size_t n, size_t i)
{
	size_t j = i + 1;
	bool closing = false;
	char name[16];
	size_t nl = 0;

	if (j < n && s[j] == '!' && n - j >= 3 && s[j + 1] == '-' && s[j + 2] == '-')
		return skip_past(s, n, j + 3, "-->");
	if (j < n && (s[j] == '!' || s[j] == '?'))
		return skip_past(s, n, j, ">");
	if (j < n && s[j] == '/') {
		closing = true;
		j++;
	}
	if (j >= n || !is_alpha((unsigned char)s[j])) {
		buf_addc(&r->out, '<');		/* not markup: "a < b" */
		return i + 1;
	}
	for (; j < n && !is_space((unsigned char)s[j]) && s[j] != '>' && s[j] != '/'; j++)
		if (nl < sizeof(name) - 1)
			name[nl++] = g_ascii_tolower(s[j]);
	name[nl] = '\0';
	if (r->out.len > r->scanned)
		scan_uris(r->b, r->out.p + r->scanned, r->out.len - r->scanned);
	r->scanned = r->out.len;

	struct buf alt = { .limit = SIZE_MAX };
	while (j < n && s[j] != '>') {
		if (is_space((unsigned char)s[j]) || s[j] == '/') {
			j++;
			continue;
		}
		size_t an = j;
		while (j < n && !is_space((unsigned char)s[j]) && s[j] != '>' && s[j] != '=' && s[j] != '/')
			j++;
		size_t alen = j - an;
		while (j < n && is_space((unsigned char)s[j]))
			j++;
		if (j >= n || s[j] != '=')
			continue;
		for (j++; j < n && is_space((unsigned char)s[j]); j++)
			;
		size_t vs = j, ve;
		if (j < n && (s[j] == '"' || s[j] == '\'')) {
			const char *q = memchr(s + j + 1, s[j], n - j - 1);
			vs = j + 1;
			ve = q != NULL ? (size_t)(q - s) : n;
			j = q != NULL ? ve + 1 : n;
		} else {
			while (j < n && !is_space((unsigned char)s[j]) && s[j] != '>')
				j++;
			ve = j;
		}
		static const char *const uri_attrs[] = { "href", "src", "action", "background" };
		char aname[12];
		if (closing || alen == 0 || alen >= sizeof(aname))
			continue;
		memcpy(aname, s + an, alen);
		aname[alen] = '\0';
		if (name_in(aname, uri_attrs, G_N_ELEMENTS(uri_attrs))) {
			struct buf v = { .limit = SIZE_MAX };
			decode_attr(&v, s + vs, ve - vs);
			add_uri(r->b, "", v.p, v.len);
			r->b->oom |= v.oom;
			free(v.p);
		} else if (strcmp(name, "img") == 0 && g_ascii_strcasecmp(aname, "alt") == 0) {
			alt.len = 0;
			decode_attr(&alt, s + vs, ve - vs);
		}
	}
	j = j < n ? j + 1 : n;

	if (!closing && (strcmp(name, "script") == 0 || strcmp(name, "style") == 0)) {
		/* Not text: skip to the end tag (or the end, as browsers do). */
		size_t end = find_ci(s, n, j, name[1] == 'c' ? "</script" : "</style");
		j = skip_past(s, n, end, ">");
	} else if (strcmp(name, "br") == 0) {
		buf_addc(&r->out, '\n');
	} else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0) {
		buf_addc(&r->out, ' ');
	} else if (name_in(name, block_tags, G_N_ELEMENTS(block_tags))) {
		buf_add(&r->out, "\n\n", 2);
	} else if (alt.len > 0) {
		/* SpamAssassin renders an image as its alt text. */
		buf_addc(&r->out, ' ');
		buf_add(&r->out, alt.p, alt.len);
		buf_addc(&r->out, ' ');
	}
	r->b->oom |= alt.oom;
	free(alt.p);
	return j;
}

/*
 * html_render - HTML to text as SpamAssassin renders it: markup, scripts,
 * styles and comments removed, character references decoded, <br> a
 * line break, block elements paragraph breaks (norm_add folds the rest).
 * URIs come from the URI attributes and from the text.
 */
static void
html_render(struct build *b, const char *s, size_t n, struct buf *out_r)
{
	struct render r = { .b = b, .out = { .limit = SIZE_MAX } };
	size_t i = 0;

	while (i < n && !r.out.oom) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp;
		size_t k;
		if (c == '<') {
			i = html_tag(&r, s, n, i);
		} else if (c == '&' && (k = entity(s + i, n - i, &cp)) != 0) {
			/* Whitespace written as a reference is still only whitespace. */
			if (cp == 0xA0 || (cp < 0x80 && is_space((unsigned char)cp)))
				buf_addc(&r.out, ' ');
			else
				buf_add_cp(&r.out, cp);
			i += k;
		} else if (is_space(c)) {
			buf_addc(&r.out, ' ');
			i++;
		} else {
			size_t j = i + 1;
			while (j < n && s[j] != '<' && s[j] != '&' && !is_space((unsigned char)s[j]))
				j++;
			buf_add(&r.out, s + i, j - i);
			i = j;
		}
	}
	if (r.out.len > r.scanned)
		scan_uris(b, r.out.p + r.scanned, r.out.len - r.scanned);
	*out_r = r.out;
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

	add_converted(&t, s, n, charset);
	clean_text(&t);
	if (t.len > b->part_cap)
		t.len = utf8_cut(t.p, b->part_cap);
	if (raw) {
		if (b->nraw++ > 0)
			buf_addc(&mv->rawbody, '\n');
		buf_add(&mv->rawbody, t.p, t.len);
	}
	if (text && html) {
		struct buf h;
		html_render(b, t.p, t.len, &h);
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
	add_utf8(s, dec, strlen(dec));
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
	struct buf *texts[] = { &mv->body, &mv->rawbody, &mv->full, &mv->strings };

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
