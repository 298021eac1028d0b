/*
 * netaddr.h - "host:port" parsing, resolution and formatting of addresses.
 *
 * Resolution (getaddrinfo) blocks, so it is only called while loading the
 * configuration, never from an event loop.  Errors are written into a
 * caller buffer; nothing here logs or exits.
 */
#ifndef MOAT_NETADDR_H
#define MOAT_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* INET6_ADDRSTRLEN plus room for an IPv4-mapped prefix and brackets. */
#define NETADDR_TEXT_MAX 64

/* Set by the config fuzzer: resolve numeric addresses only, never DNS. */
extern bool netaddr_numeric_only;

struct netaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* netaddr_split - split "host:port" / "[v6]:port" into its parts */
bool netaddr_split(const char *text, char *host, size_t host_size,
    char *port, size_t port_size, const char **error_r);

/* netaddr_resolve - resolve "host:port" to its first address */
bool netaddr_resolve(const char *text, struct netaddr *addr_r, char *error,
    size_t error_size);

/* netaddr_ip - the address without port ("192.0.2.1", "2001:db8::1") */
void netaddr_ip(const struct sockaddr *sa, char *buf, size_t size);

/* netaddr_format - "192.0.2.1:25" or "[2001:db8::1]:25" */
void netaddr_format(const struct sockaddr *sa, char *buf, size_t size);

#endif
