/*
 * netaddr.c - "host:port" parsing, resolution and formatting (see netaddr.h).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

bool netaddr_numeric_only;

/* netaddr_split - split "host:port" / "[v6]:port" into its parts */
bool
netaddr_split(const char *text, char *host, size_t host_size, char *port,
    size_t port_size, const char **error_r)
{
	const char *colon, *host_start = text, *host_end;

	if (text[0] == '[') {
		host_end = strchr(text, ']');
		if (host_end == NULL || host_end[1] != ':') {
			*error_r = "expected [address]:port";
			return false;
		}
		host_start = text + 1;
		colon = host_end + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL || memchr(text, ':', (size_t)(colon - text)) != NULL) {
			*error_r = "expected host:port (IPv6 as [address]:port)";
			return false;
		}
		host_end = colon;
	}
	size_t hlen = (size_t)(host_end - host_start), plen = strlen(colon + 1);
	if (hlen == 0 || hlen >= host_size) {
		*error_r = "bad host name";
		return false;
	}
	if (plen == 0 || plen >= port_size || strspn(colon + 1, "0123456789") != plen) {
		*error_r = "bad port number";
		return false;
	}
	memcpy(host, host_start, hlen);
	host[hlen] = '\0';
	memcpy(port, colon + 1, plen + 1);
	unsigned long p = strtoul(port, NULL, 10);
	if (p == 0 || p > 65535) {
		*error_r = "port out of range";
		return false;
	}
	return true;
}

/* netaddr_resolve - resolve "host:port" to its first address */
bool
netaddr_resolve(const char *text, struct netaddr *addr_r, char *error,
    size_t error_size)
{
	char host[256], port[8];
	const char *why;
	struct addrinfo hints, *res;

	if (!netaddr_split(text, host, sizeof(host), port, sizeof(port), &why)) {
		snprintf(error, error_size, "%s: %s", text, why);
		return false;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (netaddr_numeric_only ? AI_NUMERICHOST : 0);
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(error, error_size, "%s: %s", text, gai_strerror(rc));
		return false;
	}
	memcpy(&addr_r->ss, res->ai_addr, res->ai_addrlen);
	addr_r->len = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

/* netaddr_ip - the address without port; IPv4-mapped IPv6 shown as IPv4 */
void
netaddr_ip(const struct sockaddr *sa, char *buf, size_t size)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf, (socklen_t)size);
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)size);
	} else {
		snprintf(buf, size, "unknown");
	}
}

/* netaddr_format - "192.0.2.1:25" or "[2001:db8::1]:25" */
void
netaddr_format(const struct sockaddr *sa, char *buf, size_t size)
{
	char ip[NETADDR_TEXT_MAX];
	unsigned port = 0;

	netaddr_ip(sa, ip, sizeof(ip));
	if (sa->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	if (strchr(ip, ':') != NULL)
		snprintf(buf, size, "[%s]:%u", ip, port);
	else
		snprintf(buf, size, "%s:%u", ip, port);
}
