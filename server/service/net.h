/* net.h: listening sockets, shared by both modes. Errors are negative
 * errnos (err.h). */
#ifndef LOOPD_NET_H
#define LOOPD_NET_H

#include <stddef.h>
#include <sys/socket.h>

#include "config.h"

/* Resolves a server.listen value into a socket address; 0 or -EINVAL. */
int net_listen_addr(const char *listen, struct sockaddr_storage *ss);
/* socket, SO_REUSEADDR (and SO_REUSEPORT), bind, listen. The fd, or -errno. */
int net_listen_socket(const struct sockaddr_storage *ss, int backlog, int reuseport);
/* The port a bound socket has, or -errno. */
int net_bound_port(int fd);
/* Sets the port of an address. */
void net_set_port(struct sockaddr_storage *ss, int port);
/* "http://127.0.0.1:8080" or "http://[::1]:8080" */
void net_url(const struct sockaddr_storage *ss, int port, char *out, size_t outlen);
/* Formats a peer address as "127.0.0.1:40312" or "[::1]:40312". */
void net_peer_name(const struct sockaddr_storage *ss, char *out, size_t outlen);
/* Raises the open-files soft limit to the hard limit; returns the new soft
 * limit, or -errno when there is none to read. */
long net_raise_nofile(void);
/* Checks that want (<= 64) more descriptors could be opened now: 0, or -errno. */
int net_fd_headroom(int want);

#endif
