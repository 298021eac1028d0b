/*
 * textbuf.h - the growable text buffer the MIME parser and the HTML
 * renderer write into: bounded (a limit it never passes, cutting on a
 * UTF-8 character boundary), and sticky on failure (after an allocation
 * fails, or the limit is reached, it takes nothing more and says so), so
 * that callers check once at the end instead of after every append.
 * Also the conversion of a part's bytes to UTF-8, which never fails.
 */
#ifndef MOAT_TEXTBUF_H
#define MOAT_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *p;		/* NUL-terminated when not NULL; owned, free() it */
	size_t len, cap;
	size_t limit;		/* len never exceeds it */
	bool full;		/* text was cut at limit: add nothing more */
	bool oom;
};

/* ASCII classes, whatever the locale */
static inline bool
ascii_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline bool
ascii_alpha(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static inline bool
ascii_alnum(unsigned char c)
{
	return ascii_alpha(c) || (c >= '0' && c <= '9');
}

/* buf_reserve - room for n more bytes and a NUL; false (and oom) if none */
bool buf_reserve(struct buf *b, size_t n);
/* buf_add - append, or as much as fits under the limit without splitting a character */
void buf_add(struct buf *b, const char *s, size_t n);
void buf_addc(struct buf *b, char c);
/* buf_add_cp - one character as UTF-8; NUL, surrogates and values past U+10FFFF as U+FFFD */
void buf_add_cp(struct buf *b, uint32_t cp);
/* buf_add_utf8 - valid UTF-8 as it is, any other byte as Windows-1252 */
void buf_add_utf8(struct buf *b, const char *s, size_t n);
/*
 * buf_add_converted - s[0, n) in charset, as UTF-8.  Never fails: bytes
 * the charset does not define, and whole parts in a charset iconv does
 * not know, are read as UTF-8 where valid and Windows-1252 elsewhere.
 */
void buf_add_converted(struct buf *out, const char *s, size_t n, const char *charset);

/* utf8_cut - the longest prefix of s[0, n) that ends on a character boundary */
size_t utf8_cut(const char *s, size_t n);
/* cp1252_char - the character a byte 0x80-0x9F names in Windows-1252, as
 * browsers read it (the five holes stay C1 controls) */
uint32_t cp1252_char(unsigned char c);
/* ascii_name_in - whether name is one of list[0, n), ASCII case ignored */
bool ascii_name_in(const char *name, const char *const *list, size_t n);

#endif
