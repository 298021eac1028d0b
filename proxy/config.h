/*
 * config.h - moatd's configuration: "key = value" files plus -o overrides.
 *
 * A loaded configuration is immutable and reference-counted.  SIGHUP builds
 * a complete new one and swaps it in (config_swap); sessions keep the
 * reference they started with, so a reload never changes a running session.
 * Errors are reported as "file:line: message" through a callback.
 */
#ifndef MOAT_CONFIG_H
#define MOAT_CONFIG_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "lists.h"
#include "log.h"
#include "netaddr.h"

#define CONFIG_LISTEN_MAX 16
#define CONFIG_NAME_MAX 256
#define CONFIG_LINE_MAX 4096

/* The allow and deny lists, by what they match. */
enum list_slot {
	LIST_ALLOW_CLIENTS,
	LIST_DENY_CLIENTS,
	LIST_ALLOW_HELO,
	LIST_DENY_HELO,
	LIST_ALLOW_SENDERS,
	LIST_DENY_SENDERS,
	LIST_ALLOW_RECIPIENTS,
	LIST_DENY_RECIPIENTS,
	LIST_SLOT_COUNT /* must be last */
};

enum bare_newline {
	BARE_NEWLINE_REJECT,
	BARE_NEWLINE_NORMALIZE,
	BARE_NEWLINE_COUNT /* must be last */
};

struct config {
	atomic_int refs;
	uint64_t generation;		/* counts successful loads */

	struct netaddr listen[CONFIG_LISTEN_MAX];
	size_t nlisten;
	char listen_text[CONFIG_LINE_MAX];
	struct netaddr backend;
	char backend_text[CONFIG_NAME_MAX];
	char hostname[CONFIG_NAME_MAX];
	char banner[CONFIG_NAME_MAX];
	unsigned workers;

	bool log_syslog;
	enum log_level log_level;
	char decision_log[PATH_MAX];

	uint64_t max_message_size;
	uint64_t message_memory_limit;
	char temp_dir[PATH_MAX];
	unsigned max_recipients;
	unsigned max_connections;
	unsigned max_connections_per_ip;
	enum check_mode connlimit_mode;
	unsigned max_bad_commands;
	unsigned command_timeout_ms;
	unsigned data_timeout_ms;
	enum bare_newline bare_newline;

	unsigned backend_connect_timeout_ms;
	unsigned backend_timeout_ms;
	bool backend_xclient;
	bool backend_xforward;
	char backend_helo[CONFIG_NAME_MAX];
	unsigned backend_probe_interval_ms;

	double reject_score;
	double tag_score;
	double tempfail_score;			/* NAN: off */
	char reject_message[CONFIG_NAME_MAX];
	bool reject_show_rules;

	char rules_text[CONFIG_LINE_MAX];	/* comma-separated files and directories */
	bool rules_given;
	uint64_t scan_limit;
	enum check_mode rules_mode;
	unsigned rules_timeout_ms;
	enum failure_action rules_failure;
	unsigned pool_threads;
	struct ruleset *ruleset;		/* NULL: no rules */
	unsigned rules_warnings;

	struct list *lists[LIST_SLOT_COUNT];	/* NULL: empty */
	enum check_mode lists_mode;
	struct domain_scores *domain_scores;
	size_t ndomain_scores;

	unsigned drain_timeout_ms;
};

/*
 * One problem in "where: message" form (where = "file:line" or "-o key").
 * fatal problems make config_load() fail; the others (rule lines moat does
 * not support) are for the operator to see.
 */
typedef void config_report_fn(void *ctx, bool fatal, const char *message);

/*
 * config_load - read path (NULL: defaults only), then apply the -o
 * "key=value" overrides; returns NULL after reporting every error found.
 */
struct config *config_load(const char *path, char *const *overrides,
    size_t noverrides, config_report_fn *report, void *ctx);

/* config_ref / config_unref - share and release a configuration */
struct config *config_ref(struct config *cfg);
void config_unref(struct config **cfg);

/* config_current - a reference to the configuration now in force */
struct config *config_current(void);

/* config_swap - make cfg current (takes over the caller's reference) */
void config_swap(struct config *cfg);

/* config_rules_default - where the shipped rules are (installed, or this source tree) */
const char *config_rules_default(void);

/* config_mode_name - "off", "monitor" or "on" */
const char *config_mode_name(enum check_mode mode);

#endif
