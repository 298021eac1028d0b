/*
 * json.h - a bounded JSON writer for the decision record.
 *
 * Writes into a caller-owned buffer; if the record would not fit it is
 * marked truncated rather than overflowing.  Strings from peers (addresses,
 * HELO names, replies) are escaped so a record is always one valid line.
 */
#ifndef MOAT_JSON_H
#define MOAT_JSON_H

#include <stdbool.h>
#include <stddef.h>

struct json {
	char *buf;
	size_t size;
	size_t len;
	bool need_comma;
	bool overflow;
};

void json_init(struct json *j, char *buf, size_t size);
void json_raw(struct json *j, const char *s);
void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j, const char *key);
void json_end_array(struct json *j);
void json_key(struct json *j, const char *key);	/* key may be NULL inside arrays */
void json_string(struct json *j, const char *key, const char *value);	/* NULL -> null */
void json_number(struct json *j, const char *key, double value, int decimals);
void json_null(struct json *j, const char *key);

#endif
