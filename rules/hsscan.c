/*
 * hsscan.c - Hyperscan as the prefilter of text rules (hsscan.h): the
 * one-byte-per-character projection of patterns and texts, and the
 * databases built and scanned over it.
 *
 * Each rule's regex goes in with HS_FLAG_PREFILTER: Hyperscan then accepts
 * constructs it could not match exactly (back-references, lookarounds) by
 * matching something wider, which is all a prefilter needs; PCRE2 gives
 * the verdict.  HS_FLAG_SINGLEMATCH makes one report per rule and scan.
 * Without libhs the projection is still here (tests use it) and the
 * database entry points send callers down the literal prefilter path.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "hsscan.h"
#include "textbuf.h"

/* What every non-ASCII character becomes, in texts and in patterns. */
#define PROJECTED "\\x80"
#define PROJECTED_BYTE 0x80

/* utf8_seq - the length of the valid UTF-8 sequence at p, 0 if invalid
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF) */
static size_t
utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = *p, lo = 0x80, hi = 0xBF;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		lo = c == 0xE0 ? 0xA0 : 0x80;
		hi = c == 0xED ? 0x9F : 0xBF;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		lo = c == 0xF0 ? 0x90 : 0x80;
		hi = c == 0xF4 ? 0x8F : 0xBF;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

/* ---- patterns ---- */

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* put_char - a character given by an escape: as \xHH if ASCII, else projected */
static void
put_char(struct buf *o, unsigned long v, bool *nonascii)
{
	char b[8];

	if (v >= 0x80) {
		buf_add(o, PROJECTED, 4);
		*nonascii = true;
		return;
	}
	snprintf(b, sizeof(b), "\\x%02lX", v);
	buf_add(o, b, 4);
}

/*
 * escape - the escape at *pp ('\'), copied or projected; *nonascii is set
 * if it stood for a non-ASCII character.  False for what the projection
 * cannot carry: escapes that match some non-ASCII characters and not
 * others (\h \v \R), Unicode properties and clusters (\p \P \X), single
 * code units (\C), named characters (\N{...}), quoting (\Q...\E), and
 * octal escapes that could exceed 0x7F.
 */
static bool
escape(const unsigned char **pp, const unsigned char *end, struct buf *o, bool *nonascii)
{
	const unsigned char *p = *pp;
	unsigned long v = 0;

	if (p + 1 >= end)
		return false;
	unsigned char c = p[1];
	if (c >= 0x80) {
		/* an escaped literal character */
		size_t n = utf8_seq(p + 1, end);
		if (n == 0)
			return false;
		buf_add(o, PROJECTED, 4);
		*nonascii = true;
		*pp = p + 1 + n;
		return true;
	}
	switch (c) {
	case 'x':
		p += 2;
		if (p < end && *p == '{') {
			const unsigned char *q = p + 1;
			int d, digits = 0;
			while (q < end && (d = hex_value(*q)) >= 0 && digits < 8) {
				v = v * 16 + (unsigned long)d;
				q++;
				digits++;
			}
			if (q >= end || *q != '}' || digits == 0)
				return false;
			p = q + 1;
		} else {
			int d;
			for (int i = 0; i < 2 && p < end && (d = hex_value(*p)) >= 0; i++, p++)
				v = v * 16 + (unsigned long)d;
		}
		put_char(o, v, nonascii);
		*pp = p;
		return true;
	case 'o':
		p += 2;
		if (p >= end || *p != '{')
			return false;
		for (p++; p < end && *p >= '0' && *p <= '7' && v < 0x10FFFF; p++)
			v = v * 8 + (unsigned long)(*p - '0');
		if (p >= end || *p != '}')
			return false;
		put_char(o, v, nonascii);
		*pp = p + 1;
		return true;
	case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
		/* a back-reference or an octal escape: copied, unless it could be
		 * octal past 0x7F (\200 and up) */
		const unsigned char *q = p + 1;
		while (q < end && *q >= '0' && *q <= '9' && q - p <= 3)
			q++;
		if (q - p == 4 && p[1] >= '2' && p[1] <= '3')
			return false;
		buf_add(o, (const char *)p, (size_t)(q - p));
		*pp = q;
		return true;
	}
	case 'h': case 'v': case 'R': case 'p': case 'P': case 'X': case 'C': case 'Q':
	case 'E':
		return false;
	case 'N':
		if (p + 2 < end && p[2] == '{')
			return false;
		break;
	default:
		break;
	}
	buf_add(o, (const char *)p, 2);
	*pp = p + 2;
	return true;
}

/* char_class - the class at *pp ('['), each non-ASCII member projected; a
 * negated class with one cannot be carried (it would refuse 0x80, which
 * stands for every other non-ASCII character too) */
static bool
char_class(const unsigned char **pp, const unsigned char *end, struct buf *o)
{
	const unsigned char *p = *pp + 1;
	bool negated = false, nonascii = false;

	buf_add(o, "[", 1);
	if (p < end && *p == '^') {
		negated = true;
		buf_add(o, "^", 1);
		p++;
	}
	if (p < end && *p == ']') {
		buf_add(o, "]", 1);
		p++;
	}
	while (p < end && *p != ']') {
		if (*p == '[' && p + 1 < end && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			/* [:alpha:] and the like: ASCII-only without Unicode properties */
			const unsigned char *q = p + 2;
			while (q + 1 < end && !(q[0] == p[1] && q[1] == ']'))
				q++;
			if (q + 1 >= end)
				return false;
			buf_add(o, (const char *)p, (size_t)(q + 2 - p));
			p = q + 2;
		} else if (*p == '\\') {
			if (!escape(&p, end, o, &nonascii))
				return false;
		} else if (*p >= 0x80) {
			size_t n = utf8_seq(p, end);
			if (n == 0)
				return false;
			buf_add(o, PROJECTED, 4);
			nonascii = true;
			p += n;
		} else {
			buf_add(o, (const char *)p, 1);
			p++;
		}
		if (negated && nonascii)
			return false;
	}
	if (p >= end)
		return false;
	buf_add(o, "]", 1);
	*pp = p + 1;
	return true;
}

/* extended_comments - whether the pattern may hold /x comments, which the
 * scanner above would read as pattern text */
static bool
extended_comments(const char *re, uint32_t options)
{
	if (strchr(re, '#') == NULL)
		return false;
	if (options & PCRE2_EXTENDED)
		return true;
	for (const char *g = strstr(re, "(?"); g != NULL; g = strstr(g + 2, "(?"))
		for (const char *f = g + 2; *f != '\0' && *f != ')' && *f != ':'; f++)
			if (*f == 'x')
				return true;
	return false;
}

/* Hyperscan compiles a bounded repeat into states, one per step: a
 * {0,2048} took 20 s to compile.  Over this bound, a single character's
 * repeat is widened to {m,} (m at most the bound), which matches wherever
 * the original does and costs Hyperscan one loop; a group's is refused. */
#define REPEAT_MAX 128

/* quantifier - the {m}, {m,} or {m,n} at p: its length, 0 if p starts a
 * literal brace; *min_r and *max_r (ULONG_MAX: none) get the bounds */
static size_t
quantifier(const unsigned char *p, const unsigned char *end, unsigned long *min_r,
    unsigned long *max_r)
{
	const unsigned char *q = p + 1;
	unsigned long v[2] = { 0, 0 };
	int field = 0;
	bool digits[2] = { false, false };

	for (; q < end && *q != '}'; q++) {
		if (*q == ',' && field == 0) {
			field = 1;
			continue;
		}
		if (*q < '0' || *q > '9')
			return 0;
		if (v[field] < 100000)
			v[field] = v[field] * 10 + (unsigned long)(*q - '0');
		digits[field] = true;
	}
	if (q >= end || !digits[0])
		return 0;
	*min_r = v[0];
	*max_r = field == 0 ? v[0] : digits[1] ? v[1] : ULONG_MAX;
	return (size_t)(q + 1 - p);
}

/* text_anchor - whether re uses \A, \z, \Z or \G, which anchor at the
 * ends of the whole text, not of a line */
static bool
text_anchor(const char *re)
{
	for (const char *p = re; *p != '\0'; p++) {
		if (*p != '\\' || p[1] == '\0')
			continue;
		p++;
		if (*p == 'A' || *p == 'z' || *p == 'Z' || *p == 'G')
			return true;
	}
	return false;
}

char *
hsscan_project_pattern(const char *re)
{
	const unsigned char *p = (const unsigned char *)re, *end = p + strlen(re);
	struct buf o = { .limit = SIZE_MAX };
	bool nonascii = false;
	unsigned long qmin, qmax;
	size_t qlen;

	if (!buf_reserve(&o, 0))
		return NULL;
	o.p[0] = '\0';		/* an empty pattern projects to "" */
	while (p < end && !o.oom) {
		if (*p == '\\') {
			if (!escape(&p, end, &o, &nonascii))
				goto reject;
		} else if (*p == '[') {
			if (!char_class(&p, end, &o))
				goto reject;
		} else if (*p == '{' && p + 1 < end && p[1] == ',') {
			goto reject;	/* {,n}: a quantifier in newer PCRE2 only */
		} else if (*p == '{' && (qlen = quantifier(p, end, &qmin, &qmax)) > 0 &&
		    (qmin > REPEAT_MAX || (qmax != ULONG_MAX && qmax > REPEAT_MAX))) {
			char b[32];
			if (o.len > 0 && o.p[o.len - 1] == ')')
				goto reject;
			snprintf(b, sizeof(b), "{%lu,}", qmin < REPEAT_MAX ? qmin : REPEAT_MAX);
			buf_add(&o, b, strlen(b));
			p += qlen;
		} else if (*p >= 0x80) {
			size_t n = utf8_seq(p, end);
			if (n == 0)
				goto reject;
			buf_add(&o, PROJECTED, 4);
			p += n;
		} else {
			buf_add(&o, (const char *)p, 1);
			p++;
		}
	}
	if (!o.oom)
		return o.p;
reject:
	free(o.p);
	return NULL;
}

/* ---- texts ---- */

/* ascii_only - eight bytes at a time: most mail text is ASCII */
static bool
ascii_only(const char *s, size_t len)
{
	size_t i = 0;
	uint64_t acc = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		acc |= w;
	}
	for (; i < len; i++)
		acc |= (unsigned char)s[i];
	return (acc & 0x8080808080808080ULL) == 0;
}

size_t
hsscan_project_text(const char *s, size_t len, char *out)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t n = 0;

	while (p < end) {
		if (*p < 0x80) {
			out[n++] = (char)*p++;
			continue;
		}
		size_t k = utf8_seq(p, end);
		/* U+212A and U+017F fold to k and s: ASCII letters, not 0x80 */
		if (k == 3 && p[0] == 0xE2 && p[1] == 0x84 && p[2] == 0xAA)
			return SIZE_MAX;
		if (k == 2 && p[0] == 0xC5 && p[1] == 0xBF)
			return SIZE_MAX;
		/* invalid bytes match nothing in PCRE2: one 0x80 each is wider */
		out[n++] = (char)PROJECTED_BYTE;
		p += k == 0 ? 1 : k;
	}
	return n;
}

#ifdef HAVE_HYPERSCAN

#include <stdatomic.h>

#include <hs.h>

struct hsscan {
	hs_database_t *db;
	size_t *ids;		/* Hyperscan's id k marks ids[k] */
	unsigned long serial;	/* unique to this database, for scan_tls */
};

static atomic_ulong next_serial = 1;

/* ---- per thread: scratch space and the projection buffer ---- */

/* Scratch space only grows, and then serves every database it grew for:
 * the serials of the last few are remembered, because hs_alloc_scratch()
 * checks the whole database's CRC (it was most of a 4 KB message's cost). */
#define FITTED_MAX 16

struct hsscan_state {
	hs_scratch_t *scratch;
	unsigned long fitted[FITTED_MAX];
	size_t next_fitted;
	char *buf;
	size_t cap;
};

/* fit_scratch - the state's scratch, fit for db */
static bool
fit_scratch(struct hsscan_state *st, const struct hsscan *hs)
{
	for (size_t i = 0; i < FITTED_MAX; i++)
		if (st->fitted[i] == hs->serial)
			return true;
	if (hs_alloc_scratch(hs->db, &st->scratch) != HS_SUCCESS)
		return false;
	st->fitted[st->next_fitted++ % FITTED_MAX] = hs->serial;
	return true;
}

struct hsscan_state *
hsscan_state_new(void)
{
	return calloc(1, sizeof(struct hsscan_state));
}

void
hsscan_state_free(struct hsscan_state **stp)
{
	struct hsscan_state *st = *stp;

	*stp = NULL;
	if (st == NULL)
		return;
	hs_free_scratch(st->scratch);
	free(st->buf);
	free(st);
}

/* ---- at load ---- */

static unsigned
hs_flags(const char *re, uint32_t pcre_options, bool per_line)
{
	unsigned f = HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;

	if (pcre_options & PCRE2_CASELESS)
		f |= HS_FLAG_CASELESS;
	/* Multi-line mode only changes ^ and $, and costs Hyperscan about a
	 * fifth of its speed where set: so only where they occur. */
	if (((pcre_options & PCRE2_MULTILINE) || per_line) && strpbrk(re, "^$") != NULL)
		f |= HS_FLAG_MULTILINE;
	if (pcre_options & PCRE2_DOTALL)
		f |= HS_FLAG_DOTALL;
	return f;
}

/* candidate - pattern p in the form Hyperscan compiles (malloc'ed), or NULL */
static char *
candidate(const struct hsscan_pattern *p, unsigned *flags_r)
{
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *cerr = NULL;
	char *re, *x;

	if (!p->utf || extended_comments(p->re, p->pcre_options) ||
	    (p->per_line && text_anchor(p->re)) || (re = hsscan_project_pattern(p->re)) == NULL)
		return NULL;
	/* Hyperscan has no flag for /x, but reads the inline form. */
	if (p->pcre_options & PCRE2_EXTENDED) {
		size_t len = strlen(re);
		if ((x = malloc(len + 5)) == NULL) {
			free(re);
			return NULL;
		}
		memcpy(x, "(?x)", 4);
		memcpy(x + 4, re, len + 1);
		free(re);
		re = x;
	}
	*flags_r = hs_flags(re, p->pcre_options, p->per_line);
	/* A construct Hyperscan cannot take shows here, one pattern at a
	 * time, rather than failing the whole database. */
	if (hs_expression_info(re, *flags_r, &info, &cerr) != HS_SUCCESS) {
		hs_free_compile_error(cerr);
		free(re);
		return NULL;
	}
	free(info);
	return re;
}

struct hsscan *
hsscan_build(const struct hsscan_pattern *pats, size_t n, bool *accepted, const char **why_r)
{
	struct hsscan *hs = NULL;
	char **exprs = calloc(n + 1, sizeof(*exprs));
	unsigned *flags = calloc(n + 1, sizeof(*flags)), *ids = calloc(n + 1, sizeof(*ids));
	size_t *index = calloc(n + 1, sizeof(*index));
	size_t m = 0;

	*why_r = "";
	for (size_t i = 0; i < n; i++)
		accepted[i] = false;
	if (hs_valid_platform() != HS_SUCCESS) {
		*why_r = "this CPU lacks SSSE3, which Hyperscan needs";
		goto out;
	}
	if (exprs == NULL || flags == NULL || ids == NULL || index == NULL) {
		*why_r = "out of memory";
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if ((exprs[m] = candidate(&pats[i], &flags[m])) == NULL)
			continue;
		ids[m] = (unsigned)m;
		index[m++] = i;
	}
	/* A pattern can still fail whole-database compilation (a resource
	 * limit): drop the one named and try again, at most once per pattern. */
	for (size_t tries = 0; m > 0 && tries <= n; tries++) {
		hs_database_t *db = NULL;
		hs_compile_error_t *cerr = NULL;
		if (hs_compile_multi((const char *const *)exprs, flags, ids, (unsigned)m,
		    HS_MODE_BLOCK, NULL, &db, &cerr) == HS_SUCCESS) {
			if ((hs = calloc(1, sizeof(*hs))) == NULL ||
			    (hs->ids = calloc(m, sizeof(*hs->ids))) == NULL) {
				free(hs);
				hs = NULL;
				hs_free_database(db);
				*why_r = "out of memory";
				goto out;
			}
			hs->db = db;
			hs->serial = atomic_fetch_add(&next_serial, 1);
			break;
		}
		int bad = cerr != NULL ? cerr->expression : -1;
		hs_free_compile_error(cerr);
		if (bad < 0 || (size_t)bad >= m) {
			*why_r = "Hyperscan could not compile the rule set";
			goto out;
		}
		free(exprs[bad]);
		m--;
		memmove(exprs + bad, exprs + bad + 1, (m - (size_t)bad) * sizeof(*exprs));
		exprs[m] = NULL;
		memmove(flags + bad, flags + bad + 1, (m - (size_t)bad) * sizeof(*flags));
		memmove(index + bad, index + bad + 1, (m - (size_t)bad) * sizeof(*index));
	}
	if (hs == NULL)
		goto out;
	for (size_t k = 0; k < m; k++) {
		accepted[index[k]] = true;
		hs->ids[k] = pats[index[k]].id;
	}
out:
	for (size_t i = 0; exprs != NULL && i < n; i++)
		free(exprs[i]);
	free(exprs);
	free(flags);
	free(ids);
	free(index);
	return hs;
}

/* ---- per text ---- */

struct scan_ctx {
	const size_t *ids;
	unsigned char *marks;
};

static int
on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
    void *ctx)
{
	struct scan_ctx *sc = ctx;

	(void)from;
	(void)to;
	(void)flags;
	sc->marks[sc->ids[id]] = 1;
	return 0;
}

bool
hsscan_scan(const struct hsscan *hs, struct hsscan_state *st, const char *s, size_t len,
    unsigned char *marks)
{
	struct scan_ctx sc = { hs->ids, marks };

	if (s == NULL) {
		s = "";
		len = 0;
	}
	if (st == NULL || len > UINT32_MAX || !fit_scratch(st, hs))
		return false;
	if (!ascii_only(s, len)) {
		if (len > st->cap) {
			char *nb = realloc(st->buf, len);
			if (nb == NULL)
				return false;
			st->buf = nb;
			st->cap = len;
		}
		if ((len = hsscan_project_text(s, len, st->buf)) == SIZE_MAX)
			return false;
		s = st->buf;
	}
	return hs_scan(hs->db, s, (unsigned)len, 0, st->scratch, on_match, &sc) == HS_SUCCESS;
}

void
hsscan_free(struct hsscan **hsp)
{
	struct hsscan *hs = *hsp;

	*hsp = NULL;
	if (hs == NULL)
		return;
	hs_free_database(hs->db);
	free(hs->ids);
	free(hs);
}

#else /* !HAVE_HYPERSCAN */

struct hsscan *
hsscan_build(const struct hsscan_pattern *pats, size_t n, bool *accepted, const char **why_r)
{
	(void)pats;
	(void)extended_comments;
	(void)text_anchor;
	for (size_t i = 0; i < n; i++)
		accepted[i] = false;
	*why_r = "moat was built without Hyperscan";
	return NULL;
}

bool
hsscan_scan(const struct hsscan *hs, struct hsscan_state *st, const char *s, size_t len,
    unsigned char *marks)
{
	(void)hs;
	(void)st;
	(void)s;
	(void)len;
	(void)marks;
	(void)ascii_only;
	return false;
}

void
hsscan_free(struct hsscan **hsp)
{
	*hsp = NULL;
}

struct hsscan_state *
hsscan_state_new(void)
{
	return NULL;
}

void
hsscan_state_free(struct hsscan_state **stp)
{
	*stp = NULL;
}

#endif
