/*
 * connlimit.c - max_connections_per_ip: concurrent connections from one
 * client address, checked at connect and answered 421 (symbol CONN_LIMIT).
 *
 * Owns: a process-wide table of live connection counts per address,
 * shared by all workers under one mutex (held for a hash lookup only).
 * Synchronous.  A session counted here carries a marker state, so its end
 * gives the count back whatever the verdict was (monitor mode included).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "filter.h"

#define CONNLIMIT_BUCKETS 4096	/* power of two */

struct ip_count {
	char ip[NETADDR_TEXT_MAX];
	unsigned count;
	struct ip_count *next;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ip_count *table[CONNLIMIT_BUCKETS];
static char counted_marker;

static size_t
bucket_of(const char *ip)
{
	/* FNV-1a: short keys, no adversary-controlled length. */
	uint32_t h = 2166136261u;
	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h & (CONNLIMIT_BUCKETS - 1);
}

static enum check_mode
connlimit_mode(const struct config *cfg)
{
	return cfg->max_connections_per_ip == 0 ? CHECK_OFF : cfg->connlimit_mode;
}

static enum filter_status
connlimit_connect(const struct filter_txn *txn, void **state,
    const struct filter_request *req, struct filter_result *result_r)
{
	unsigned limit = txn->cfg->max_connections_per_ip, before;
	size_t b = bucket_of(txn->client_ip);
	struct ip_count *e;

	pthread_mutex_lock(&table_lock);
	for (e = table[b]; e != NULL; e = e->next)
		if (strcmp(e->ip, txn->client_ip) == 0)
			break;
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL) {
			pthread_mutex_unlock(&table_lock);
			return FILTER_ERROR;
		}
		snprintf(e->ip, sizeof(e->ip), "%s", txn->client_ip);
		e->next = table[b];
		table[b] = e;
	}
	before = e->count++;
	pthread_mutex_unlock(&table_lock);
	*state = &counted_marker;

	if (before >= limit) {
		char detail[SYMBOL_DETAIL_MAX], reply[FILTER_REPLY_MAX];
		snprintf(detail, sizeof(detail), "%u connections from %s (limit %u)",
		    before + 1, txn->client_ip, limit);
		filter_add_symbol(result_r, "connlimit", "CONN_LIMIT", 0, detail);
		snprintf(reply, sizeof(reply), "421 4.7.0 %s Error: too many connections from %s",
		    txn->cfg->hostname, txn->client_ip);
		filter_set_verdict(result_r, VERDICT_DISCONNECT, reply);
	}
	return FILTER_DONE;
}

static void
connlimit_session_end(const struct filter_txn *txn, void *state)
{
	struct ip_count **p;
	size_t b = bucket_of(txn->client_ip);

	pthread_mutex_lock(&table_lock);
	for (p = &table[b]; *p != NULL; p = &(*p)->next) {
		if (strcmp((*p)->ip, txn->client_ip) != 0)
			continue;
		if (--(*p)->count == 0) {
			struct ip_count *dead = *p;
			*p = dead->next;
			free(dead);
		}
		break;
	}
	pthread_mutex_unlock(&table_lock);
}

static void
connlimit_deinit(void)
{
	pthread_mutex_lock(&table_lock);
	for (size_t b = 0; b < CONNLIMIT_BUCKETS; b++) {
		while (table[b] != NULL) {
			struct ip_count *next = table[b]->next;
			free(table[b]);
			table[b] = next;
		}
	}
	pthread_mutex_unlock(&table_lock);
}

const struct filter filter_connlimit = {
	.name = "connlimit",
	.mode = connlimit_mode,
	.deinit = connlimit_deinit,
	.hooks = { [STAGE_CONNECT] = connlimit_connect },
	.session_end = connlimit_session_end,
};
