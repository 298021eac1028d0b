/*
 * session.h - one client's SMTP session: the server side of moat.
 *
 * A session belongs to one worker thread for its whole life.  It reads the
 * client's commands (pipelined or not), answers in order, runs the filter
 * chain at each stage, relays MAIL and RCPT to its backend session live,
 * holds the message at DATA and replays it at end of data only when the
 * policy lets it through.  Lifetimes: the session owns its transaction
 * (reset at MAIL, RSET, EHLO and end of message), its backend session and
 * its reference to the configuration it started with.
 */
#ifndef MOAT_SESSION_H
#define MOAT_SESSION_H

#include <sys/socket.h>

struct worker;

/* session_accept - a new client connection (fd is the session's from now) */
void session_accept(struct worker *w, int fd, const struct sockaddr *sa, socklen_t salen);

/* session_drain_all - shutting down: finish sessions, force them after drain_timeout */
void session_drain_all(struct worker *w);

#endif
