/*
 * prefilter.c - required literals of regexes and the Aho-Corasick automaton
 * that finds them (see prefilter.h).  The literal reader is deliberately
 * conservative: whatever it does not fully understand ends the current run
 * of literal characters or gives up on the pattern, since a wrong literal
 * would silently lose hits while a missing one only costs time.  The
 * automaton owns its trie, its transition table and its output lists.
 */
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "prefilter.h"

/* ---- at load: the literal of a pattern ---- */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* skip_to - past the first close at or after p; NULL if there is none */
static const char *
skip_to(const char *p, const char *end, char close)
{
	const char *q = memchr(p, close, (size_t)(end - p));

	return q != NULL ? q + 1 : NULL;
}

/*
 * quantifier - the length of the quantifier at p (0: none), its minimum in
 * *min_r.  A brace that could be a quantifier in any PCRE2 version ("{,3}",
 * "{ 1 , 2 }") counts as one with minimum 0 unless its minimum is plain,
 * so the character before it is never kept on a guess.
 */
static size_t
quantifier(const char *p, const char *end, unsigned long *min_r)
{
	const char *q = p + 1, *d;
	unsigned long min = 0;

	if (p >= end)
		return 0;
	if (*p == '?' || *p == '*' || *p == '+') {
		*min_r = *p == '+';
	} else if (*p == '{') {
		while (q < end && (is_digit(*q) || *q == ',' || *q == ' '))
			q++;
		if (q >= end || *q != '}' || q == p + 1)
			return 0;	/* not a quantifier: a literal brace */
		/* the plain forms {n}, {n,} and {n,m} give their n */
		for (d = p + 1; is_digit(*d); d++)
			min = min < 100000 ? min * 10 + (unsigned long)(*d - '0') : min;
		if (d == p + 1 || memchr(p + 1, ' ', (size_t)(q - p - 1)) != NULL ||
		    (*d == ',' && memchr(d + 1, ',', (size_t)(q - d - 1)) != NULL))
			min = 0;
		*min_r = min;
		q++;
	} else {
		return 0;
	}
	/* lazy or possessive: the same minimum */
	if (q < end && (*q == '?' || *q == '+'))
		q++;
	return (size_t)(q - p);
}

/* skip_class - past the [...] at p; NULL if not understood */
static const char *
skip_class(const char *p, const char *end)
{
	p++;
	if (p < end && *p == '^')
		p++;
	if (p < end && *p == ']')
		p++;	/* a leading ] is a member */
	while (p < end) {
		if (*p == '\\') {
			if (p + 1 < end && p[1] == 'Q')
				return NULL;
			p += 2;
		} else if (*p == '[' && p + 1 < end && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			/* a POSIX class, "[:alpha:]" or "[:^alpha:]", or give up */
			const char *q = p + 2;
			if (q < end && *q == '^')
				q++;
			while (q < end && is_alnum(*q))
				q++;
			if (p[1] != ':' || q + 1 >= end || q[0] != ':' || q[1] != ']')
				return NULL;
			p = q + 2;
		} else if (*p == ']') {
			return p + 1;
		} else {
			p++;
		}
	}
	return NULL;
}

/* skip_group - past the (...) at p, nested groups and classes included */
static const char *
skip_group(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		if (*p == '\\') {
			if (p + 1 < end && p[1] == 'Q')
				return NULL;
			p += 2;
			continue;
		}
		if (*p == '[') {
			if ((p = skip_class(p, end)) == NULL)
				return NULL;
			continue;
		}
		if (*p == '(') {
			/* a comment may hold unbalanced parentheses */
			if (end - p >= 3 && p[1] == '?' && p[2] == '#')
				return NULL;
			depth++;
		} else if (*p == ')' && --depth == 0) {
			return p + 1;
		}
		p++;
	}
	return NULL;
}

/* skip_escape - past the \<letter or digit> at p, with its argument */
static const char *
skip_escape(const char *p, const char *end)
{
	char e = p[1];

	p += 2;
	switch (e) {
	case 'Q':
	case 'E':
		/* quoting: not worth reading; and a stray \E is invisible, so a
		 * quantifier after it would apply to the character before it */
		return NULL;
	case 'x': case 'o': case 'p': case 'P': case 'N': case 'g': case 'k':
		if (p < end && (*p == '{' || *p == '<' || *p == '\''))
			return skip_to(p + 1, end, *p == '{' ? '}' : *p == '<' ? '>' : '\'');
		if (e == 'x') {
			for (int i = 0; i < 2 && p < end && (is_digit(*p) ||
			    (lower(*p) >= 'a' && lower(*p) <= 'f')); i++)
				p++;
		} else if (e == 'p' || e == 'P') {
			p += p < end;
		} else if (e == 'g') {
			p += p < end && (*p == '+' || *p == '-');
			while (p < end && is_digit(*p))
				p++;
		}
		return p;
	case 'c':
		return p < end ? p + 1 : NULL;
	default:
		while (is_digit(e) && p < end && is_digit(*p))
			p++;	/* a back reference or an octal escape */
		return p;
	}
}

/* unreadable - whether the pattern uses what this reader does not follow:
 * "(?x)", "(?ix:" and the like, where whitespace and # stop being literal,
 * or (*ACCEPT) */
static bool
unreadable(const char *start, const char *end)
{
	const char *p;

	for (p = start; p + 2 < end; p++) {
		if (p[0] != '(' || p[1] != '?')
			continue;
		bool x = false;
		const char *q = p + 2;
		for (; q < end && (is_alnum(*q) || *q == '-' || *q == '^'); q++)
			x = x || *q == 'x';
		if (x && q < end && (*q == ')' || *q == ':'))
			return true;
	}
	/* (*ACCEPT) ends a match early: what follows it is not required */
	for (p = start; p + 2 < end; p++) {
		if (p[0] == '(' && p[1] == '*' && p[2] == 'A')
			return true;
	}
	return false;
}

/*
 * A set of literals of which every match contains at least one: one
 * literal for a plain sequence, one per alternative for "a|b".  n == 0:
 * nothing is known.
 */
#define SET_MAX 32
#define LIT_MAX 32
#define DEPTH_MAX 12

struct lset {
	size_t n;
	char s[SET_MAX][LIT_MAX];
};

/* minlen - the shortest member: a set is as selective as its weakest */
static size_t
minlen(const struct lset *set)
{
	size_t m = SIZE_MAX;

	for (size_t i = 0; i < set->n; i++)
		if (strlen(set->s[i]) < m)
			m = strlen(set->s[i]);
	return m;
}

/* consider - keep cand in best if it selects better */
static void
consider(struct lset *best, const struct lset *cand)
{
	size_t cm, bm;

	if (cand->n == 0)
		return;
	cm = minlen(cand);
	bm = best->n > 0 ? minlen(best) : 0;
	if (best->n == 0 || cm > bm || (cm == bm && cand->n < best->n))
		*best = *cand;
}

/* run_end - a finished run of literal characters is a candidate */
static void
run_end(struct lset *best, char *run, size_t *n)
{
	struct lset one = { .n = 1 };

	if (*n >= PREFILTER_MIN_LITERAL) {
		/* a longer run is cut short: its prefix is still required */
		size_t len = *n < LIT_MAX - 1 ? *n : LIT_MAX - 1;
		memcpy(one.s[0], run, len);
		one.s[0][len] = '\0';
		consider(best, &one);
	}
	*n = 0;
}

/* group_content - where the alternatives of the group (...) at p begin;
 * NULL for lookarounds, conditions, verbs, flag settings and the like */
static const char *
group_content(const char *p, const char *end)
{
	const char *q;

	if (p + 2 >= end || (p[1] != '?' && p[1] != '*'))
		return p + 1;	/* a capturing group */
	if (p[1] == '*')
		return NULL;
	switch (p[2]) {
	case ':': case '>': case '|':
		return p + 3;
	case '<':
		return p[3] == '=' || p[3] == '!' ? NULL : skip_to(p + 3, end, '>');
	case 'P':
		return p[3] == '<' ? skip_to(p + 3, end, '>') : NULL;
	case '\'':
		return skip_to(p + 3, end, '\'');
	default:
		/* (?i:...), (?-s:...), (?^:...): flags for the group only */
		for (q = p + 2; q < end && (is_alnum(*q) || *q == '-' || *q == '^'); q++)
			;
		return q < end && *q == ':' ? q + 1 : NULL;
	}
}

static const char *parse_seq(const char *p, const char *end, int depth, struct lset *best);

/* parse_alt - p[0..end) is a|b|...: the union of what each requires, or
 * nothing if any requires nothing; false if not understood */
static bool
parse_alt(const char *p, const char *end, int depth, struct lset *res)
{
	struct lset seq;
	bool none = false;

	res->n = 0;
	if (depth > DEPTH_MAX)
		return false;
	for (;;) {
		const char *q;
		seq.n = 0;
		if ((q = parse_seq(p, end, depth, &seq)) == NULL)
			return false;
		none = none || seq.n == 0 || res->n + seq.n > SET_MAX;
		for (size_t i = 0; !none && i < seq.n; i++) {
			size_t j = 0;
			while (j < res->n && strcmp(res->s[j], seq.s[i]) != 0)
				j++;
			if (j == res->n)
				memcpy(res->s[res->n++], seq.s[i], LIT_MAX);
		}
		if (q >= end)
			break;
		p = q + 1;
	}
	if (none)
		res->n = 0;
	return true;
}

/* parse_seq - the best set a sequence up to its "|" or end requires;
 * returns where it stopped, or NULL if not understood */
static const char *
parse_seq(const char *p, const char *end, int depth, struct lset *best)
{
	char run[LIT_MAX];
	size_t n = 0, q;
	unsigned long min;

	while (p < end) {
		char c = *p;
		if (c == '|')
			break;
		if (c == '\\' && p + 1 < end && (unsigned char)p[1] >= 0x20 &&
		    (unsigned char)p[1] < 0x7f && !is_alnum(p[1])) {
			c = p[1];	/* an escaped punctuation character is itself */
			p += 2;
		} else if (c == '\\' || c == '(' || c == '[' || strchr("^$.)]{}?*+", c) != NULL ||
		    (unsigned char)c < 0x20 || (unsigned char)c >= 0x7f) {
			/* not a literal character: the run ends here */
			const char *content = NULL, *close = NULL;
			run_end(best, run, &n);
			if (c == '\\') {
				p = p + 1 < end ? skip_escape(p, end) : NULL;
			} else if (c == '(') {
				const char *g = p;
				if ((p = skip_group(p, end)) != NULL) {
					close = p - 1;
					content = group_content(g, close);
				}
			} else if (c == '[') {
				p = skip_class(p, end);
			} else {
				p++;
			}
			if (p == NULL)
				return NULL;
			min = 1;
			p += quantifier(p, end, &min);
			/* a group that must occur: what its alternatives require */
			if (content != NULL && min > 0) {
				struct lset sub;
				if (!parse_alt(content, close, depth + 1, &sub))
					return NULL;
				consider(best, &sub);
			}
			continue;
		} else {
			p++;
		}
		if ((q = quantifier(p, end, &min)) == 0) {
			if (n < LIT_MAX)
				run[n++] = lower(c);
			continue;
		}
		/* c repeated: kept if it must occur, but what follows need not
		 * come right after this c */
		if (min > 0 && n < LIT_MAX)
			run[n++] = lower(c);
		run_end(best, run, &n);
		p += q;
	}
	run_end(best, run, &n);
	return p;
}

/* join - the set into out, "\n" between members */
static size_t
join(const struct lset *set, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < set->n; i++) {
		size_t len = strlen(set->s[i]);
		if (o + len + 2 > outlen)
			return 0;
		if (i > 0)
			out[o++] = '\n';
		memcpy(out + o, set->s[i], len);
		o += len;
	}
	out[o] = '\0';
	return o;
}

size_t
prefilter_literal(const char *pat, size_t len, uint32_t options, char *out, size_t outlen)
{
	const char *end = pat + len;
	struct lset set;

	if (outlen == 0)
		return 0;
	*out = '\0';
	if ((options & PCRE2_EXTENDED) || unreadable(pat, end) ||
	    !parse_alt(pat, end, 0, &set))
		return 0;
	return join(&set, out, outlen);
}

/* ---- the automaton ---- */

struct node {
	uint32_t child, sibling;	/* trie: first child, next sibling */
	uint32_t out;			/* first output, 0: none */
	char c;
};

struct output {
	size_t id;
	uint32_t next;			/* 0: the last */
};

struct prefilter {
	struct node *nodes;
	size_t nnodes, capnodes;
	struct output *outs;		/* outs[0] is unused */
	size_t nouts, capouts;
	unsigned char cls[256];		/* byte -> class, ASCII case folded */
	size_t ncls;
	uint32_t *delta;		/* state * ncls + class -> state */
	uint32_t *outhead;		/* state -> first output (own, then its fail's) */
	bool built;
};

static bool
grow(void **v, size_t *cap, size_t n, size_t size)
{
	size_t ncap = *cap == 0 ? 64 : *cap * 2;
	void *nv;

	if (n < *cap)
		return true;
	if (ncap > UINT32_MAX || (nv = realloc(*v, ncap * size)) == NULL)
		return false;
	*v = nv;
	*cap = ncap;
	return true;
}

struct prefilter *
prefilter_new(void)
{
	struct prefilter *pf = calloc(1, sizeof(*pf));

	if (pf == NULL)
		return NULL;
	if (!grow((void **)&pf->nodes, &pf->capnodes, 0, sizeof(*pf->nodes)) ||
	    !grow((void **)&pf->outs, &pf->capouts, 0, sizeof(*pf->outs))) {
		prefilter_free(&pf);
		return NULL;
	}
	pf->nodes[0] = (struct node){ 0 };
	pf->nnodes = 1;
	pf->nouts = 1;
	return pf;
}

/* add_one - one literal, up to its end or a newline; where it stopped */
static const char *
add_one(struct prefilter *pf, const char *lit, size_t id)
{
	uint32_t s = 0;

	for (; *lit != '\0' && *lit != '\n'; lit++) {
		uint32_t v = pf->nodes[s].child;
		while (v != 0 && pf->nodes[v].c != *lit)
			v = pf->nodes[v].sibling;
		if (v == 0) {
			if (!grow((void **)&pf->nodes, &pf->capnodes, pf->nnodes, sizeof(*pf->nodes)))
				return NULL;
			v = (uint32_t)pf->nnodes++;
			pf->nodes[v] = (struct node){ 0, pf->nodes[s].child, 0, *lit };
			pf->nodes[s].child = v;
		}
		s = v;
	}
	if (!grow((void **)&pf->outs, &pf->capouts, pf->nouts, sizeof(*pf->outs)))
		return NULL;
	pf->outs[pf->nouts] = (struct output){ id, pf->nodes[s].out };
	pf->nodes[s].out = (uint32_t)pf->nouts++;
	return lit;
}

bool
prefilter_add(struct prefilter *pf, const char *lits, size_t id)
{
	if (pf->built)
		return false;
	for (;;) {
		if ((lits = add_one(pf, lits, id)) == NULL)
			return false;
		if (*lits++ == '\0')
			return true;
	}
}

bool
prefilter_build(struct prefilter *pf)
{
	size_t n = pf->nnodes, head = 0, tail = 0;
	uint32_t *queue = NULL, *fail = NULL;
	unsigned char map[256] = { 0 };
	bool ok = false;

	/* Only the characters of some literal need a class of their own:
	 * that keeps a row short (tens of entries, not 256). */
	pf->ncls = 1;
	for (size_t i = 1; i < n; i++)
		if (map[(unsigned char)pf->nodes[i].c] == 0)
			map[(unsigned char)pf->nodes[i].c] = (unsigned char)pf->ncls++;
	for (int b = 0; b < 256; b++)
		pf->cls[b] = map[(unsigned char)lower((char)b)];
	queue = malloc(n * sizeof(*queue));
	fail = calloc(n, sizeof(*fail));
	pf->delta = malloc(n * pf->ncls * sizeof(*pf->delta));
	pf->outhead = calloc(n, sizeof(*pf->outhead));
	if (queue == NULL || fail == NULL || pf->delta == NULL || pf->outhead == NULL)
		goto out;
	/* Breadth first, so that a node's fail state is complete before it. */
	queue[tail++] = 0;
	while (head < tail) {
		uint32_t u = queue[head++];
		uint32_t *row = pf->delta + (size_t)u * pf->ncls;
		if (u == 0)
			memset(row, 0, pf->ncls * sizeof(*row));
		else
			memcpy(row, pf->delta + (size_t)fail[u] * pf->ncls, pf->ncls * sizeof(*row));
		for (uint32_t v = pf->nodes[u].child; v != 0; v = pf->nodes[v].sibling) {
			unsigned char c = map[(unsigned char)pf->nodes[v].c];
			fail[v] = u == 0 ? 0 : pf->delta[(size_t)fail[u] * pf->ncls + c];
			row[c] = v;
			queue[tail++] = v;
		}
		/* Own outputs, then (shared) those of the longest proper suffix. */
		uint32_t o = pf->nodes[u].out;
		if (o == 0) {
			pf->outhead[u] = u == 0 ? 0 : pf->outhead[fail[u]];
		} else {
			pf->outhead[u] = o;
			while (pf->outs[o].next != 0)
				o = pf->outs[o].next;
			pf->outs[o].next = u == 0 ? 0 : pf->outhead[fail[u]];
		}
	}
	pf->built = true;
	ok = true;
out:
	free(queue);
	free(fail);
	return ok;
}

bool
prefilter_scan(const struct prefilter *pf, const char *s, size_t len, unsigned char *marks)
{
	const unsigned char *p, *end;
	const uint32_t *delta = pf->delta, *outhead = pf->outhead;
	const struct output *outs = pf->outs;
	size_t ncls = pf->ncls;
	uint32_t st = 0;

	if (!pf->built || s == NULL)
		return s == NULL && pf->built;
	p = (const unsigned char *)s;
	end = p + len;
	if (memmem(s, len, "\xe2\x84\xaa", 3) != NULL || memmem(s, len, "\xc5\xbf", 2) != NULL)
		return false;
	for (; p < end; p++) {
		st = delta[(size_t)st * ncls + pf->cls[*p]];
		for (uint32_t o = outhead[st]; o != 0; o = outs[o].next)
			marks[outs[o].id] = 1;
	}
	return true;
}

void
prefilter_free(struct prefilter **pfp)
{
	struct prefilter *pf = *pfp;

	*pfp = NULL;
	if (pf == NULL)
		return;
	free(pf->nodes);
	free(pf->outs);
	free(pf->delta);
	free(pf->outhead);
	free(pf);
}
