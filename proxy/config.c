/*
 * config.c - moatd's configuration (see config.h).
 *
 * Keys are described by one table (name, type, where the value goes,
 * bounds), so parsing, defaults and error messages follow one rule.  The
 * current configuration is a single pointer guarded by a mutex: taking a
 * reference is a lock, an increment and an unlock, paid once per session.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "ruleset.h"

enum key_type {
	KEY_STRING,
	KEY_UINT,
	KEY_SIZE,
	KEY_DURATION,
	KEY_BOOL,
	KEY_SCORE,
	KEY_OPTIONAL_SCORE,
	KEY_MODE,
	KEY_LOG,
	KEY_LOG_LEVEL,
	KEY_BARE_NEWLINE,
	KEY_LISTEN,
	KEY_BACKEND,
	KEY_RULES,
	KEY_FAILURE,
	KEY_LIST,
	KEY_DOMAIN_SCORES,
	KEY_TYPE_COUNT /* must be last */
};

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	size_t size;		/* KEY_STRING: buffer size */
	uint64_t min, max;	/* bounds (KEY_DURATION in ms); KEY_LIST: slot, kind */
	const char *default_value;
};

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define SECONDS(n) ((uint64_t)(n) * 1000)
#define HOUR SECONDS(3600)

static const struct key keys[] = {
	{ "listen", KEY_LISTEN, FIELD(listen_text), 0, 0, "127.0.0.1:2525" },
	{ "backend", KEY_BACKEND, FIELD(backend_text), 0, 0, "127.0.0.1:25" },
	{ "hostname", KEY_STRING, FIELD(hostname), 0, 0, "" },
	{ "banner", KEY_STRING, FIELD(banner), 0, 0, "ESMTP moat" },
	{ "workers", KEY_UINT, FIELD(workers), 0, 64, "0" },
	{ "log", KEY_LOG, FIELD(log_syslog), 0, 0, "stderr" },
	{ "log_level", KEY_LOG_LEVEL, FIELD(log_level), 0, 0, "info" },
	{ "decision_log", KEY_STRING, FIELD(decision_log), 0, 0, "stderr" },
	{ "max_message_size", KEY_SIZE, FIELD(max_message_size), 1024, (uint64_t)1 << 40, "26214400" },
	{ "message_memory_limit", KEY_SIZE, FIELD(message_memory_limit), 0, (uint64_t)1 << 32, "262144" },
	{ "temp_dir", KEY_STRING, FIELD(temp_dir), 0, 0, "/var/tmp" },
	/* RFC 5321 4.5.3.1.8: at least 100 recipients must be buffered. */
	{ "max_recipients", KEY_UINT, FIELD(max_recipients), 1, 100000, "1000" },
	{ "max_connections", KEY_UINT, FIELD(max_connections), 1, 1000000, "10000" },
	{ "max_connections_per_ip", KEY_UINT, FIELD(max_connections_per_ip), 0, 1000000, "50" },
	{ "connlimit_mode", KEY_MODE, FIELD(connlimit_mode), 0, 0, "on" },
	{ "max_bad_commands", KEY_UINT, FIELD(max_bad_commands), 1, 10000, "20" },
	/* RFC 5321 4.5.3.2.7: the server timeout should be at least 5 minutes. */
	{ "command_timeout", KEY_DURATION, FIELD(command_timeout_ms), 100, HOUR, "300s" },
	{ "data_timeout", KEY_DURATION, FIELD(data_timeout_ms), 100, HOUR, "300s" },
	{ "bare_newline", KEY_BARE_NEWLINE, FIELD(bare_newline), 0, 0, "reject" },
	{ "backend_connect_timeout", KEY_DURATION, FIELD(backend_connect_timeout_ms), 100, HOUR, "10s" },
	{ "backend_timeout", KEY_DURATION, FIELD(backend_timeout_ms), 100, HOUR, "300s" },
	{ "backend_xclient", KEY_BOOL, FIELD(backend_xclient), 0, 0, "yes" },
	{ "backend_xforward", KEY_BOOL, FIELD(backend_xforward), 0, 0, "yes" },
	{ "backend_helo", KEY_STRING, FIELD(backend_helo), 0, 0, "" },
	{ "backend_probe_interval", KEY_DURATION, FIELD(backend_probe_interval_ms), SECONDS(1), 24 * HOUR, "60s" },
	{ "reject_score", KEY_SCORE, FIELD(reject_score), 0, 0, "10" },
	{ "tag_score", KEY_SCORE, FIELD(tag_score), 0, 0, "5" },
	{ "tempfail_score", KEY_OPTIONAL_SCORE, FIELD(tempfail_score), 0, 0, "off" },
	{ "reject_message", KEY_STRING, FIELD(reject_message), 0, 0, "Message rejected as spam" },
	{ "reject_show_rules", KEY_BOOL, FIELD(reject_show_rules), 0, 0, "no" },
	{ "drain_timeout", KEY_DURATION, FIELD(drain_timeout_ms), 0, HOUR, "30s" },
	{ "rules", KEY_RULES, FIELD(rules_text), 0, 0, NULL },
	/* SpamAssassin's practice: bodies are scanned up to about 512 KB. */
	{ "scan_limit", KEY_SIZE, FIELD(scan_limit), 1024, (uint64_t)64 << 20, "512K" },
	{ "rules_mode", KEY_MODE, FIELD(rules_mode), 0, 0, "on" },
	{ "rules_timeout", KEY_DURATION, FIELD(rules_timeout_ms), 100, HOUR, "10s" },
	{ "rules_failure", KEY_FAILURE, FIELD(rules_failure), 0, 0, "continue" },
	{ "pool_threads", KEY_UINT, FIELD(pool_threads), 0, 64, "0" },
	/* min holds the list slot, max the list kind. */
	{ "allow_clients", KEY_LIST, 0, 0, LIST_ALLOW_CLIENTS, LIST_CLIENTS, NULL },
	{ "deny_clients", KEY_LIST, 0, 0, LIST_DENY_CLIENTS, LIST_CLIENTS, NULL },
	{ "allow_helo", KEY_LIST, 0, 0, LIST_ALLOW_HELO, LIST_NAMES, NULL },
	{ "deny_helo", KEY_LIST, 0, 0, LIST_DENY_HELO, LIST_NAMES, NULL },
	{ "allow_senders", KEY_LIST, 0, 0, LIST_ALLOW_SENDERS, LIST_ADDRESSES, NULL },
	{ "deny_senders", KEY_LIST, 0, 0, LIST_DENY_SENDERS, LIST_ADDRESSES, NULL },
	{ "allow_recipients", KEY_LIST, 0, 0, LIST_ALLOW_RECIPIENTS, LIST_ADDRESSES, NULL },
	{ "deny_recipients", KEY_LIST, 0, 0, LIST_DENY_RECIPIENTS, LIST_ADDRESSES, NULL },
	{ "lists_mode", KEY_MODE, FIELD(lists_mode), 0, 0, "on" },
	{ "domain_scores", KEY_DOMAIN_SCORES, 0, 0, 0, 0, NULL },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const mode_names[CHECK_MODE_COUNT] = {
	[CHECK_OFF] = "off", [CHECK_MONITOR] = "monitor", [CHECK_ON] = "on",
};
static const char *const level_names[LOG_LEVEL_COUNT] = {
	[LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug",
};
static const char *const bare_newline_names[BARE_NEWLINE_COUNT] = {
	[BARE_NEWLINE_REJECT] = "reject", [BARE_NEWLINE_NORMALIZE] = "normalize",
};

static void config_free(struct config *cfg);

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct config *current;
static uint64_t generation_counter;

struct loader {
	config_report_fn *report;
	void *ctx;
	int errors;
};

static void __attribute__((format(printf, 3, 4)))
report(struct loader *ld, const char *where, const char *fmt, ...)
{
	char msg[CONFIG_LINE_MAX + 512];
	int n = snprintf(msg, sizeof(msg), "%s: ", where);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	ld->errors++;
	if (ld->report != NULL)
		ld->report(ld->ctx, true, msg);
}

/* config_mode_name - "off", "monitor" or "on" */
const char *
config_mode_name(enum check_mode mode)
{
	return (unsigned)mode < CHECK_MODE_COUNT ? mode_names[mode] : "?";
}

/* parse_name - index of value in names[], or -1 */
static int
parse_name(const char *value, const char *const *names, int count)
{
	for (int i = 0; i < count; i++)
		if (strcasecmp(value, names[i]) == 0)
			return i;
	return -1;
}

struct unit {
	const char *suffix;
	uint64_t scale;
};

static const struct unit no_units[] = { { "", 1 }, { NULL, 0 } };
static const struct unit size_units[] = {
	{ "", 1 }, { "k", 1024 }, { "m", 1024 * 1024 }, { "g", 1024 * 1024 * 1024 },
	{ NULL, 0 },
};
/* Durations are stored in milliseconds; a bare number means seconds. */
static const struct unit time_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	{ NULL, 0 },
};

/* parse_number - unsigned number with an optional unit suffix */
static bool
parse_number(const char *value, const struct unit *units, uint64_t *result_r)
{
	char *end;

	if (!isdigit((unsigned char)value[0]))
		return false;
	errno = 0;
	unsigned long long n = strtoull(value, &end, 10);
	if (errno != 0)
		return false;
	for (const struct unit *u = units; u->suffix != NULL; u++) {
		if (strcasecmp(end, u->suffix) != 0)
			continue;
		if (n > UINT64_MAX / u->scale)
			return false;
		*result_r = n * u->scale;
		return true;
	}
	return false;
}

/* parse_listen - comma-separated host:port list */
static bool
parse_listen(struct config *cfg, const char *value, char *error, size_t esize)
{
	char copy[CONFIG_LINE_MAX];
	char *save = NULL;

	snprintf(copy, sizeof(copy), "%s", value);
	cfg->nlisten = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		size_t len = strlen(tok);
		while (len > 0 && tok[len - 1] == ' ')
			tok[--len] = '\0';
		if (cfg->nlisten == CONFIG_LISTEN_MAX) {
			snprintf(error, esize, "more than %d listen addresses", CONFIG_LISTEN_MAX);
			return false;
		}
		if (!netaddr_resolve(tok, &cfg->listen[cfg->nlisten], error, esize))
			return false;
		cfg->nlisten++;
	}
	if (cfg->nlisten == 0) {
		snprintf(error, esize, "no listen address");
		return false;
	}
	return true;
}

/* set_value - store one key's value; returns false with *why set */
static bool
set_value(struct config *cfg, const struct key *k, const char *value,
    char *why, size_t why_size)
{
	char *field = (char *)cfg + k->offset;
	uint64_t n;
	int idx;

	switch (k->type) {
	case KEY_STRING:
		if (strlen(value) >= k->size) {
			snprintf(why, why_size, "value longer than %zu characters", k->size - 1);
			return false;
		}
		memcpy(field, value, strlen(value) + 1);
		return true;
	case KEY_UINT:
	case KEY_SIZE:
	case KEY_DURATION:
		if (!parse_number(value, k->type == KEY_UINT ? no_units :
		    k->type == KEY_SIZE ? size_units : time_units, &n)) {
			snprintf(why, why_size, "%s expected, not \"%s\"",
			    k->type == KEY_UINT ? "a number" :
			    k->type == KEY_SIZE ? "a size (bytes, or with K, M, G)" :
			    "a duration (300s, 5m, 1h)", value);
			return false;
		}
		if (n < k->min || n > k->max) {
			snprintf(why, why_size, "%s out of range", value);
			return false;
		}
		if (k->type == KEY_SIZE)
			*(uint64_t *)field = n;
		else
			*(unsigned *)field = (unsigned)n;
		return true;
	case KEY_BOOL:
		idx = parse_name(value, (const char *const[]){ "no", "yes" }, 2);
		if (idx < 0)
			idx = parse_name(value, (const char *const[]){ "false", "true" }, 2);
		if (idx < 0)
			idx = parse_name(value, (const char *const[]){ "off", "on" }, 2);
		if (idx < 0) {
			snprintf(why, why_size, "yes or no expected, not \"%s\"", value);
			return false;
		}
		*(bool *)field = idx == 1;
		return true;
	case KEY_OPTIONAL_SCORE:
		if (value[0] == '\0' || strcasecmp(value, "off") == 0) {
			*(double *)field = NAN;
			return true;
		}
		/* FALLTHROUGH */
	case KEY_SCORE: {
		char *end;
		errno = 0;
		double d = strtod(value, &end);
		if (errno != 0 || end == value || *end != '\0' || !isfinite(d)) {
			snprintf(why, why_size, "a score expected, not \"%s\"", value);
			return false;
		}
		*(double *)field = d;
		return true;
	}
	case KEY_MODE:
		idx = parse_name(value, mode_names, CHECK_MODE_COUNT);
		if (idx < 0) {
			snprintf(why, why_size, "off, monitor or on expected, not \"%s\"", value);
			return false;
		}
		*(enum check_mode *)field = (enum check_mode)idx;
		return true;
	case KEY_LOG:
		idx = parse_name(value, (const char *const[]){ "stderr", "syslog" }, 2);
		if (idx < 0) {
			snprintf(why, why_size, "stderr or syslog expected, not \"%s\"", value);
			return false;
		}
		*(bool *)field = idx == 1;
		return true;
	case KEY_LOG_LEVEL:
		idx = parse_name(value, level_names, LOG_LEVEL_COUNT);
		if (idx < 0) {
			snprintf(why, why_size, "error, warning, info or debug expected, not \"%s\"", value);
			return false;
		}
		*(enum log_level *)field = (enum log_level)idx;
		return true;
	case KEY_BARE_NEWLINE:
		idx = parse_name(value, bare_newline_names, BARE_NEWLINE_COUNT);
		if (idx < 0) {
			snprintf(why, why_size, "reject or normalize expected, not \"%s\"", value);
			return false;
		}
		*(enum bare_newline *)field = (enum bare_newline)idx;
		return true;
	case KEY_LISTEN:
		if (!parse_listen(cfg, value, why, why_size))
			return false;
		snprintf(cfg->listen_text, sizeof(cfg->listen_text), "%s", value);
		return true;
	case KEY_BACKEND:
		if (strlen(value) >= sizeof(cfg->backend_text)) {
			snprintf(why, why_size, "value too long");
			return false;
		}
		if (!netaddr_resolve(value, &cfg->backend, why, why_size))
			return false;
		snprintf(cfg->backend_text, sizeof(cfg->backend_text), "%s", value);
		return true;
	case KEY_RULES:
		if (strlen(value) >= sizeof(cfg->rules_text)) {
			snprintf(why, why_size, "value too long");
			return false;
		}
		snprintf(cfg->rules_text, sizeof(cfg->rules_text), "%s", value);
		cfg->rules_given = true;
		return true;
	case KEY_FAILURE:
		idx = parse_name(value, (const char *const[]){ "tempfail", "continue" }, 2);
		if (idx < 0) {
			snprintf(why, why_size, "tempfail or continue expected, not \"%s\"", value);
			return false;
		}
		*(enum failure_action *)field = idx == 0 ? FAILURE_TEMPFAIL : FAILURE_CONTINUE;
		return true;
	case KEY_LIST: {
		struct list *l = NULL;
		if (value[0] != '\0') {
			l = list_parse((enum list_kind)k->max, value, why, why_size);
			if (l == NULL)
				return false;
		}
		list_free(&cfg->lists[k->min]);
		cfg->lists[k->min] = l;
		return true;
	}
	case KEY_DOMAIN_SCORES: {
		size_t count = 0;
		struct domain_scores *ds = NULL;
		if (value[0] != '\0') {
			ds = domain_scores_parse(value, &count, why, why_size);
			if (ds == NULL)
				return false;
		}
		free(cfg->domain_scores);
		cfg->domain_scores = ds;
		cfg->ndomain_scores = count;
		return true;
	}
	case KEY_TYPE_COUNT:
		break;
	}
	snprintf(why, why_size, "internal error: key type");
	return false;
}

static const struct key *
find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* trim - strip surrounding blanks in place */
static char *
trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* apply_line - one "key = value" from a file or an -o option */
static void
apply_line(struct loader *ld, struct config *cfg, char *line, const char *where,
    bool from_file)
{
	char why[CONFIG_LINE_MAX];
	char *eq;

	if (from_file) {
		/* "#" starts a comment anywhere on a line, as in Postfix main.cf. */
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
	}
	line = trim(line);
	if (*line == '\0')
		return;
	eq = strchr(line, '=');
	if (eq == NULL) {
		report(ld, where, "expected \"key = value\"");
		return;
	}
	*eq = '\0';
	char *name = trim(line), *value = trim(eq + 1);
	const struct key *k = find_key(name);
	if (k == NULL) {
		report(ld, where, "unknown key \"%s\"", name);
		return;
	}
	if (!set_value(cfg, k, value, why, sizeof(why)))
		report(ld, where, "%s: %s", name, why);
}

/* load_file - apply every line of path */
static void
load_file(struct loader *ld, struct config *cfg, const char *path)
{
	FILE *fp = fopen(path, "r");
	char line[CONFIG_LINE_MAX + 2], where[PATH_MAX + 32];
	unsigned lineno = 0;

	if (fp == NULL) {
		report(ld, path, "cannot open: %s", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\n') {
			line[--len] = '\0';
		} else if (!feof(fp)) {
			report(ld, where, "line longer than %d characters", CONFIG_LINE_MAX);
			int c;
			while ((c = fgetc(fp)) != EOF && c != '\n')
				;
			continue;
		}
		if (memchr(line, '\0', len) != NULL || strlen(line) != len) {
			report(ld, where, "NUL character in line");
			continue;
		}
		apply_line(ld, cfg, line, where, true);
	}
	if (ferror(fp))
		report(ld, path, "read error: %s", strerror(errno));
	fclose(fp);
}

/* config_rules_default - where the shipped rules are (installed, or this source tree) */
const char *
config_rules_default(void)
{
	/* An installed moat uses its installed rules; one run from its build
	 * tree (proxy/moatd) uses the tree's, so both work without a key. */
	if (access(MOAT_RULESDIR, R_OK) == 0)
		return MOAT_RULESDIR;
	return MOAT_SRC_RULESDIR;
}

struct rules_report {
	struct loader *ld;
	struct config *cfg;
};

static void
rules_report(void *ctx, bool fatal, const char *where, const char *message)
{
	struct rules_report *rr = ctx;
	char line[CONFIG_LINE_MAX + 512];

	if (fatal) {
		report(rr->ld, where, "%s", message);
		return;
	}
	rr->cfg->rules_warnings++;
	snprintf(line, sizeof(line), "%s: %s", where, message);
	if (rr->ld->report != NULL)
		rr->ld->report(rr->ld->ctx, false, line);
}

/* load_rules - compile the rule files named by "rules" (empty: none) */
static void
load_rules(struct loader *ld, struct config *cfg)
{
	char copy[CONFIG_LINE_MAX];
	const char *paths[64];
	size_t npaths = 0;
	char *save = NULL;
	struct rules_report rr = { ld, cfg };
	struct ruleset_stats stats;

	snprintf(copy, sizeof(copy), "%s", cfg->rules_text);
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		tok = trim(tok);
		if (*tok == '\0')
			continue;
		if (npaths == sizeof(paths) / sizeof(paths[0])) {
			report(ld, "rules", "more than %zu paths", npaths);
			return;
		}
		paths[npaths++] = tok;
	}
	if (npaths == 0)
		return;
	cfg->ruleset = ruleset_load(paths, npaths, rules_report, &rr, &stats);
}

/* finish - defaults that depend on other keys, and cross-key checks */
static void
finish(struct loader *ld, struct config *cfg, const char *where)
{
	if (cfg->hostname[0] == '\0') {
		if (gethostname(cfg->hostname, sizeof(cfg->hostname) - 1) != 0 ||
		    cfg->hostname[0] == '\0')
			snprintf(cfg->hostname, sizeof(cfg->hostname), "localhost");
	}
	for (const char *p = cfg->hostname; *p; p++)
		if (*p <= ' ' || *p == 0x7f) {
			report(ld, where, "hostname: must be one word");
			break;
		}
	if (cfg->backend_helo[0] == '\0')
		memcpy(cfg->backend_helo, cfg->hostname, sizeof(cfg->backend_helo));
	if (cfg->tag_score > cfg->reject_score)
		report(ld, where, "tag_score (%g) is above reject_score (%g)",
		    cfg->tag_score, cfg->reject_score);
	if (!isnan(cfg->tempfail_score) && cfg->tempfail_score > cfg->reject_score)
		report(ld, where, "tempfail_score (%g) is above reject_score (%g)",
		    cfg->tempfail_score, cfg->reject_score);
	if (cfg->decision_log[0] == '\0')
		report(ld, where, "decision_log: empty (use \"stderr\" or a path)");
	if (!cfg->rules_given)
		snprintf(cfg->rules_text, sizeof(cfg->rules_text), "%s", config_rules_default());
	if (ld->errors == 0)
		load_rules(ld, cfg);
}

/* config_load - defaults, then the file, then the -o overrides */
struct config *
config_load(const char *path, char *const *overrides, size_t noverrides,
    config_report_fn *reportfn, void *ctx)
{
	struct loader ld = { reportfn, ctx, 0 };
	struct config *cfg = calloc(1, sizeof(*cfg));
	char why[CONFIG_LINE_MAX], where[CONFIG_LINE_MAX];

	if (cfg == NULL) {
		report(&ld, "config", "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].default_value != NULL &&
		    !set_value(cfg, &keys[i], keys[i].default_value, why, sizeof(why)))
			report(&ld, "default", "%s: %s", keys[i].name, why);
	if (path != NULL)
		load_file(&ld, cfg, path);
	for (size_t i = 0; i < noverrides; i++) {
		char line[CONFIG_LINE_MAX];
		snprintf(line, sizeof(line), "%s", overrides[i]);
		snprintf(where, sizeof(where), "-o %.*s", (int)strcspn(line, "="), line);
		apply_line(&ld, cfg, line, where, false);
	}
	finish(&ld, cfg, path != NULL ? path : "config");
	if (ld.errors > 0) {
		config_free(cfg);
		return NULL;
	}
	atomic_init(&cfg->refs, 1);
	pthread_mutex_lock(&current_lock);
	cfg->generation = ++generation_counter;
	pthread_mutex_unlock(&current_lock);
	return cfg;
}

/* config_free - a configuration and everything it owns */
static void
config_free(struct config *cfg)
{
	ruleset_unref(&cfg->ruleset);
	for (int i = 0; i < LIST_SLOT_COUNT; i++)
		list_free(&cfg->lists[i]);
	free(cfg->domain_scores);
	free(cfg);
}

/* config_ref - share a configuration */
struct config *
config_ref(struct config *cfg)
{
	atomic_fetch_add(&cfg->refs, 1);
	return cfg;
}

/* config_unref - release a configuration; sets *cfg to NULL */
void
config_unref(struct config **cfg)
{
	if (*cfg == NULL)
		return;
	if (atomic_fetch_sub(&(*cfg)->refs, 1) == 1)
		config_free(*cfg);
	*cfg = NULL;
}

/* config_current - a reference to the configuration now in force */
struct config *
config_current(void)
{
	struct config *cfg;

	pthread_mutex_lock(&current_lock);
	cfg = current != NULL ? config_ref(current) : NULL;
	pthread_mutex_unlock(&current_lock);
	return cfg;
}

/* config_swap - make cfg current (takes over the caller's reference) */
void
config_swap(struct config *cfg)
{
	struct config *old;

	pthread_mutex_lock(&current_lock);
	old = current;
	current = cfg;
	pthread_mutex_unlock(&current_lock);
	config_unref(&old);
}
