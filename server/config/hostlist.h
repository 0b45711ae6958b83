/* hostlist.h: server.allowed_hosts, the Host values loopd answers for (what
 * stops a DNS-rebinding page, whose requests carry its own host name). The
 * value is parsed once, when it is set; a request's Host is matched against
 * it on the session's slow path only (guard.h caches verdicts by id).
 *
 * The value: "auto" (the default), or a comma-separated list of
 *   name          localhost, loopd.example (letters, digits, '-', '_', '.')
 *   .suffix       the name and every name below it: .example.com
 *   *.suffix      every name below it, not the name itself: *.localhost
 *   IP literal    127.0.0.2, [::1]
 *   loopback      localhost, *.localhost, 127.0.0.1, [::1] and server.listen's address
 *   *             any Host
 * each with an optional :PORT; an entry without one matches any port (a
 * forwarded port, a published container port). "auto" is "loopback" when
 * server.listen is a loopback address (127.0.0.0/8, ::1, localhost) and "*"
 * otherwise. A request without a Host (HTTP/1.0) is always allowed. */
#ifndef LOOPD_HOSTLIST_H
#define LOOPD_HOSTLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTLIST_MAX 16        /* entries */
#define HOSTLIST_TEXT_MAX 256  /* the value as printed, NUL included */

typedef struct hostlist_entry {
  uint8_t kind;               /* HOSTLIST_* (hostlist.c) */
  uint8_t name_off, name_len; /* the name in text (without '.', "*." or the port) */
  uint8_t ip_len;             /* 4 or 16 for an IP literal */
  uint16_t port;              /* 0: any */
  unsigned char ip[16];
} hostlist_entry_t;

typedef struct hostlist {
  char text[HOSTLIST_TEXT_MAX]; /* first: what --print-config writes */
  /* A hash of text, never 0: a verdict remembered for one id holds for
   * every list that reads the same (a reload that changes the list changes
   * it), and equal configs stay equal byte for byte. */
  uint64_t id;
  uint8_t n;
  bool automatic; /* the value is "auto" */
  hostlist_entry_t e[HOSTLIST_MAX];
} hostlist_t;

/* Parses value (at most max_len bytes) into h. 0, or -EINVAL with a
 * one-line message naming key, value and what is accepted. */
int hostlist_set(hostlist_t *h, const char *key, const char *value, size_t max_len, char *err,
                 size_t errlen);

/* Whether a Host value (already valid syntax: reg-name, IPv4 or [IPv6], an
 * optional :port) is allowed; listen is server.listen ("auto" and
 * "loopback" read it). */
bool hostlist_allows(const hostlist_t *h, const char *listen, const char *host, size_t len);

#endif
