/*
 * ruleset.c - loads rule files into an immutable, compiled rule set.
 *
 * Reads files and their includes, strips comments the way SpamAssassin
 * does, follows if/ifplugin/else/endif blocks, parses each directive,
 * compiles every regex once (PCRE2, JIT), then links: scores, flags and
 * descriptions onto rules, meta operands onto rules, metas into dependency
 * order and one program, text rules' literals into one prefilter automaton
 * per type (accelerate.c).  Owns the set and all it holds; reports every
 * problem, as "file:line" and a message, through the caller's function.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prefilter.h"
#include "ruleset_private.h"

#define INCLUDE_DEPTH_MAX 10
/* SpamAssassin refuses longer rule names (Conf/Parser.pm add_test). */
#define RULE_NAME_MAX 100
/* The stock SpamAssassin rules are 2 MB in all; this only stops a runaway. */
#define RULE_FILE_MAX ((size_t)64 << 20)
#define MSG_MAX 1024

/* The rule directives, by enum rule_type. */
static const char *const rule_types[RULE_TYPE_COUNT] = {
	"header", "body", "rawbody", "uri", "full", "meta"
};

/* What the loader knows about a name: its live definition and the score,
 * description and flags set for it, wherever those lines are. */
struct name_entry {
	char *name;
	long def;		/* index into loader.defs, -1: none */
	long final;		/* index into the finished rules, -1: none */
	bool disabled;		/* score 0: SpamAssassin does not run it */
	bool has_score, nice;
	double score;
	char *score_where;
	char *description;
};

struct def {
	struct rule r;
	size_t name;		/* index into loader.names */
	bool dead;		/* replaced by a later definition */
};

struct file_ctx {
	const char *path;
	unsigned line;
	char where[PATH_MAX + 16];
	struct cond_stack conds;
	bool skip_rest;		/* require_version said this file is not for us */
};

struct loader {
	ruleset_report_fn *report;
	void *ctx;
	struct ruleset_stats st;
	struct def *defs;
	size_t ndefs, capdefs;
	struct name_entry *names;
	size_t nnames, capnames;
	size_t *slots;		/* open-addressing hash of names; SIZE_MAX free */
	size_t nslots;
	struct header_key *keys;
	size_t nkeys, capkeys;
	char *open[INCLUDE_DEPTH_MAX + 1];	/* real paths being read */
	size_t nopen;
	bool oom;
};

static void report(struct loader *ld, bool fatal, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* report - one problem; a fatal one makes the load fail */
static void
report(struct loader *ld, bool fatal, const char *where, const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fatal)
		ld->st.errors++;
	if (ld->report != NULL)
		ld->report(ld->ctx, fatal, where, msg);
}

/* grow - make room for one more element in a vector */
static bool
grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 64;
	void *nv = realloc(*v, ncap * size);
	if (nv == NULL)
		return false;
	*v = nv;
	*cap = ncap;
	return true;
}

static size_t
hash_name(const char *s)
{
	size_t h = 1469598103934665603u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211u;
	return h;
}

/* name_find - the entry of name (created if asked), or -1 */
static long
name_find(struct loader *ld, const char *name, bool create)
{
	if (ld->nslots == 0 || (create && ld->nnames * 2 >= ld->nslots)) {
		size_t nslots = ld->nslots ? ld->nslots * 2 : 1024;
		size_t *slots = malloc(nslots * sizeof(*slots));
		if (slots == NULL)
			return -1;
		memset(slots, 0xff, nslots * sizeof(*slots));
		for (size_t i = 0; i < ld->nnames; i++) {
			size_t h = hash_name(ld->names[i].name) & (nslots - 1);
			while (slots[h] != SIZE_MAX)
				h = (h + 1) & (nslots - 1);
			slots[h] = i;
		}
		free(ld->slots);
		ld->slots = slots;
		ld->nslots = nslots;
	}
	size_t h = hash_name(name) & (ld->nslots - 1);
	while (ld->slots[h] != SIZE_MAX) {
		if (strcmp(ld->names[ld->slots[h]].name, name) == 0)
			return (long)ld->slots[h];
		h = (h + 1) & (ld->nslots - 1);
	}
	if (!create || !grow((void **)&ld->names, &ld->capnames, ld->nnames, sizeof(*ld->names)))
		return -1;
	char *copy = strdup(name);
	if (copy == NULL)
		return -1;
	ld->names[ld->nnames] = (struct name_entry){ .name = copy, .def = -1, .final = -1 };
	ld->slots[h] = ld->nnames;
	return (long)ld->nnames++;
}

/* free_source - a regex as written; the Hyperscan build is its last reader */
void
free_source(struct regex_source **src)
{
	if (*src != NULL)
		free((*src)->pattern);
	free(*src);
	*src = NULL;
}

static void
rule_free(struct rule *r)
{
	free(r->name);
	free(r->description);
	free(r->where);
	free(r->if_unset);
	free(r->literal);
	free_source(&r->source);
	pcre2_code_free(r->re);
	meta_free(&r->meta);
}

/* save - strdup that remembers a failure; the load fails once, at the end */
static char *
save(struct loader *ld, const char *s)
{
	char *d = s != NULL ? strdup(s) : NULL;

	ld->oom |= s != NULL && d == NULL;
	return d;
}

/* valid_name - SpamAssassin's rule names: [_a-zA-Z][_a-zA-Z0-9]* */
static bool
valid_name(const char *s)
{
	static const char word[] = "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t n = strlen(s);

	return n > 0 && n <= RULE_NAME_MAX && !(s[0] >= '0' && s[0] <= '9') &&
	    strspn(s, word) == n;
}

/* take_word - cut the first word off *s; "" when there is none */
static char *
take_word(char **s)
{
	char *w = *s;
	size_t n = strcspn(w, " \t");

	*s = w + n;
	if (**s != '\0') {
		*(*s)++ = '\0';
		*s += strspn(*s, " \t");
	}
	return w;
}

/* take_name - the rule name a rule directive starts with */
static char *
take_name(struct loader *ld, struct file_ctx *fc, const char *key, char **rest)
{
	char *name = take_word(rest);

	if (*name == '\0') {
		report(ld, true, fc->where, "%s: missing rule name", key);
		return NULL;
	}
	if (!valid_name(name)) {
		report(ld, true, fc->where, "%s %s: invalid rule name (letters, digits and _, "
		    "not starting with a digit, at most %d)", key, name, RULE_NAME_MAX);
		return NULL;
	}
	return name;
}

/* forget_def - the name's current definition no longer counts */
static void
forget_def(struct loader *ld, struct file_ctx *fc, struct name_entry *ne, const char *key)
{
	if (ne->def < 0)
		return;
	report(ld, false, fc->where, "%s %s: redefines the rule from %s (the later definition wins)",
	    key, ne->name, ld->defs[ne->def].r.where);
	ld->defs[ne->def].dead = true;
	rule_free(&ld->defs[ne->def].r);
	ne->def = -1;
}

/* skip_def - an unsupported definition: an earlier one is dropped too */
static void
skip_def(struct loader *ld, struct file_ctx *fc, const char *key, const char *name)
{
	long n = name_find(ld, name, true);

	if (n < 0) {
		ld->oom = true;
		return;
	}
	forget_def(ld, fc, &ld->names[n], key);
}

/* add_def - register a parsed rule, or free it */
static void
add_def(struct loader *ld, struct file_ctx *fc, const char *key, struct rule *r)
{
	long n = r->name != NULL ? name_find(ld, r->name, true) : -1;

	r->where = save(ld, fc->where);
	if (n < 0 || r->where == NULL || ld->oom ||
	    !grow((void **)&ld->defs, &ld->capdefs, ld->ndefs, sizeof(*ld->defs))) {
		rule_free(r);
		ld->oom = true;
		return;
	}
	forget_def(ld, fc, &ld->names[n], key);
	ld->names[n].def = (long)ld->ndefs;
	ld->defs[ld->ndefs++] = (struct def){ *r, (size_t)n, false };
}

/* header_key - the index of one distinct value to fetch, added once */
static long
header_key(struct loader *ld, enum header_source src, const char *field, unsigned mods)
{
	for (size_t i = 0; i < ld->nkeys; i++)
		if (ld->keys[i].source == src && ld->keys[i].mods == mods &&
		    (src != HSRC_FIELD || strcasecmp(ld->keys[i].field, field) == 0))
			return (long)i;
	if (!grow((void **)&ld->keys, &ld->capkeys, ld->nkeys, sizeof(*ld->keys)))
		return -1;
	ld->keys[ld->nkeys].source = src;
	ld->keys[ld->nkeys].mods = mods;
	ld->keys[ld->nkeys].field = src == HSRC_FIELD ? strdup(field) : NULL;
	if (src == HSRC_FIELD && ld->keys[ld->nkeys].field == NULL)
		return -1;
	return (long)ld->nkeys++;
}

/* parse_rule - header, body, rawbody, uri, full and meta: NAME, then the
 * test (a header rule's form is parsed by rule_eval.c, which reads it) */
static void
parse_rule(struct loader *ld, struct file_ctx *fc, const char *key, enum rule_type type,
    char *rest)
{
	struct rule r = { .type = type };
	struct header_spec hs = { 0 };
	enum parse_status st = PARSE_OK;
	char what[MSG_MAX], err[MSG_MAX];
	char *name = take_name(ld, fc, key, &rest);
	/* SpamAssassin matches body and rawbody line by line; moat matches the
	 * whole text, so ^ and $ must anchor at every line. */
	uint32_t options = type == RULE_BODY || type == RULE_RAWBODY ? PCRE2_MULTILINE : 0;

	if (name == NULL)
		return;
	snprintf(what, sizeof(what), "%s %s", key, name);
	hs.pattern = rest;
	if (type == RULE_HEADER) {
		st = rule_header_parse(rest, &hs, err, sizeof(err));
	} else if (*rest == '\0') {
		snprintf(err, sizeof(err), "missing %s", type == RULE_META ? "expression" : "regex");
		st = PARSE_ERROR;
	} else if (type != RULE_META && strncmp(rest, "eval:", 5) == 0) {
		snprintf(err, sizeof(err), "eval: tests");
		st = PARSE_UNSUPPORTED;
	}
	if (st == PARSE_UNSUPPORTED) {
		ld->st.unsupported++;
		report(ld, false, fc->where, "%s: %s unsupported, skipped", what, err);
		skip_def(ld, fc, key, name);
		return;
	}
	if (st == PARSE_OK && type == RULE_META)
		st = (r.meta = meta_parse(rest, 0, err, sizeof(err))) != NULL ? PARSE_OK : PARSE_ERROR;
	else if (st == PARSE_OK && !hs.exists)
		st = (r.re = rule_regex_compile(hs.pattern, options,
		    type == RULE_HEADER ? NULL : &r.literal, type == RULE_HEADER ? NULL : &r.source,
		    err, sizeof(err))) != NULL ?
		    PARSE_OK : PARSE_ERROR;
	if (st != PARSE_OK) {
		report(ld, true, fc->where, "%s: %s", what, err);
		return;
	}
	if (type == RULE_HEADER) {
		long k = header_key(ld, hs.source, hs.field, hs.mods);
		r.key = k >= 0 ? (size_t)k : 0;
		ld->oom |= k < 0;
		r.exists = hs.exists;
		r.negate = hs.negate;
		r.if_unset = save(ld, hs.if_unset);
	}
	r.name = save(ld, name);
	add_def(ld, fc, key, &r);
}

/* score_value - SpamAssassin's -?\d+(\.\d+)?, in parentheses if relative */
static bool
score_value(char *s, double *v_r, bool *relative_r)
{
	size_t len = strlen(s), i = 0;

	*relative_r = len > 2 && s[0] == '(' && s[len - 1] == ')';
	if (*relative_r) {
		s[len - 1] = '\0';
		s++;
	}
	i += s[i] == '-';
	if (s[i] < '0' || s[i] > '9')
		return false;
	while (s[i] >= '0' && s[i] <= '9')
		i++;
	if (s[i] == '.') {
		if (s[++i] < '0' || s[i] > '9')
			return false;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (s[i] != '\0')
		return false;
	*v_r = strtod(s, NULL);
	return true;
}

/* entry_for - the entry of the name a score, describe or tflags line starts
 * with: any name, as SpamAssassin files set them for rules defined
 * elsewhere, or not at all */
static struct name_entry *
entry_for(struct loader *ld, struct file_ctx *fc, const char *key, char **rest)
{
	char *name = take_word(rest);
	long e;

	if (*name == '\0') {
		report(ld, true, fc->where, "%s: missing rule name", key);
		return NULL;
	}
	if ((e = name_find(ld, name, true)) < 0) {
		ld->oom = true;
		return NULL;
	}
	return &ld->names[e];
}

/* parse_score - NAME n [n n n]; moat uses SpamAssassin's first score set
 * (no Bayes, no network tests) */
static void
parse_score(struct loader *ld, struct file_ctx *fc, char *rest)
{
	struct name_entry *ne = entry_for(ld, fc, "score", &rest);
	double v = 0, first = 0;
	bool relative = false, rel;
	char *w[5];
	size_t n = 0;

	if (ne == NULL)
		return;
	while (*rest != '\0' && n < 5)
		w[n++] = take_word(&rest);
	if (n != 1 && n != 4) {
		report(ld, true, fc->where, "score %s: expected 1 or 4 scores", ne->name);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!score_value(w[i], &v, &rel)) {
			report(ld, true, fc->where, "score %s: invalid score '%s'", ne->name, w[i]);
			return;
		}
		relative |= rel;
		first = i == 0 ? v : first;
	}
	if (relative && !ne->has_score) {
		report(ld, true, fc->where, "score %s: relative score without an earlier score",
		    ne->name);
		return;
	}
	ne->score = relative ? ne->score + first : first;
	ne->has_score = true;
	free(ne->score_where);
	ne->score_where = save(ld, fc->where);
}

static void
parse_describe(struct loader *ld, struct file_ctx *fc, char *rest)
{
	struct name_entry *ne = entry_for(ld, fc, "describe", &rest);

	if (ne == NULL)
		return;
	if (*rest == '\0') {
		report(ld, true, fc->where, "describe %s: missing description", ne->name);
		return;
	}
	free(ne->description);
	ne->description = save(ld, rest);
}

static void
parse_tflags(struct loader *ld, struct file_ctx *fc, char *rest)
{
	struct name_entry *ne = entry_for(ld, fc, "tflags", &rest);

	if (ne == NULL)
		return;
	/* Only nice changes anything here: multiple counts as one hit, and
	 * learn, net, userconf, publish... are about SpamAssassin's own work.
	 * A later tflags line replaces an earlier one, as in SpamAssassin. */
	ne->nice = false;
	while (*rest != '\0')
		ne->nice |= strcmp(take_word(&rest), "nice") == 0;
}

static void load_path(struct loader *ld, const char *path, const char *from);

/* do_include - a file named relative to the directory of the including one */
static void
do_include(struct loader *ld, struct file_ctx *fc, const char *value)
{
	char path[PATH_MAX];
	const char *slash = strrchr(fc->path, '/');

	if (*value == '\0') {
		report(ld, true, fc->where, "include: missing file name");
		return;
	}
	if (value[0] == '/' || slash == NULL)
		snprintf(path, sizeof(path), "%s", value);
	else if ((size_t)snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - fc->path), fc->path,
	    value) >= sizeof(path)) {
		report(ld, true, fc->where, "include %s: path too long", value);
		return;
	}
	load_path(ld, path, fc->where);
}

/* require_version - SpamAssassin skips a file written for another version */
static void
require_version(struct loader *ld, struct file_ctx *fc, const char *value)
{
	char *end;

	if (*value == '\0') {
		report(ld, true, fc->where, "require_version: missing version");
		return;
	}
	if (strcmp(value, "@@VERSION@@") == 0 ||
	    (strtod(value, &end) == RULESET_SA_VERSION && *end == '\0'))
		return;
	ld->st.unsupported++;
	report(ld, false, fc->where, "require_version %s: moat reads rules for SpamAssassin %f, "
	    "rest of the file skipped", value, RULESET_SA_VERSION);
	fc->skip_rest = true;
}

/* strip_comment - SpamAssassin's s/(?<!\\)#.*$//, then s/\\#/#/g */
static void
strip_comment(char *line)
{
	char *o = line;

	for (char *p = line; *p != '\0'; p++) {
		if (*p == '#' && (p == line || p[-1] != '\\'))
			break;
		if (*p == '\\' && p[1] == '#')
			continue;
		*o++ = *p;
	}
	*o = '\0';
}

/* process_line - one line of a rule file */
static void
process_line(struct loader *ld, struct file_ctx *fc, char *line)
{
	char msg[MSG_MAX];
	char *key, *rest;
	size_t len;

	strip_comment(line);
	line += strspn(line, " \t\r\f\v");
	len = strlen(line);
	while (len > 0 && strchr(" \t\r\f\v", line[len - 1]) != NULL)
		line[--len] = '\0';
	if (len == 0)
		return;
	if (fc->skip_rest) {
		ld->st.unsupported++;
		return;
	}
	rest = line;
	key = take_word(&rest);
	for (char *k = key; *k; k++)
		*k = *k == '-' ? '_' : (*k >= 'A' && *k <= 'Z' ? (char)(*k - 'A' + 'a') : *k);
	switch (meta_conditional(&fc->conds, key, rest, fc->line, msg, sizeof(msg))) {
	case COND_NONE:
		break;
	case COND_WARN:
		report(ld, false, fc->where, "%s", msg);
		return;
	case COND_ERROR:
		report(ld, true, fc->where, "%s", msg);
		return;
	default:
		return;
	}
	if (fc->conds.skip) {
		ld->st.unsupported += fc->conds.counted;
		return;
	}
	for (int t = 0; t < RULE_TYPE_COUNT; t++)
		if (strcmp(key, rule_types[t]) == 0) {
			parse_rule(ld, fc, key, (enum rule_type)t, rest);
			return;
		}
	if (strcmp(key, "score") == 0)
		parse_score(ld, fc, rest);
	else if (strcmp(key, "describe") == 0)
		parse_describe(ld, fc, rest);
	else if (strcmp(key, "tflags") == 0)
		parse_tflags(ld, fc, rest);
	else if (strcmp(key, "include") == 0)
		do_include(ld, fc, rest);
	else if (strcmp(key, "require_version") == 0)
		require_version(ld, fc, rest);
	else {
		ld->st.unsupported++;
		if (strcmp(key, "lang") == 0)
			report(ld, false, fc->where, "lang %s: localized lines unsupported, skipped",
			    take_word(&rest));
		else
			report(ld, false, fc->where, "%s: unsupported directive, skipped", key);
	}
}

/* read_all - a regular file, NUL-terminated: a device or FIFO named by
 * an include could block or never end, so it is not even opened */
static char *
read_all(const char *path, size_t *len_r, const char **why_r)
{
	FILE *fp = NULL;
	struct stat st;
	char *buf = NULL;

	*why_r = NULL;
	if (stat(path, &st) != 0)
		*why_r = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		*why_r = S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file";
	else if ((fp = fopen(path, "rb")) == NULL || fstat(fileno(fp), &st) != 0)
		*why_r = strerror(errno);
	else if ((size_t)st.st_size > RULE_FILE_MAX)
		*why_r = "file too large";
	else if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		*why_r = strerror(errno);
	else if ((*len_r = fread(buf, 1, (size_t)st.st_size, fp)) != (size_t)st.st_size &&
	    ferror(fp))
		*why_r = "read error";
	if (fp != NULL)
		fclose(fp);
	if (*why_r != NULL) {
		free(buf);
		return NULL;
	}
	buf[*len_r] = '\0';
	return buf;
}

/* load_file - read one file; from is where it was named ("" at top level) */
static void
load_file(struct loader *ld, const char *path, const char *from)
{
	struct file_ctx *fc;
	char real[PATH_MAX];
	const char *where = *from ? from : path;
	char *buf, *line, *next;
	const char *why;
	size_t len = 0;

	if (ld->nopen > INCLUDE_DEPTH_MAX) {
		report(ld, true, where, "include %s: includes nested deeper than %d", path,
		    INCLUDE_DEPTH_MAX);
		return;
	}
	if (realpath(path, real) == NULL) {
		why = strerror(errno);
		goto unreadable;
	}
	for (size_t i = 0; i < ld->nopen; i++)
		if (strcmp(ld->open[i], real) == 0) {
			report(ld, true, where, "include %s: include loop", path);
			return;
		}
	if ((buf = read_all(path, &len, &why)) == NULL)
		goto unreadable;
	if ((fc = calloc(1, sizeof(*fc))) == NULL || (ld->open[ld->nopen] = strdup(real)) == NULL) {
		free(fc);
		free(buf);
		report(ld, true, where, "out of memory");
		return;
	}
	ld->nopen++;
	ld->st.files++;
	fc->path = path;
	for (line = buf; line < buf + len; line = next) {
		char *eol = memchr(line, '\n', len - (size_t)(line - buf));
		next = eol != NULL ? eol + 1 : buf + len;
		fc->line++;
		snprintf(fc->where, sizeof(fc->where), "%s:%u", path, fc->line);
		if (memchr(line, '\0', (size_t)(next - line) - (eol != NULL)) != NULL) {
			report(ld, true, fc->where, "NUL byte in the line");
			continue;
		}
		if (eol != NULL)
			*eol = '\0';
		process_line(ld, fc, line);
	}
	if (fc->conds.n > 0 && !fc->skip_rest) {
		snprintf(fc->where, sizeof(fc->where), "%s:%u", path,
		    fc->conds.blocks[fc->conds.n - 1].line);
		report(ld, true, fc->where, "if: no endif before the end of the file");
	}
	free(ld->open[--ld->nopen]);
	free(fc);
	free(buf);
	return;
unreadable:
	if (*from != '\0')
		report(ld, true, where, "include %s: cannot read: %s", path, why);
	else
		report(ld, true, where, "cannot read: %s", why);
}

/* rules_file - moat's *.rules, and SpamAssassin's *.cf so that a
 * directory like /usr/share/spamassassin can be named as it is */
static int
rules_file(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	if (de->d_name[0] == '.')
		return 0;
	return (n > 6 && strcmp(de->d_name + n - 6, ".rules") == 0) ||
	    (n > 3 && strcmp(de->d_name + n - 3, ".cf") == 0);
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* load_path - a file, or a directory's *.rules and *.cf files in name order */
static void
load_path(struct loader *ld, const char *path, const char *from)
{
	struct stat st;
	struct dirent **list;
	char file[PATH_MAX];
	int n;

	if (*from != '\0' || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		load_file(ld, path, from);
		return;
	}
	if ((n = scandir(path, &list, rules_file, by_name)) < 0) {
		report(ld, true, path, "cannot read: %s", strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		if ((size_t)snprintf(file, sizeof(file), "%s/%s", path, list[i]->d_name) <
		    sizeof(file))
			load_file(ld, file, "");
		else
			report(ld, true, path, "%s: path too long", list[i]->d_name);
		free(list[i]);
	}
	free(list);
}

/* finish_rule - score, description and visibility of a live definition;
 * false if its score of 0 disables it (SpamAssassin's rule) */
static bool
finish_rule(struct loader *ld, struct rule *r, struct name_entry *ne)
{
	if (ne->has_score && ne->score == 0) {
		ne->disabled = true;
		return false;
	}
	if (ne->has_score) {
		r->score = ne->score;
		if (r->score < 0 && !ne->nice)
			report(ld, false, ne->score_where, "score %s: negative score %g without "
			    "tflags nice", r->name, r->score);
	} else {
		r->score = strncmp(r->name, "T_", 2) == 0 ? 0.01 : 1.0;
		if (ne->nice)
			r->score = -r->score;
	}
	r->reported = strncmp(r->name, "__", 2) != 0;
	r->description = save(ld, ne->description != NULL ? ne->description : "");
	return true;
}

/* find_rule - for meta_link: a meta operand's rule; a rule switched off by
 * a score of 0 counts 0 silently, one undefined or skipped counts 0 too */
static long
find_rule(void *ctx, const char *name)
{
	struct loader *ld = ctx;
	long n = name_find(ld, name, false);

	if (n >= 0 && ld->names[n].final >= 0)
		return ld->names[n].final;
	return n >= 0 && ld->names[n].disabled ? -1 : -2;
}

static void
report_meta(void *ctx, bool fatal, const struct rule *r, const char *message)
{
	report(ctx, fatal, r->where, "meta %s: %s", r->name, message);
}

/* link_rules - the live definitions become the rule set, metas bound and sorted */
static struct ruleset *
link_rules(struct loader *ld)
{
	struct ruleset *rs = calloc(1, sizeof(*rs));
	unsigned *per_type[RULE_TYPE_COUNT] = { &ld->st.header, &ld->st.body, &ld->st.rawbody,
		&ld->st.uri, &ld->st.full, &ld->st.meta };
	size_t n = 0;

	if (rs == NULL || (rs->rules = calloc(ld->ndefs + 1, sizeof(*rs->rules))) == NULL ||
	    (rs->order = calloc(ld->ndefs + 1, sizeof(*rs->order))) == NULL) {
		report(ld, true, "rules", "out of memory");
		return rs;
	}
	for (size_t i = 0; i < ld->ndefs; i++) {
		struct def *d = &ld->defs[i];
		if (d->dead)
			continue;
		d->dead = true;	/* the rule set owns it now, whatever happens */
		rs->rules[rs->nrules] = d->r;
		if (!finish_rule(ld, &rs->rules[rs->nrules], &ld->names[d->name])) {
			rule_free(&rs->rules[rs->nrules]);
			continue;
		}
		ld->names[d->name].final = (long)rs->nrules++;
	}
	for (size_t i = 0; i < rs->nrules; i++) {
		if (rs->rules[i].type != RULE_META)
			rs->order[n++] = i;
		ld->st.rules++;
		(*per_type[rs->rules[i].type])++;
	}
	rs->nmatching = n;
	if (meta_link(rs->rules, rs->nrules, rs->order + n, find_rule, report_meta, ld) ==
	    SIZE_MAX || ld->oom || !build_prefilters(rs) || (rs->nrules > n &&
	    (rs->metas = meta_program_build(rs->rules, rs->order + n, rs->nrules - n)) == NULL))
		report(ld, true, "rules", "out of memory");
	return rs;
}

static void
ruleset_free(struct ruleset *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->nrules; i++)
		rule_free(&rs->rules[i]);
	for (size_t i = 0; i < rs->nkeys; i++)
		free(rs->keys[i].field);
	for (size_t t = 0; t < RULE_TYPE_COUNT; t++)
		prefilter_free(&rs->prefilter[t]);
	accel_free((struct ruleset_accel *)atomic_load(&rs->accel));
	free(rs->rules);
	free(rs->order);
	meta_program_free(&rs->metas);
	free(rs->keys);
	free(rs);
}

struct ruleset *
ruleset_load(const char *const *paths, size_t npaths, ruleset_report_fn *reportfn, void *ctx,
    struct ruleset_stats *stats_r)
{
	struct loader ld = { .report = reportfn, .ctx = ctx };
	struct ruleset *rs = NULL;

	for (size_t i = 0; i < npaths; i++)
		load_path(&ld, paths[i], "");
	if (ld.oom)
		report(&ld, true, "rules", "out of memory");
	if (ld.st.errors == 0)
		rs = link_rules(&ld);
	for (size_t i = 0; i < ld.ndefs; i++)
		if (!ld.defs[i].dead)
			rule_free(&ld.defs[i].r);
	for (size_t i = 0; i < ld.nnames; i++) {
		free(ld.names[i].name);
		free(ld.names[i].score_where);
		free(ld.names[i].description);
	}
	free(ld.defs);
	free(ld.names);
	free(ld.slots);
	if (rs != NULL) {
		rs->keys = ld.keys;
		rs->nkeys = ld.nkeys;
		rs->stats = ld.st;
		atomic_init(&rs->refs, 1);
	} else {
		for (size_t i = 0; i < ld.nkeys; i++)
			free(ld.keys[i].field);
		free(ld.keys);
	}
	if (ld.st.errors > 0) {
		ruleset_free(rs);
		rs = NULL;
	}
	if (stats_r != NULL)
		*stats_r = ld.st;
	return rs;
}

struct ruleset *
ruleset_ref(struct ruleset *rs)
{
	atomic_fetch_add(&rs->refs, 1);
	return rs;
}

void
ruleset_unref(struct ruleset **rsp)
{
	struct ruleset *rs = *rsp;

	*rsp = NULL;
	if (rs != NULL && atomic_fetch_sub(&rs->refs, 1) == 1)
		ruleset_free(rs);
}

const struct ruleset_stats *
ruleset_get_stats(const struct ruleset *rs)
{
	return &rs->stats;
}
