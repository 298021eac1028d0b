/*
 * textbuf.c - bounded, sticky text buffers and the conversion of a part's
 * bytes to UTF-8 (textbuf.h).
 */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "textbuf.h"

/* Windows-1252 for 0x80-0x9F; the five holes stay C1 controls. */
static const uint16_t cp1252[32] = {
	0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
	0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
};

uint32_t
cp1252_char(unsigned char c)
{
	return c >= 0x80 && c < 0xA0 ? cp1252[c - 0x80] : c;
}

/* buf_reserve - room for n more bytes and a NUL; false (and oom) if none */
bool
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
size_t
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
void
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

void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

/* buf_add_cp - one character as UTF-8; NUL, surrogates and values past U+10FFFF as U+FFFD */
void
buf_add_cp(struct buf *b, uint32_t cp)
{
	char u[8];

	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;
	buf_add(b, u, (size_t)g_unichar_to_utf8(cp, u));
}

/* buf_add_legacy - a byte its charset does not define, read as Windows-1252 (NUL: space) */
static void
buf_add_legacy(struct buf *b, unsigned char c)
{
	buf_add_cp(b, c == 0 ? ' ' : cp1252_char(c));
}

/*
 * buf_add_utf8 - valid UTF-8 as it is, any other byte as Windows-1252; a
 * character cut short at the end (by scan_limit) is dropped.
 */
void
buf_add_utf8(struct buf *b, const char *s, size_t n)
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
		buf_add_legacy(b, (unsigned char)s[ok]);
		s += ok + 1;
		n -= ok + 1;
	}
}

bool
ascii_name_in(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (g_ascii_strcasecmp(name, list[i]) == 0)
			return true;
	return false;
}

/*
 * buf_add_converted - s[0, n) in charset, as UTF-8.  Never fails: bytes the
 * charset does not define, and whole parts in a charset iconv does not
 * know, are read as UTF-8 where valid and Windows-1252 elsewhere.
 */
void
buf_add_converted(struct buf *out, const char *s, size_t n, const char *charset)
{
	static const char *const utf8[] = { "utf-8", "utf8", "us-ascii", "ascii", "us" };
	/* As browsers do: mail labelled Latin-1 is written in Windows-1252. */
	static const char *const latin1[] = { "iso-8859-1", "iso8859-1", "latin1", "l1",
		"iso_8859-1", "cp819", "ibm819", "iso-ir-100" };

	if (charset == NULL || *charset == '\0' || ascii_name_in(charset, utf8, G_N_ELEMENTS(utf8))) {
		buf_add_utf8(out, s, n);
		return;
	}
	if (ascii_name_in(charset, latin1, G_N_ELEMENTS(latin1)))
		charset = "windows-1252";
	iconv_t cd = g_mime_iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1) {
		buf_add_utf8(out, s, n);
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
			buf_add_legacy(out, (unsigned char)*in);
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
		buf_add_utf8(out, tmp, len);
		g_free(tmp);
	}
}
