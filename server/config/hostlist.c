/* hostlist.c: parsing server.allowed_hosts and matching a Host against it. */
#include "hostlist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

enum {
  HOSTLIST_NAME,    /* exactly this name */
  HOSTLIST_SUFFIX,  /* .name: the name and every name below it */
  HOSTLIST_SUB,     /* *.name: every name below it */
  HOSTLIST_IP,      /* an IPv4 or IPv6 address */
  HOSTLIST_ANY,     /* * */
  HOSTLIST_LOOPBACK /* loopback */
};

#define ACCEPTED                                                                                   \
  "expected auto, or a comma-separated list of names, .suffix, *.suffix, IP addresses ([v6] in "   \
  "brackets), loopback or *, each with an optional :PORT"

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c; }

static bool eq_nocase(const char *a, size_t an, const char *b, size_t bn) {
  if (an != bn)
    return false;
  for (size_t i = 0; i < an; i++)
    if (lower(a[i]) != lower(b[i]))
      return false;
  return true;
}

static bool name_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

/* A port 1..65535 from decimal digits; -EINVAL otherwise. */
static int parse_port(const char *s, size_t n) {
  if (n == 0 || n > 5)
    return -EINVAL;
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EINVAL;
    v = v * 10 + (s[i] - '0');
  }
  return v >= 1 && v <= 65535 ? v : -EINVAL;
}

/* An IPv4 (v6 false) or IPv6 address s[0..n) into ip: 4, 16, or 0 if it is none. */
static int parse_ip(const char *s, size_t n, bool v6, unsigned char *ip) {
  char tmp[64];
  if (n == 0 || n >= sizeof tmp)
    return 0;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  if (inet_pton(v6 ? AF_INET6 : AF_INET, tmp, ip) != 1)
    return 0;
  return v6 ? 16 : 4;
}

static bool digits_and_dots(const char *s, size_t n) {
  bool digit = false;
  for (size_t i = 0; i < n; i++) {
    if (s[i] >= '0' && s[i] <= '9')
      digit = true;
    else if (s[i] != '.')
      return false;
  }
  return digit;
}

/* A name of an entry: letters, digits, '-', '_', dots between labels. */
static const char *check_name(const char *s, size_t n) {
  if (n == 0)
    return "an empty name";
  for (size_t i = 0; i < n; i++) {
    if (!name_byte(s[i]))
      return s[i] == '*' ? "'*' only as the whole entry or before a dot" : "a byte a name cannot hold";
    if (s[i] == '.' && (i == 0 || s[i - 1] == '.'))
      return "an empty label";
  }
  return NULL;
}

/* Splits an entry into its host part and port (0: none). NULL or the problem. */
static const char *split_port(const char *s, size_t n, size_t *hn, uint16_t *port) {
  const char *colon = NULL;
  *port = 0;
  if (n > 0 && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (close == NULL)
      return "a '[' without its ']'";
    if ((size_t)(close + 1 - s) < n && close[1] != ':')
      return "something after ']' that is not :PORT";
    colon = (size_t)(close + 1 - s) < n ? close + 1 : NULL;
  } else {
    colon = memrchr(s, ':', n);
    if (colon != NULL && memchr(s, ':', (size_t)(colon - s)) != NULL)
      return "an IPv6 address without [brackets]";
  }
  *hn = colon != NULL ? (size_t)(colon - s) : n;
  if (colon != NULL) {
    int p = parse_port(colon + 1, n - *hn - 1);
    if (p < 0)
      return "a port that is not 1 to 65535";
    *port = (uint16_t)p;
  }
  return NULL;
}

/* One entry, s[0..n) at offset off of the text. NULL or the problem. */
static const char *parse_entry(hostlist_entry_t *e, const char *s, size_t n, size_t off) {
  size_t hn;
  const char *why = split_port(s, n, &hn, &e->port);
  if (why != NULL)
    return why;
  size_t skip = 0;
  e->ip_len = 0;
  if (hn == 1 && s[0] == '*')
    e->kind = HOSTLIST_ANY;
  else if (eq_nocase(s, hn, "loopback", 8))
    e->kind = HOSTLIST_LOOPBACK;
  else if (eq_nocase(s, hn, "auto", 4))
    return "auto stands alone, not in a list";
  else if (s[0] == '[') {
    e->kind = HOSTLIST_IP;
    if ((e->ip_len = (uint8_t)parse_ip(s + 1, hn - 2, true, e->ip)) == 0)
      return "an invalid IPv6 address";
  } else if (digits_and_dots(s, hn)) {
    e->kind = HOSTLIST_IP;
    if ((e->ip_len = (uint8_t)parse_ip(s, hn, false, e->ip)) == 0)
      return "an invalid IPv4 address";
  } else {
    e->kind = HOSTLIST_NAME;
    if (hn > 2 && s[0] == '*' && s[1] == '.')
      e->kind = HOSTLIST_SUB, skip = 2;
    else if (hn > 1 && s[0] == '.')
      e->kind = HOSTLIST_SUFFIX, skip = 1;
    size_t len = hn - skip;
    if (len > 1 && s[skip + len - 1] == '.')
      len--; /* a fully qualified name's final dot */
    if ((why = check_name(s + skip, len)) != NULL)
      return why;
    e->name_len = (uint8_t)len;
  }
  e->name_off = (uint8_t)(off + skip);
  return NULL;
}

static size_t trim(const char **s, size_t n) {
  while (n > 0 && (**s == ' ' || **s == '\t'))
    (*s)++, n--;
  while (n > 0 && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
    n--;
  return n;
}

/* Fills h from the list; NULL or the problem (*at: which entry, from 1). */
static const char *parse_list(hostlist_t *h, const char *value, size_t *at) {
  size_t len = 0;
  h->n = 0;
  for (const char *p = value;; p++) {
    const char *end = strchr(p, ',');
    size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
    const char *s = p;
    n = trim(&s, n);
    *at = h->n + 1u;
    if (n == 0)
      return "an empty entry";
    if (h->n == HOSTLIST_MAX)
      return "more than 16 entries";
    if (len > 0)
      h->text[len++] = ',';
    memcpy(h->text + len, s, n);
    h->text[len + n] = '\0';
    const char *why = parse_entry(&h->e[h->n], h->text + len, n, len);
    if (why != NULL)
      return why;
    len += n;
    h->n++;
    if (end == NULL)
      return NULL;
    p = end;
  }
}

int hostlist_set(hostlist_t *h, const char *key, const char *value, size_t max_len, char *err,
                 size_t errlen) {
  hostlist_t t;
  memset(&t, 0, sizeof t);
  size_t at = 0;
  const char *why = NULL;
  if (strlen(value) > max_len || max_len >= sizeof t.text)
    why = "too long for a config file line";
  else if (strcmp(value, "auto") == 0)
    t.automatic = true, strcpy(t.text, "auto");
  else
    why = parse_list(&t, value, &at);
  if (why != NULL && at > 0)
    return loopd_errf(-EINVAL, err, errlen, "%s = \"%s\": entry %zu is %s (%s)", key, value, at,
                      why, ACCEPTED);
  if (why != NULL)
    return loopd_errf(-EINVAL, err, errlen, "%s = \"%s\": %s (%s)", key, value, why, ACCEPTED);
  t.id = UINT64_C(14695981039346656037); /* FNV-1a */
  for (const char *p = t.text; *p != '\0'; p++)
    t.id = (t.id ^ (unsigned char)*p) * UINT64_C(1099511628211);
  t.id += t.id == 0;
  *h = t;
  return 0;
}

/* ---- matching ---- */

/* A Host value taken apart. */
typedef struct host_view {
  const char *name; /* the host without port (brackets kept off) */
  size_t name_len;
  int port; /* 0: none; -1: not a port any entry names */
  uint8_t ip_len;
  unsigned char ip[16];
} host_view_t;

static void view_of(const char *host, size_t len, host_view_t *v) {
  const char *colon = NULL;
  v->ip_len = 0;
  v->port = 0;
  if (len > 0 && host[0] == '[') {
    const char *close = memchr(host, ']', len);
    size_t end = close != NULL ? (size_t)(close - host) : len;
    v->name = host + 1;
    v->name_len = end > 0 ? end - 1 : 0;
    v->ip_len = (uint8_t)parse_ip(v->name, v->name_len, true, v->ip);
    colon = close != NULL && (size_t)(close + 1 - host) < len ? close + 1 : NULL;
  } else {
    colon = memchr(host, ':', len);
    v->name = host;
    v->name_len = colon != NULL ? (size_t)(colon - host) : len;
    if (v->name_len > 1 && v->name[v->name_len - 1] == '.')
      v->name_len--; /* "localhost." is localhost */
    if (digits_and_dots(v->name, v->name_len))
      v->ip_len = (uint8_t)parse_ip(v->name, v->name_len, false, v->ip);
  }
  if (colon != NULL && (size_t)(host + len - colon) > 1) {
    v->port = parse_port(colon + 1, (size_t)(host + len - colon) - 1);
  }
}

/* server.listen's address (HOST:PORT or [V6]:PORT) as a Host would name it. */
static void listen_view(const char *listen, host_view_t *v) {
  const char *colon = listen[0] == '[' ? strchr(listen, ']') : strrchr(listen, ':');
  size_t n = colon != NULL ? (size_t)(colon - listen) + (listen[0] == '[') : strlen(listen);
  view_of(listen, n, v);
}

static bool is_loopback_ip(const host_view_t *v) {
  static const unsigned char v6_loop[16] = {[15] = 1};
  static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
  if (v->ip_len == 4)
    return v->ip[0] == 127;
  return v->ip_len == 16 && (memcmp(v->ip, v6_loop, 16) == 0 ||
                             (memcmp(v->ip, v4_mapped, 12) == 0 && v->ip[12] == 127));
}

static bool is_unspecified(const host_view_t *v) {
  static const unsigned char zero[16];
  return v->ip_len > 0 && memcmp(v->ip, zero, v->ip_len) == 0;
}

static bool listen_loopback(const char *listen) {
  host_view_t l;
  listen_view(listen, &l);
  return is_loopback_ip(&l) || eq_nocase(l.name, l.name_len, "localhost", 9);
}

static bool below(const host_view_t *v, const char *name, size_t n) {
  return v->name_len > n + 1 && v->name[v->name_len - n - 1] == '.' &&
         eq_nocase(v->name + v->name_len - n, n, name, n);
}

static bool same_ip(const host_view_t *a, const host_view_t *b) {
  return a->ip_len != 0 && a->ip_len == b->ip_len && memcmp(a->ip, b->ip, a->ip_len) == 0;
}

/* localhost, *.localhost, 127.0.0.1, [::1], and the address loopd listens on. */
static bool loopback_allows(const host_view_t *v, const char *listen) {
  static const host_view_t v4_one = {.ip_len = 4, .ip = {127, 0, 0, 1}};
  static const host_view_t v6_one = {.ip_len = 16, .ip = {[15] = 1}};
  if (v->ip_len == 0)
    return eq_nocase(v->name, v->name_len, "localhost", 9) || below(v, "localhost", 9);
  if (same_ip(v, &v4_one) || same_ip(v, &v6_one))
    return true;
  host_view_t l;
  listen_view(listen, &l);
  return !is_unspecified(&l) && same_ip(v, &l);
}

static bool entry_allows(const hostlist_t *h, const hostlist_entry_t *e, const host_view_t *v,
                         const char *listen) {
  if (e->port != 0 && e->port != (v->port == 0 ? 80 : v->port))
    return false;
  const char *name = h->text + e->name_off;
  switch (e->kind) {
  case HOSTLIST_ANY:
    return true;
  case HOSTLIST_LOOPBACK:
    return loopback_allows(v, listen);
  case HOSTLIST_IP:
    return v->ip_len == e->ip_len && memcmp(v->ip, e->ip, e->ip_len) == 0;
  case HOSTLIST_NAME:
    return v->ip_len == 0 && eq_nocase(v->name, v->name_len, name, e->name_len);
  case HOSTLIST_SUFFIX:
    if (v->ip_len == 0 && eq_nocase(v->name, v->name_len, name, e->name_len))
      return true;
    __attribute__((fallthrough));
  case HOSTLIST_SUB:
    return v->ip_len == 0 && below(v, name, e->name_len);
  default:
    return false;
  }
}

bool hostlist_allows(const hostlist_t *h, const char *listen, const char *host, size_t len) {
  host_view_t v;
  view_of(host, len, &v);
  if (h->automatic)
    return !listen_loopback(listen) || loopback_allows(&v, listen);
  for (uint8_t i = 0; i < h->n; i++)
    if (entry_allows(h, &h->e[i], &v, listen))
      return true;
  return false;
}
