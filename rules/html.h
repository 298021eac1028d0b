/*
 * html.h - HTML to text, as SpamAssassin renders a text/html part for
 * body rules, and the URIs the part holds, in order of appearance.
 */
#ifndef MOAT_HTML_H
#define MOAT_HTML_H

#include <stddef.h>

#include "textbuf.h"

/* the longest URI recorded, and so the longest attribute value read */
#define URI_LEN_MAX 4096

/* Where the renderer sends what may hold URIs, in the order it meets them. */
struct html_uri_sink {
	void *ctx;
	/* a stretch of rendered text, to search for written-out URIs */
	void (*text)(void *ctx, const char *s, size_t n);
	/* the decoded value of an href, src, action or background attribute */
	void (*attr)(void *ctx, const char *s, size_t n);
};

/*
 * html_render - *out_r (owned by the caller, free its p) gets s[0, n)
 * rendered: markup, scripts, styles and comments removed, character
 * references decoded, <br> a line break, block elements paragraph
 * breaks, an image its alt text.  out_r->oom tells of a failed
 * allocation.
 */
void html_render(const char *s, size_t n, const struct html_uri_sink *uris, struct buf *out_r);

#endif
