/*
 * html.c - HTML rendered to text the way SpamAssassin renders it for body
 * rules, with the URIs met on the way (html.h).  A small scanner, not a
 * parser: it must survive any markup and keep the text a reader would
 * see, nothing more.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "html.h"

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
		*cp_r = v >= 0x80 && v < 0xA0 ? cp1252_char((unsigned char)v) : v;
		return i < n && s[i] == ';' ? i + 1 : i;
	}
	while (i < n && i <= 8 && ascii_alnum((unsigned char)s[i]))
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
	const struct html_uri_sink *uris;
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
	if (j >= n || !ascii_alpha((unsigned char)s[j])) {
		buf_addc(&r->out, '<');		/* not markup: "a < b" */
		return i + 1;
	}
	for (; j < n && !ascii_space((unsigned char)s[j]) && s[j] != '>' && s[j] != '/'; j++)
		if (nl < sizeof(name) - 1)
			name[nl++] = g_ascii_tolower(s[j]);
	name[nl] = '\0';
	if (r->out.len > r->scanned)
		r->uris->text(r->uris->ctx, r->out.p + r->scanned, r->out.len - r->scanned);
	r->scanned = r->out.len;

	struct buf alt = { .limit = SIZE_MAX };
	while (j < n && s[j] != '>') {
		if (ascii_space((unsigned char)s[j]) || s[j] == '/') {
			j++;
			continue;
		}
		size_t an = j;
		while (j < n && !ascii_space((unsigned char)s[j]) && s[j] != '>' && s[j] != '=' && s[j] != '/')
			j++;
		size_t alen = j - an;
		while (j < n && ascii_space((unsigned char)s[j]))
			j++;
		if (j >= n || s[j] != '=')
			continue;
		for (j++; j < n && ascii_space((unsigned char)s[j]); j++)
			;
		size_t vs = j, ve;
		if (j < n && (s[j] == '"' || s[j] == '\'')) {
			const char *q = memchr(s + j + 1, s[j], n - j - 1);
			vs = j + 1;
			ve = q != NULL ? (size_t)(q - s) : n;
			j = q != NULL ? ve + 1 : n;
		} else {
			while (j < n && !ascii_space((unsigned char)s[j]) && s[j] != '>')
				j++;
			ve = j;
		}
		static const char *const uri_attrs[] = { "href", "src", "action", "background" };
		char aname[12];
		if (closing || alen == 0 || alen >= sizeof(aname))
			continue;
		memcpy(aname, s + an, alen);
		aname[alen] = '\0';
		if (ascii_name_in(aname, uri_attrs, G_N_ELEMENTS(uri_attrs))) {
			struct buf v = { .limit = SIZE_MAX };
			decode_attr(&v, s + vs, ve - vs);
			r->uris->attr(r->uris->ctx, v.p != NULL ? v.p : "", v.len);
			r->out.oom |= v.oom;
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
	} else if (ascii_name_in(name, block_tags, G_N_ELEMENTS(block_tags))) {
		buf_add(&r->out, "\n\n", 2);
	} else if (alt.len > 0) {
		/* SpamAssassin renders an image as its alt text. */
		buf_addc(&r->out, ' ');
		buf_add(&r->out, alt.p, alt.len);
		buf_addc(&r->out, ' ');
	}
	r->out.oom |= alt.oom;
	free(alt.p);
	return j;
}

/* html_render - see html.h; norm_add (message.c) then folds the whitespace */
void
html_render(const char *s, size_t n, const struct html_uri_sink *uris, struct buf *out_r)
{
	struct render r = { .uris = uris, .out = { .limit = SIZE_MAX } };
	size_t i = 0;

	while (i < n && !r.out.oom) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp;
		size_t k;
		if (c == '<') {
			i = html_tag(&r, s, n, i);
		} else if (c == '&' && (k = entity(s + i, n - i, &cp)) != 0) {
			/* Whitespace written as a reference is still only whitespace. */
			if (cp == 0xA0 || (cp < 0x80 && ascii_space((unsigned char)cp)))
				buf_addc(&r.out, ' ');
			else
				buf_add_cp(&r.out, cp);
			i += k;
		} else if (ascii_space(c)) {
			buf_addc(&r.out, ' ');
			i++;
		} else {
			size_t j = i + 1;
			while (j < n && s[j] != '<' && s[j] != '&' && !ascii_space((unsigned char)s[j]))
				j++;
			buf_add(&r.out, s + i, j - i);
			i = j;
		}
	}
	if (r.out.len > r.scanned)
		uris->text(uris->ctx, r.out.p + r.scanned, r.out.len - r.scanned);
	*out_r = r.out;
}
