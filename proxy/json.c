/*
 * json.c - a bounded JSON writer for the decision record (see json.h).
 *
 * Invalid UTF-8 from a peer is written as U+FFFD so the line stays valid
 * JSON for moat-log and jq.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

void
json_init(struct json *j, char *buf, size_t size)
{
	j->buf = buf;
	j->size = size;
	j->len = 0;
	j->need_comma = false;
	j->overflow = false;
	if (size > 0)
		buf[0] = '\0';
}

static void
put(struct json *j, const char *s, size_t n)
{
	if (j->overflow || j->len + n + 1 > j->size) {
		j->overflow = true;
		return;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

void
json_raw(struct json *j, const char *s)
{
	put(j, s, strlen(s));
}

/* utf8_sequence_length - length of a valid UTF-8 sequence at p, or 0 */
static size_t
utf8_sequence_length(const unsigned char *p, size_t avail)
{
	size_t n;
	unsigned min;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n > avail)
		return 0;
	unsigned cp = p[0] & (0xff >> (n + 1));
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void
put_escaped(struct json *j, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);

	put(j, "\"", 1);
	while (left > 0) {
		char esc[8];
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put(j, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			put(j, esc, 6);
		} else if (*p >= 0x80) {
			size_t n = utf8_sequence_length(p, left);
			if (n == 0) {
				put(j, "\\ufffd", 6);
			} else {
				put(j, (const char *)p, n);
				p += n - 1;
				left -= n - 1;
			}
		} else {
			put(j, (const char *)p, 1);
		}
		p++;
		left--;
	}
	put(j, "\"", 1);
}

void
json_key(struct json *j, const char *key)
{
	if (j->need_comma)
		put(j, ",", 1);
	if (key != NULL) {
		put_escaped(j, key);
		put(j, ":", 1);
	}
	j->need_comma = true;
}

void
json_begin_object(struct json *j)
{
	if (j->need_comma)
		put(j, ",", 1);
	put(j, "{", 1);
	j->need_comma = false;
}

void
json_end_object(struct json *j)
{
	put(j, "}", 1);
	j->need_comma = true;
}

void
json_begin_array(struct json *j, const char *key)
{
	json_key(j, key);
	put(j, "[", 1);
	j->need_comma = false;
}

void
json_end_array(struct json *j)
{
	put(j, "]", 1);
	j->need_comma = true;
}

void
json_string(struct json *j, const char *key, const char *value)
{
	json_key(j, key);
	if (value == NULL)
		put(j, "null", 4);
	else
		put_escaped(j, value);
}

void
json_number(struct json *j, const char *key, double value, int decimals)
{
	char num[64];
	int n = snprintf(num, sizeof(num), "%.*f", decimals, value);

	json_key(j, key);
	put(j, num, n > 0 ? (size_t)n : 0);
}

void
json_null(struct json *j, const char *key)
{
	json_key(j, key);
	put(j, "null", 4);
}
