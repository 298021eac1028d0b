/*
 * rule_eval.c - what rules match and the matching: compiles a rule's
 * /regex/flags (noting its required literals, prefilter.h) and parses a
 * header rule's field and modifiers (at load), then runs a loaded set over
 * one message view (per message), a text rule's regex only if the
 * prefilter found one of its literals in that text.
 *
 * Evaluation is thread-safe: the set is read-only, and the PCRE2 match
 * context, JIT stack and match data and the Hyperscan scan state belong
 * to the calling thread (created on first use, freed at thread exit).
 * Every match is bounded by a match limit; a rule that reaches it counts
 * as not matched and is reported.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "message.h"
#include "hsscan.h"
#include "prefilter.h"
#include "ruleset_private.h"

/* ---- at load: regexes ---- */

/* compile - in UTF mode (mail text is UTF-8 after decoding; invalid
 * sequences are tolerated), or as bytes if only that works: a Latin-1 rule
 * file, byte escapes meant as bytes */
static pcre2_code *
compile(const char *pat, size_t len, uint32_t options, bool *utf_r, char *err, size_t errlen)
{
	int code, code2;
	PCRE2_SIZE off, off2;
	PCRE2_UCHAR msg[256];
	pcre2_code *re;

	re = pcre2_compile((PCRE2_SPTR)pat, len, options | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
	    &code, &off, NULL);
	*utf_r = re != NULL;
	if (re == NULL) {
		re = pcre2_compile((PCRE2_SPTR)pat, len, options, &code2, &off2, NULL);
		/* An invalid UTF-8 byte says nothing; the byte-mode error does. */
		if (re == NULL && code >= PCRE2_ERROR_UTF8_ERR21 && code <= PCRE2_ERROR_UTF8_ERR1) {
			code = code2;
			off = off2;
		}
	}
	if (re == NULL) {
		if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
			snprintf((char *)msg, sizeof(msg), "error %d", code);
		snprintf(err, errlen, "regex error at offset %zu: %s", (size_t)off, (char *)msg);
		return NULL;
	}
	/* Without the JIT (no memory, an unsupported CPU) the interpreter runs it. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* rule_regex_compile - the delimiters SpamAssassin's compile_regexp() takes:
 * /re/, m or qr with {} () <> [] or any other non-word character */
pcre2_code *
rule_regex_compile(char *text, uint32_t options, char **literal_r,
    struct regex_source **source_r, char *err, size_t errlen)
{
	char open = '/', close = '/';
	char *pat = text + 1, *end = text + strlen(text);
	size_t len;
	pcre2_code *re;
	bool utf;

	if (literal_r != NULL)
		*literal_r = NULL;
	if (source_r != NULL)
		*source_r = NULL;

	if (text[0] == 'm' || (text[0] == 'q' && text[1] == 'r')) {
		pat = text + (text[0] == 'm' ? 1 : 2);
		open = *pat++;
		const char *o = open != '\0' ? strchr("{(<[", open) : NULL;
		close = o != NULL ? "})>]"[o - "{(<["] : open;
		if (open == '\\') {
			snprintf(err, errlen, "a backslash cannot delimit a regex");
			return NULL;
		}
		if (open == '\0' || open == '_' || open == ' ' || open == '\t' || is_alpha(open) ||
		    (open >= '0' && open <= '9'))
			goto nodelim;
	} else if (text[0] != '/') {
		goto nodelim;
	}
	while (end > pat && is_alpha(end[-1]))
		end--;
	if (end == pat || end[-1] != close) {
		snprintf(err, errlen, "missing closing delimiter '%c' (or text after it)", close);
		return NULL;
	}
	for (const char *f = end; *f != '\0'; f++) {
		switch (*f) {
		case 'i': options |= PCRE2_CASELESS; break;
		case 'm': options |= PCRE2_MULTILINE; break;
		case 's': options |= PCRE2_DOTALL; break;
		case 'x': options |= PCRE2_EXTENDED; break;
		case 'n': options |= PCRE2_NO_AUTO_CAPTURE; break;
		/* Perl's charset and /p modifiers change nothing moat can see. */
		case 'a': case 'u': case 'l': case 'd': case 'p': break;
		default:
			snprintf(err, errlen, "unknown regex flag '%c'", *f);
			return NULL;
		}
	}
	end[-1] = '\0';
	len = (size_t)(end - 1 - pat);
	/* Perl would end the regex at an unescaped delimiter: say so rather
	 * than guess (brackets nest, so those are left to PCRE2). */
	if (strchr("})>]", close) == NULL) {
		for (size_t i = 0; i < len; i++) {
			if (pat[i] == '\\' && i + 1 < len) {
				i++;
			} else if (pat[i] == close) {
				snprintf(err, errlen, "unescaped delimiter '%c' at offset %zu", close, i);
				return NULL;
			}
		}
	}
	if (literal_r != NULL) {
		char lit[2048];
		/* out of memory: no literal, so the rule just always runs */
		*literal_r = prefilter_literal(pat, len, options, lit, sizeof(lit)) > 0 ?
		    strdup(lit) : NULL;
	}
	if ((re = compile(pat, len, options, &utf, err, errlen)) == NULL) {
		if (literal_r != NULL) {
			free(*literal_r);
			*literal_r = NULL;
		}
		return NULL;
	}
	if (source_r != NULL && (*source_r = malloc(sizeof(**source_r))) != NULL) {
		**source_r = (struct regex_source){ strndup(pat, len), options, utf };
		if ((*source_r)->pattern == NULL) {
			free(*source_r);
			*source_r = NULL;
		}
	}
	return re;
nodelim:
	snprintf(err, errlen, "missing regex delimiters (/.../flags or m{...}flags)");
	return NULL;
}

/* ---- at load: header rules ---- */

/* The pseudo-headers: SpamAssassin's, and moat's envelope ones. */
static const struct {
	const char *name;
	enum header_source source;
	bool exact;		/* SpamAssassin matches ALL and MESSAGEID by case */
} pseudo_headers[] = {
	{ "ALL", HSRC_ALL, true },
	{ "MESSAGEID", HSRC_MESSAGEID, true },
	{ "ToCc", HSRC_TOCC, false },
	{ "EnvelopeFrom", HSRC_ENVELOPE_FROM, false },
	{ "EnvelopeTo", HSRC_ENVELOPE_TO, false },
	{ "Helo", HSRC_HELO, false },
	{ "ClientIP", HSRC_CLIENT_IP, false },
	{ "ClientName", HSRC_CLIENT_NAME, false },
};

static const struct {
	const char *name;
	unsigned mod;		/* 0: SpamAssassin has it, moat does not */
} modifiers[] = {
	{ "raw", HMOD_RAW }, { "addr", HMOD_ADDR }, { "name", HMOD_NAME },
	{ "first", HMOD_FIRST }, { "last", HMOD_LAST },
	{ "host", 0 }, { "domain", 0 }, { "ip", 0 }, { "revip", 0 },
};

static bool
field_char(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* header_modifiers - ":raw", ":addr:raw"...; SpamAssassin allows two */
static enum parse_status
header_modifiers(char **pp, unsigned *mods_r, char *err, size_t errlen)
{
	char *p = *pp;

	for (int n = 0; *p == ':'; n++) {
		const char *m = ++p;
		size_t i, len;
		while (is_alpha(*p))
			p++;
		len = (size_t)(p - m);
		if (len == 0 && *p != ':')
			break;	/* "Field:" is "Field" */
		if (n == 2) {
			snprintf(err, errlen, "more than two header modifiers");
			return PARSE_ERROR;
		}
		for (i = 0; i < sizeof(modifiers) / sizeof(modifiers[0]); i++)
			if (strlen(modifiers[i].name) == len && strncmp(m, modifiers[i].name, len) == 0)
				break;
		if (i == sizeof(modifiers) / sizeof(modifiers[0])) {
			snprintf(err, errlen, "unknown header modifier ':%.*s'", (int)len, m);
			return PARSE_ERROR;
		}
		if (modifiers[i].mod == 0) {
			snprintf(err, errlen, "header modifier :%s", modifiers[i].name);
			return PARSE_UNSUPPORTED;
		}
		*mods_r |= modifiers[i].mod;
	}
	*pp = p;
	return PARSE_OK;
}

/* if_unset - SpamAssassin's "\s+\[if-unset:\s+(.+)\]$", cut off the pattern */
static char *
if_unset(char *p)
{
	size_t len = strlen(p);
	char *u = strstr(p, "[if-unset:"), *v;

	if (len == 0 || p[len - 1] != ']' || u == NULL || u == p || (u[-1] != ' ' && u[-1] != '\t'))
		return NULL;
	v = u + 10;
	v += strspn(v, " \t");
	p[len - 1] = '\0';
	while (u > p && (u[-1] == ' ' || u[-1] == '\t'))
		u--;
	*u = '\0';
	return v;
}

enum parse_status
rule_header_parse(char *text, struct header_spec *hs, char *err, size_t errlen)
{
	char *p = text;
	enum parse_status st;

	memset(hs, 0, sizeof(*hs));
	*err = '\0';
	if (strncmp(text, "eval:", 5) == 0 || strncmp(text, "rbleval:", 8) == 0) {
		snprintf(err, errlen, "eval: tests");
		return PARSE_UNSUPPORTED;
	}
	hs->exists = strncmp(text, "exists:", 7) == 0;
	p += hs->exists ? 7 : 0;
	hs->field = p;
	while (field_char(*p))
		p++;
	if (p == hs->field && hs->exists) {
		snprintf(err, errlen, "missing field name after exists:");
		return PARSE_ERROR;
	}
	if (p == hs->field)
		goto syntax;
	if (hs->exists) {
		if (*p == ':')
			*p++ = '\0';
		if (*p != '\0') {
			snprintf(err, errlen, "invalid field name after exists:");
			return PARSE_ERROR;
		}
	} else {
		char *field_end = p;
		if ((st = header_modifiers(&p, &hs->mods, err, errlen)) != PARSE_OK) {
			if (st == PARSE_ERROR && *err == '\0')
				goto syntax;
			return st;
		}
		p += strspn(p, " \t");
		if ((p[0] != '=' && p[0] != '!') || p[1] != '~')
			goto syntax;
		hs->negate = p[0] == '!';
		*field_end = '\0';
		p += 2;
		p += strspn(p, " \t");
		if (*p == '\0') {
			snprintf(err, errlen, "missing regex");
			return PARSE_ERROR;
		}
		hs->if_unset = if_unset(p);
		hs->pattern = p;
	}
	if (strncmp(hs->field, "ALL-", 4) == 0 || strncasecmp(hs->field, "X-Spam-Relays-", 14) == 0) {
		snprintf(err, errlen, "%s (SpamAssassin's relay analysis)", hs->field);
		return PARSE_UNSUPPORTED;
	}
	for (size_t i = 0; i < sizeof(pseudo_headers) / sizeof(pseudo_headers[0]); i++)
		if (pseudo_headers[i].exact ? strcmp(hs->field, pseudo_headers[i].name) == 0 :
		    strcasecmp(hs->field, pseudo_headers[i].name) == 0)
			hs->source = pseudo_headers[i].source;
	return PARSE_OK;
syntax:
	snprintf(err, errlen, "expected \"Field =~ /regex/\", \"Field !~ /regex/\" or "
	    "\"exists:Field\"");
	return PARSE_ERROR;
}

/* ---- per thread: matching state ---- */

struct match_tls {
	pcre2_match_context *mctx;
	pcre2_jit_stack *stack;
	pcre2_match_data *md;
	struct hsscan_state *hs;	/* NULL: no Hyperscan scans in this thread */
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static bool tls_ok;

static void
tls_free(void *p)
{
	struct match_tls *t = p;

	if (t == NULL)
		return;
	pcre2_match_data_free(t->md);
	pcre2_jit_stack_free(t->stack);
	pcre2_match_context_free(t->mctx);
	hsscan_state_free(&t->hs);
	free(t);
}

static void
tls_init(void)
{
	tls_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

/* tls_get - this thread's state, made on first use */
static struct match_tls *
tls_get(void)
{
	struct match_tls *t;

	pthread_once(&tls_once, tls_init);
	if (!tls_ok)
		return NULL;
	if ((t = pthread_getspecific(tls_key)) != NULL)
		return t;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->mctx = pcre2_match_context_create(NULL);
	/* One pair is enough: rules ask whether, never where. */
	t->md = pcre2_match_data_create(1, NULL);
	/* NULL where the JIT is unavailable: then the interpreter runs. */
	t->stack = pcre2_jit_stack_create(RULESET_JIT_STACK_MIN, RULESET_JIT_STACK_MAX, NULL);
	t->hs = hsscan_state_new();
	if (t->mctx == NULL || t->md == NULL || pthread_setspecific(tls_key, t) != 0) {
		tls_free(t);
		return NULL;
	}
	pcre2_set_match_limit(t->mctx, RULESET_MATCH_LIMIT);
	pcre2_set_depth_limit(t->mctx, RULESET_DEPTH_LIMIT);
	if (t->stack != NULL)
		pcre2_jit_stack_assign(t->mctx, NULL, t->stack);
	return t;
}

void
rule_eval_thread_cleanup(void)
{
	pthread_once(&tls_once, tls_init);
	if (!tls_ok)
		return;
	tls_free(pthread_getspecific(tls_key));
	pthread_setspecific(tls_key, NULL);
}

/* ---- per message: header values ---- */

struct strbuf {
	char *s;
	size_t len, cap;
};

/* One header_key's value in this evaluation. */
struct hval {
	bool done, present;
	struct strbuf b;
};

struct eval {
	const struct ruleset *rs;
	/* the Hyperscan prefilter as it stood when this evaluation began
	 * (NULL: none yet, or the tests asked for the literal one alone) */
	const struct ruleset_accel *accel;
	const struct message_view *mv;
	const struct rule_envelope *env;
	struct match_tls *tls;
	struct rule_result *res;
	struct hval *vals;
	unsigned char *hits;
	/* seen[r]: a prefilter says rule r may match its text; unfiltered[t]:
	 * the literal automaton did not scan every text of type t (prefilter.h),
	 * hs_failed[t]: nor did Hyperscan (hsscan.h) */
	unsigned char *seen;
	bool unfiltered[RULE_TYPE_COUNT];
	bool hs_failed[RULE_TYPE_COUNT];
	bool oom;
};

static void
sb_add(struct eval *ev, struct strbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *ns = realloc(b->s, cap);
		if (ns == NULL) {
			ev->oom = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sb_reset(struct strbuf *b)
{
	b->len = 0;
	if (b->s != NULL)
		b->s[0] = '\0';
}

/* sb_add_char - whitespace collapsed to one space, none at the start */
static void
sb_add_char(struct eval *ev, struct strbuf *b, char c)
{
	if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
		if (b->len == 0 || b->s[b->len - 1] == ' ')
			return;
		c = ' ';
	}
	sb_add(ev, b, &c, 1);
}

/* skip_delimited - past a comment (nested) or quoted string at p, its text
 * (escapes undone) added to out if not NULL */
static const char *
skip_delimited(struct eval *ev, const char *p, struct strbuf *out)
{
	char close = *p == '(' ? ')' : '"';
	int depth = 1;

	for (p++; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == close && --depth == 0)
			return p + 1;
		else if (close == ')' && *p == '(')
			depth++;
		if (out != NULL)
			sb_add_char(ev, out, *p);
	}
	return p;
}

/*
 * first_mailbox - the first address of an address list and its display
 * name (or, for "a@b (Name)", the comment), as SpamAssassin's :addr and
 * :name see them; false if there is none.
 */
static bool
first_mailbox(struct eval *ev, const char *p, struct strbuf *addr, struct strbuf *name)
{
	struct strbuf comment = { 0 };
	bool found = false;

	sb_reset(addr);
	sb_reset(name);
	while (!found) {
		if (*p == '\0' || *p == ',' || *p == ';') {
			/* an addr-spec without <>: its word with an @, or all of it */
			const char *w = name->s != NULL ? name->s : "";
			const char *at = strchr(w, '@');
			if (at != NULL) {
				while (at > w && at[-1] != ' ')
					at--;
				w = at;
			}
			size_t n = strcspn(w, " ");
			if (n > 0) {
				sb_add(ev, addr, w, n);
				sb_reset(name);
				if (comment.len > 0)
					sb_add(ev, name, comment.s, comment.len);
				found = true;
			}
			if (found || *p == '\0')
				break;
			sb_reset(name);
			sb_reset(&comment);
			p++;
		} else if (*p == ':') {
			sb_reset(name);	/* a group's name */
			p++;
		} else if (*p == '(') {
			p = skip_delimited(ev, p, comment.len == 0 ? &comment : NULL);
		} else if (*p == '"') {
			p = skip_delimited(ev, p, name);
		} else if (*p == '<') {
			const char *end = strchr(p, '>'), *route;
			p++;
			if (end == NULL)
				end = p + strlen(p);
			/* an obsolete route, "<@a,@b:user@c>", is not the address */
			if (*p == '@' && (route = memchr(p, ':', (size_t)(end - p))) != NULL)
				p = route + 1;
			for (; p < end; p++)
				if (*p != ' ' && *p != '\t')
					sb_add(ev, addr, p, 1);
			p = *end ? end + 1 : end;
			if (addr->len > 0) {
				found = true;
			} else {
				sb_reset(name);
				sb_reset(&comment);
			}
		} else {
			sb_add_char(ev, name, *p++);
		}
	}
	if (found && name->len > 0 && name->s[name->len - 1] == ' ')
		name->s[--name->len] = '\0';
	free(comment.s);
	return found;
}

/* add_value - one field's value to a key's joined value, after :addr/:name */
static void
add_value(struct eval *ev, struct hval *hv, const char *v, unsigned mods)
{
	struct strbuf addr = { 0 }, name = { 0 };
	const char *s = v;
	size_t n = strlen(v);

	if (mods & (HMOD_ADDR | HMOD_NAME)) {
		if (!first_mailbox(ev, v, &addr, &name) || ((mods & HMOD_NAME) && name.len == 0))
			goto out;
		s = (mods & HMOD_ADDR) ? addr.s : name.s;
		n = (mods & HMOD_ADDR) ? addr.len : name.len;
		/* SpamAssassin drops the quotes of 'Name' unless :raw */
		if ((mods & (HMOD_NAME | HMOD_RAW)) == HMOD_NAME && n >= 2 && s[0] == '\'' &&
		    s[n - 1] == '\'') {
			s++;
			n -= 2;
		}
	}
	if (hv->present)
		sb_add(ev, &hv->b, "\n", 1);
	sb_add(ev, &hv->b, s, n);
	hv->present = true;
out:
	free(addr.s);
	free(name.s);
}

/* header_value - the value of a key, computed once per evaluation */
static struct hval *
header_value(struct eval *ev, size_t k)
{
	const struct header_key *key = &ev->rs->keys[k];
	struct hval *hv = &ev->vals[k];
	const struct rule_envelope *env = ev->env;
	size_t nh = message_view_header_count(ev->mv), lo = 0, hi, n = 0;
	const char **list;
	static const char *const msgid_fields[] = {
		"X-Message-Id", "Resent-Message-Id", "X-Original-Message-ID", "Message-Id"
	};

	if (hv->done)
		return hv;
	hv->done = true;
	if (key->source == HSRC_ALL) {
		for (size_t i = 0; i < nh; i++) {
			const struct message_header *h = message_view_header(ev->mv, i);
			const char *v = (key->mods & HMOD_RAW) || h->decoded == NULL ? h->raw : h->decoded;
			sb_add(ev, &hv->b, h->name, strlen(h->name));
			sb_add(ev, &hv->b, ": ", 2);
			sb_add(ev, &hv->b, v, strlen(v));
			sb_add(ev, &hv->b, "\n", 1);
		}
		hv->present = nh > 0;
		return hv;
	}
	/* The field's values first, so that :first and :last can pick one. */
	list = malloc((nh + (env != NULL ? env->nrcpts : 0) + 1) * sizeof(*list));
	if (list == NULL) {
		ev->oom = true;
		return hv;
	}
	switch (key->source) {
	case HSRC_ENVELOPE_FROM:
		if (env != NULL && env->mail_from != NULL)
			list[n++] = env->mail_from;
		break;
	case HSRC_ENVELOPE_TO:
		for (size_t i = 0; env != NULL && i < env->nrcpts; i++)
			list[n++] = env->rcpts[i];
		break;
	case HSRC_HELO:
		if (env != NULL && env->helo != NULL)
			list[n++] = env->helo;
		break;
	case HSRC_CLIENT_IP:
		if (env != NULL && env->client_ip != NULL)
			list[n++] = env->client_ip;
		break;
	case HSRC_CLIENT_NAME:
		if (env != NULL && env->client_name != NULL)
			list[n++] = env->client_name;
		break;
	default:
		for (size_t f = 0; f < 4; f++) {
			const char *want = key->source == HSRC_FIELD ? key->field :
			    key->source == HSRC_TOCC ? (f == 0 ? "To" : f == 1 ? "Cc" : NULL) :
			    msgid_fields[f];
			for (size_t i = 0; want != NULL && i < nh; i++) {
				const struct message_header *h = message_view_header(ev->mv, i);
				/* :addr parses the raw value (addresses are never
				 * encoded); :name the decoded one, unless :raw */
				bool raw = (key->mods & (HMOD_RAW | HMOD_ADDR)) || h->decoded == NULL;
				const char *v = raw ? h->raw : h->decoded;
				if (strcasecmp(h->name, want) != 0 ||
				    (key->source == HSRC_MESSAGEID && *v == '\0'))
					continue;
				list[n++] = v;
			}
			if (key->source == HSRC_FIELD)
				break;
		}
		break;
	}
	hi = n;
	if ((key->mods & HMOD_FIRST) && n > 0)
		hi = 1;
	else if ((key->mods & HMOD_LAST) && n > 0)
		lo = n - 1;
	for (size_t i = lo; i < hi; i++)
		add_value(ev, hv, list[i], key->mods);
	free(list);
	return hv;
}

/* ---- per message: matching ---- */

/* match_error - a rule stopped by a limit (or another PCRE2 error) counts
 * as not matched; the result says which */
static void
match_error(struct eval *ev, const struct rule *r, int rc)
{
	PCRE2_UCHAR msg[128];
	struct rule_result *res = ev->res;

	if (res->limit_errors++ > 0)
		return;
	if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	    rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT) {
		snprintf(res->first_error, sizeof(res->first_error), "%s: match limit exceeded",
		    r->name);
		return;
	}
	if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
		snprintf((char *)msg, sizeof(msg), "error %d", rc);
	snprintf(res->first_error, sizeof(res->first_error), "%s: match error: %s", r->name,
	    (char *)msg);
}

/* match - 1 matched, 0 not, or a negative PCRE2 error */
static int
match(struct eval *ev, const struct rule *r, const char *s, size_t len)
{
	int rc = pcre2_match(r->re, (PCRE2_SPTR)(s != NULL ? s : ""), s != NULL ? len : 0, 0, 0,
	    ev->tls->md, ev->tls->mctx);

	/* 0: matched, with more groups than the one-pair match data holds */
	if (rc >= 0)
		return 1;
	return rc == PCRE2_ERROR_NOMATCH ? 0 : rc;
}

/* scan_text - run type t's prefilters over one text: Hyperscan for the
 * rules it took, the literal automaton for the others (or for all, when
 * Hyperscan could not scan this text) */
static void
scan_text(struct eval *ev, size_t t, const char *s, size_t len)
{
	const struct prefilter *pf = ev->rs->prefilter[t];
	const struct hsscan *hs = ev->accel != NULL ? ev->accel->hs[t] : NULL;
	bool hs_ok = false;

	if (hs != NULL && !ev->hs_failed[t])
		hs_ok = hsscan_scan(hs, ev->tls->hs, s, len, ev->seen);
	ev->hs_failed[t] |= !hs_ok;
	if (pf == NULL) {
		/* no literals: Hyperscan alone, or every rule runs */
		ev->unfiltered[t] |= !hs_ok && hs != NULL;
		return;
	}
	if (hs_ok)
		pf = ev->accel->prefilter_rest[t];
	if (pf != NULL)
		ev->unfiltered[t] |= !prefilter_scan(pf, s, len, ev->seen);
}

/* prefilter - which text rules can match: one pass over each text (every
 * URI, for uri rules) instead of one regex per rule */
static void
prefilter(struct eval *ev)
{
	const struct ruleset *rs = ev->rs;
	const char *s;
	size_t len;

	for (size_t t = 0; t < RULE_TYPE_COUNT; t++) {
		if (rs->prefilter_mode == PREFILTER_NONE ||
		    (rs->prefilter[t] == NULL && (ev->accel == NULL || ev->accel->hs[t] == NULL))) {
			ev->unfiltered[t] = true;
			continue;
		}
		switch (t) {
		case RULE_BODY:
			s = message_view_body(ev->mv, &len);
			scan_text(ev, t, s, len);
			break;
		case RULE_RAWBODY:
			s = message_view_rawbody(ev->mv, &len);
			scan_text(ev, t, s, len);
			break;
		case RULE_FULL:
			s = message_view_full(ev->mv, &len);
			scan_text(ev, t, s, len);
			break;
		case RULE_URI:
			/* One scan over every URI, a line each (uri patterns go to
			 * Hyperscan in multi-line mode): what can match one URI
			 * can match the lines.  Seen there, a rule runs over each. */
			s = message_view_uri_lines(ev->mv, &len);
			scan_text(ev, t, s, len);
			break;
		default:
			ev->unfiltered[t] = true;
			break;
		}
	}
}

/* may_match - whether the prefilters leave rule r a chance */
static bool
may_match(const struct eval *ev, const struct rule *r)
{
	size_t i = (size_t)(r - ev->rs->rules);

	if (r->type == RULE_HEADER || r->type == RULE_META || ev->seen[i])
		return true;
	/* Hyperscan took it and scanned every text: its word is final. */
	if (ev->accel != NULL && ev->accel->in_hs[i] && !ev->hs_failed[r->type])
		return false;
	/* Else the literal, if the automaton scanned every text. */
	return r->literal == NULL || ev->unfiltered[r->type];
}

/* eval_rule - whether one non-meta rule hits */
static bool
eval_rule(struct eval *ev, const struct rule *r)
{
	const char *s = NULL;
	size_t len = 0;
	int m = 0;

	if (!may_match(ev, r))
		return false;
	switch (r->type) {
	case RULE_HEADER: {
		struct hval *hv = header_value(ev, r->key);
		if (r->exists)
			return hv->present;
		if (hv->present) {
			s = hv->b.s != NULL ? hv->b.s : "";
			len = hv->b.len;
		} else {
			s = r->if_unset != NULL ? r->if_unset : "";
			len = strlen(s);
		}
		m = match(ev, r, s, len);
		if (m < 0)
			break;
		return r->negate ? m == 0 : m == 1;
	}
	case RULE_BODY:
		s = message_view_body(ev->mv, &len);
		m = match(ev, r, s, len);
		break;
	case RULE_RAWBODY:
		s = message_view_rawbody(ev->mv, &len);
		m = match(ev, r, s, len);
		break;
	case RULE_FULL:
		s = message_view_full(ev->mv, &len);
		m = match(ev, r, s, len);
		break;
	case RULE_URI: {
		/* each URI on its own; a limit on one does not stop the others */
		int err = 0;
		for (size_t i = 0; i < message_view_uri_count(ev->mv); i++) {
			s = message_view_uri(ev->mv, i);
			if ((m = match(ev, r, s, strlen(s))) == 1)
				return true;
			if (m < 0 && err == 0)
				err = m;
		}
		m = err;
		break;
	}
	default:
		return false;
	}
	if (m < 0) {
		match_error(ev, r, m);
		return false;
	}
	return m == 1;
}

bool
ruleset_eval(const struct ruleset *rs, const struct message_view *mv,
    const struct rule_envelope *env, struct rule_result *res)
{
	struct eval ev = { .rs = rs, .mv = mv, .env = env, .res = res };
	size_t nhits = 0;

	memset(res, 0, sizeof(*res));
	if (rs == NULL || mv == NULL || (ev.tls = tls_get()) == NULL)
		return false;
	ev.vals = calloc(rs->nkeys + 1, sizeof(*ev.vals));
	ev.hits = calloc(rs->nrules + 1, 1);
	ev.seen = calloc(rs->nrules + 1, 1);
	if (ev.vals == NULL || ev.hits == NULL || ev.seen == NULL)
		goto fail;
	if (rs->prefilter_mode == PREFILTER_ALL)
		ev.accel = atomic_load_explicit(&rs->accel, memory_order_acquire);
	prefilter(&ev);
	/* rs->order: the matching rules, then the metas, each after the
	 * metas it uses */
	for (size_t i = 0; i < rs->nmatching; i++)
		ev.hits[rs->order[i]] = eval_rule(&ev, &rs->rules[rs->order[i]]);
	meta_program_run(rs->metas, ev.hits);
	for (size_t i = 0; i < rs->nrules; i++)
		nhits += ev.hits[i] && rs->rules[i].reported;
	if (ev.oom || (nhits > 0 && (res->hits = calloc(nhits, sizeof(*res->hits))) == NULL))
		goto fail;
	for (size_t i = 0; i < rs->nrules; i++) {
		const struct rule *r = &rs->rules[i];
		if (!ev.hits[i] || !r->reported)
			continue;
		res->hits[res->nhits++] = (struct rule_hit){ r->name, r->description, r->score };
		res->score += r->score;
	}
	for (size_t k = 0; k < rs->nkeys; k++)
		free(ev.vals[k].b.s);
	free(ev.vals);
	free(ev.hits);
	free(ev.seen);
	return true;
fail:
	for (size_t k = 0; ev.vals != NULL && k < rs->nkeys; k++)
		free(ev.vals[k].b.s);
	free(ev.vals);
	free(ev.hits);
	free(ev.seen);
	rule_result_free(res);
	return false;
}

void
rule_result_free(struct rule_result *r)
{
	free(r->hits);
	r->hits = NULL;
	r->nhits = 0;
}
