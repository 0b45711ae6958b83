/* config.c: the key table and everything that reads it. */
#include "config.h"
#include "err.h"
#include "fraction.h"
#include "query.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OFF(field) offsetof(config_t, field)
#define KIB 1024LL
#define MIB (1024LL * 1024)
#define GIB (1024LL * 1024 * 1024)
#define HOUR_MS 3600000LL

static const char *const mode_names[] = {"event", "threads", NULL};
static const char *const format_names[] = {"text", "json", NULL};

static const config_key_t keys[] = {
    {"server.listen", CFG_ADDR, "127.0.0.1:8080", 0, CONFIG_STR_MAX - 1, OFF(server.listen), NULL,
     "address to listen on: HOST:PORT, [V6]:PORT; port 0 picks a free port"},
    {"server.allowed_hosts", CFG_HOSTS, "auto", 0, HOSTLIST_TEXT_MAX - 1, OFF(server.allowed_hosts),
     NULL, "Host values answered (others: 421): auto, or names, .suffix, *.suffix, IPs, loopback, *"},
    {"server.mode", CFG_ENUM, "event", 0, 0, OFF(server.mode), mode_names,
     "event (libuv loops) or threads (one thread per connection)"},
    {"server.loops", CFG_INT_AUTO, "1", 1, 64, OFF(server.loops), NULL,
     "event loops, each on its own thread and SO_REUSEPORT listener; auto = usable cores"},
    {"server.backlog", CFG_INT, "511", 1, 65535, OFF(server.backlog), NULL, "listen backlog"},
    {"server.max_connections", CFG_INT, "10000", 1, 1000000, OFF(server.max_connections), NULL,
     "open connections beyond this get 503 and are closed at once"},
    {"server.shutdown_timeout_ms", CFG_INT, "10000", 0, HOUR_MS, OFF(server.shutdown_timeout_ms),
     NULL, "drain deadline after SIGTERM/SIGINT"},
    {"server.turn_budgets", CFG_BOOL, "on", 0, 1, OFF(server.turn_budgets), NULL,
     "event mode: each connection gets a bounded share of a loop turn; off = every ready "
     "connection runs in the turn it is ready (asyncio's one long freeze)"},
    {"limits.max_request_line_bytes", CFG_SIZE, "8192", 64, MIB, OFF(limits.max_request_line_bytes),
     NULL, "longer request line: 414"},
    {"limits.max_header_bytes", CFG_SIZE, "16384", 256, 16 * MIB, OFF(limits.max_header_bytes), NULL,
     "larger header section: 431"},
    {"limits.max_body_bytes", CFG_SIZE, "1048576", 0, 64 * GIB, OFF(limits.max_body_bytes), NULL,
     "larger body, declared or received: 413"},
    {"limits.header_timeout_ms", CFG_INT, "10000", 1, HOUR_MS, OFF(limits.header_timeout_ms), NULL,
     "headers not complete this long after the first byte: 408, close"},
    {"limits.body_timeout_ms", CFG_INT, "10000", 1, HOUR_MS, OFF(limits.body_timeout_ms), NULL,
     "no body bytes for this long: 408, close; also the send timeout"},
    {"limits.idle_timeout_ms", CFG_INT, "5000", 1, HOUR_MS, OFF(limits.idle_timeout_ms), NULL,
     "idle keep-alive connections are closed after this"},
    {"limits.max_requests_per_connection", CFG_INT, "0", 0, 1000000000,
     OFF(limits.max_requests_per_connection), NULL,
     "0 = unlimited; else the last response says Connection: close"},
    {"work.threads", CFG_INT, "4", 1, 1024, OFF(work.threads), NULL,
     "thread-pool size for /slow (UV_THREADPOOL_SIZE)"},
    {"work.queue_limit", CFG_INT, "256", 1, 1000000, OFF(work.queue_limit), NULL,
     "queued + running jobs; beyond: 503 with Retry-After"},
    {"work.max_ms", CFG_INT, "10000", 0, HOUR_MS, OFF(work.max_ms), NULL,
     "largest ms any route accepts; beyond: 400"},
    {"monitor.heartbeat_ms", CFG_INT, "100", 1, 60000, OFF(monitor.heartbeat_ms), NULL,
     "heartbeat interval"},
    {"monitor.sample_ms", CFG_INT, "10", 1, 10000, OFF(monitor.sample_ms), NULL,
     "lag sampling resolution"},
    {"monitor.stall_ms", CFG_INT, "100", 1, HOUR_MS, OFF(monitor.stall_ms), NULL,
     "a loop turn longer than this is a stall, logged with its culprit"},
    {"monitor.unhealthy_lag_ms", CFG_INT, "500", 1, HOUR_MS, OFF(monitor.unhealthy_lag_ms), NULL,
     "/healthz turns 503 above this lag"},
    {"monitor.shed_lag_ms", CFG_INT, "0", 0, HOUR_MS, OFF(monitor.shed_lag_ms), NULL,
     "0 = off; else non-monitor routes answer 503 + Retry-After while lag is above it"},
    {"monitor.shed_utilization", CFG_FRACTION, "0", 0, CONFIG_FRACTION_ONE,
     OFF(monitor.shed_utilization), NULL,
     "0 = off; else 0..1: non-monitor routes answer 503 while the last second's utilization "
     "is above it"},
    {"monitor.max_event_streams", CFG_INT, "16", 1, 10000, OFF(monitor.max_event_streams), NULL,
     "open /events streams (dashboards) at once; beyond: 503 + Retry-After"},
    {"routes.block", CFG_BOOL, "on", 0, 1, OFF(routes.block), NULL,
     "/block and /cpu exist (they exist to show the mistake)"},
    {"log.access", CFG_STRING, "off", 1, CONFIG_PATH_MAX - 1, OFF(log.access), NULL,
     "off, stdout, stderr or a file path; written off the loop"},
    {"log.format", CFG_ENUM, "text", 0, 0, OFF(log.format), format_names,
     "text (combined-log style) or json"},
    {"threads.stack_kb", CFG_INT, "0", 0, 1048576, OFF(threads.stack_kb), NULL,
     "thread-mode stack size in KiB (0 = system default, else at least 64)"},
};

const config_key_t *config_keys(size_t *n) {
  *n = sizeof keys / sizeof keys[0];
  return keys;
}

/* The keys SIGHUP cannot change: what the running process was built around
 * at start (its listening sockets, loops, thread pool and thread stacks, the
 * monitor's timers and the windows their samples fill). Every other key,
 * later ones included, changes live. */
static const char *const restart_keys[] = {
    "server.listen", "server.mode",       "server.loops",      "server.backlog",
    "work.threads",  "monitor.heartbeat_ms", "monitor.sample_ms", "threads.stack_kb",
};

bool config_key_restart(const config_key_t *k) {
  for (size_t i = 0; i < sizeof restart_keys / sizeof restart_keys[0]; i++)
    if (strcmp(k->name, restart_keys[i]) == 0)
      return true;
  return false;
}

static bool key_is_text(const config_key_t *k) { return k->type == CFG_STRING || k->type == CFG_ADDR; }

bool config_key_same(const config_t *a, const config_t *b, const config_key_t *k) {
  const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
  if (key_is_text(k) || k->type == CFG_HOSTS) /* a host list's text comes first */
    return strcmp(fa, fb) == 0;
  return *(const int64_t *)(const void *)fa == *(const int64_t *)(const void *)fb;
}

void config_key_copy(config_t *dst, const config_t *src, const config_key_t *k) {
  char *to = (char *)dst + k->offset;
  const char *from = (const char *)src + k->offset;
  if (key_is_text(k))
    memcpy(to, from, strlen(from) + 1);
  else
    memcpy(to, from, sizeof(int64_t));
}

static const config_key_t *key_find(const char *name) {
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strcmp(keys[i].name, name) == 0)
      return &keys[i];
  return NULL;
}

void config_defaults(config_t *c) {
  char err[256];
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (config_set(c, keys[i].name, keys[i].def, err, sizeof err) != 0)
      abort(); /* a bad default is a programming error */
}

/* Parses a decimal integer with an optional binary size suffix; whole string.
 * 0, -EINVAL (not a number) or -ERANGE. */
static int parse_int(const char *s, int64_t *out, int allow_suffix) {
  if (!isdigit((unsigned char)s[0]) && !(s[0] == '-' && isdigit((unsigned char)s[1])))
    return -EINVAL;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno != 0)
    return -ERANGE;
  long long mul = 1;
  if (allow_suffix && *end != '\0' && end[1] == '\0') {
    switch (*end) {
    case 'k': case 'K': mul = KIB; end++; break;
    case 'm': case 'M': mul = MIB; end++; break;
    case 'g': case 'G': mul = GIB; end++; break;
    default: break;
    }
  }
  if (*end != '\0')
    return -EINVAL;
  if (v > INT64_MAX / mul || v < INT64_MIN / mul)
    return -ERANGE;
  *out = v * mul;
  return 0;
}

int config_split_listen(const char *addr, char *host, size_t hostlen, int *port) {
  const char *colon;
  const char *h = addr;
  size_t hl;
  if (addr[0] == '[') {
    const char *close = strchr(addr, ']');
    if (close == NULL || close[1] != ':')
      return -EINVAL;
    h = addr + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(addr, ':');
    if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL)
      return -EINVAL;
    hl = (size_t)(colon - addr);
  }
  if (hl == 0 || hl >= hostlen)
    return -EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  int64_t p;
  if (parse_int(colon + 1, &p, 0) != 0 || p < 0 || p > 65535)
    return -EINVAL;
  *port = (int)p;
  unsigned char tmp[16];
  if (strcmp(host, "localhost") == 0)
    return 0;
  int family = addr[0] == '[' ? AF_INET6 : AF_INET;
  return inet_pton(family, host, tmp) == 1 ? 0 : -EINVAL;
}

/* The longest line, newline not counted, a config file may have: inih reads
 * each line into INI_MAX_LINE bytes (200 in Debian's libinih), its newline
 * and NUL included, and would read the rest of a longer one as a line of its
 * own. */
#define LINE_MAX_CHARS (INI_MAX_LINE - 2)

/* The longest value of k that --print-config can write as "name = value"
 * within LINE_MAX_CHARS, and at most the table's own limit. */
static size_t value_max(const config_key_t *k) {
  size_t name = strlen(strchr(k->name, '.') + 1);
  size_t fits = (size_t)LINE_MAX_CHARS - name - strlen(" = ");
  return fits < (size_t)k->max ? fits : (size_t)k->max;
}

/* Whether a string value survives --print-config and a reload: the INI
 * reader (inih) trims spaces around a value and takes a ';' at its start or
 * after a space for an inline comment. '#' only starts a comment line. */
static int str_reads_back(const char *v, size_t n) {
  if (n > 0 && (v[0] == ' ' || v[n - 1] == ' ' || v[0] == ';'))
    return 0;
  return strstr(v, " ;") == NULL;
}

/* A value wrapped in a matched pair of quotes. The config file drops one
 * such pair (key = "value" reads as key = value); a value still quoted after
 * that, or quoted in the environment or --set, is refused: printed back, its
 * quotes would be dropped. */
static bool quoted(const char *v, size_t n) {
  return n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0];
}

/* A quote at either end of a value: a matched pair (quoted), or a typo. */
static bool quote_at_end(const char *v, size_t n) {
  return n > 0 && (v[0] == '"' || v[0] == '\'' || v[n - 1] == '"' || v[n - 1] == '\'');
}

/* The setters, one per type: 0, or -EINVAL with the message. */
static int set_int(const config_key_t *k, int64_t *field, const char *value, char *err,
                   size_t errlen) {
  int64_t v;
  if (k->type == CFG_INT_AUTO && strcmp(value, "auto") == 0) {
    *field = 0;
    return 0;
  }
  if (parse_int(value, &v, k->type == CFG_SIZE) != 0 || v < k->min || v > k->max)
    return loopd_errf(-EINVAL, err, errlen, "%s = \"%s\": expected %s from %lld to %lld%s", k->name,
                      value, k->type == CFG_SIZE ? "a size in bytes" : "an integer",
                      (long long)k->min, (long long)k->max,
                      k->type == CFG_SIZE       ? " (suffix k, m or g allowed)"
                      : k->type == CFG_INT_AUTO ? ", or auto"
                                                : "");
  if (k->offset == OFF(threads.stack_kb) && v != 0 && v < THREADS_STACK_MIN_KB)
    return loopd_errf(-EINVAL, err, errlen,
                      "%s = \"%s\": expected 0 (system default) or at least %d", k->name, value,
                      THREADS_STACK_MIN_KB);
  *field = v;
  return 0;
}

/* "0.9", "1", ".25": digits with at most one point, rounded to millionths. */
static int set_fraction(const config_key_t *k, int64_t *field, const char *value, char *err,
                        size_t errlen) {
  int64_t v = fraction_parse(value);
  if (v < k->min || v > k->max)
    return loopd_errf(-EINVAL, err, errlen, "%s = \"%s\": expected a number from %g to %g",
                      k->name, value, (double)k->min / FRACTION_ONE, (double)k->max / FRACTION_ONE);
  *field = v;
  return 0;
}

static int set_bool(const config_key_t *k, int64_t *field, const char *value, char *err,
                    size_t errlen) {
  int b = query_bool(value, strlen(value)); /* the same spellings as query flags */
  if (b < 0)
    return loopd_errf(-EINVAL, err, errlen, "%s = \"%s\": expected " QUERY_BOOL_SPELLINGS,
                      k->name, value);
  *field = b;
  return 0;
}

static int set_enum(const config_key_t *k, int64_t *field, const char *value, char *err,
                    size_t errlen) {
  for (int64_t i = 0; k->names[i] != NULL; i++) {
    if (strcmp(value, k->names[i]) == 0) {
      *field = i;
      return 0;
    }
  }
  char list[128] = "";
  for (size_t i = 0; k->names[i] != NULL; i++) {
    if (i)
      strncat(list, " or ", sizeof list - strlen(list) - 1);
    strncat(list, k->names[i], sizeof list - strlen(list) - 1);
  }
  return loopd_errf(-EINVAL, err, errlen, "%s = \"%s\": expected %s", k->name, value, list);
}

static int set_string(const config_key_t *k, char *field, const char *value, char *err,
                      size_t errlen) {
  size_t n = strlen(value);
  size_t max = value_max(k);
  int ok = n >= (size_t)k->min && n <= max;
  for (size_t i = 0; ok && i < n; i++)
    if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
      ok = 0;
  if (!ok)
    return loopd_errf(-EINVAL, err, errlen,
                      "%s = \"%s\": expected printable text of %lld to %zu bytes (a config file "
                      "line holds at most %d)",
                      k->name, value, (long long)k->min, max, LINE_MAX_CHARS);
  if (quote_at_end(value, n))
    return loopd_errf(-EINVAL, err, errlen,
                      "%s = \"%s\": %s (a config file drops one matched pair of quotes; "
                      "elsewhere give the value without them)",
                      k->name, value, quoted(value, n) ? "a value in quotes" : "an unmatched quote");
  if (!str_reads_back(value, n))
    return loopd_errf(-EINVAL, err, errlen,
                      "%s = \"%s\": expected text without a leading or trailing space and "
                      "without a ';' first or after a space (a config file reads those as a "
                      "comment)",
                      k->name, value);
  memcpy(field, value, n + 1);
  return 0;
}

static int set_addr(const config_key_t *k, char *field, const char *value, char *err,
                    size_t errlen) {
  char host[CONFIG_STR_MAX];
  int port;
  if (strlen(value) > value_max(k) || config_split_listen(value, host, sizeof host, &port) != 0)
    return loopd_errf(
        -EINVAL, err, errlen,
        "%s = \"%s\": expected HOST:PORT with an IP address (127.0.0.1:8080, [::1]:8080, "
        "0.0.0.0:0) or localhost:PORT",
        k->name, value);
  memcpy(field, value, strlen(value) + 1);
  return 0;
}

static int set_checked(const config_key_t *k, config_t *c, const char *value, char *err,
                       size_t errlen) {
  void *field = (char *)c + k->offset;
  switch (k->type) {
  case CFG_INT:
  case CFG_SIZE:
  case CFG_INT_AUTO:
    return set_int(k, field, value, err, errlen);
  case CFG_BOOL:
    return set_bool(k, field, value, err, errlen);
  case CFG_ENUM:
    return set_enum(k, field, value, err, errlen);
  case CFG_STRING:
    return set_string(k, field, value, err, errlen);
  case CFG_ADDR:
    return set_addr(k, field, value, err, errlen);
  case CFG_FRACTION:
    return set_fraction(k, field, value, err, errlen);
  case CFG_HOSTS:
    return hostlist_set(field, k->name, value, value_max(k), err, errlen);
  }
  return loopd_errf(-EINVAL, err, errlen, "%s: no such type", k->name);
}

int config_set(config_t *c, const char *key, const char *value, char *err, size_t errlen) {
  const config_key_t *k = key_find(key);
  if (k == NULL)
    return loopd_errf(-ENOENT, err, errlen, "unknown key \"%s\" (loopd --help lists them)", key);
  return set_checked(k, c, value, err, errlen);
}

#define NKEYS (sizeof keys / sizeof keys[0])

struct file_ctx {
  config_t *c;
  FILE *f;
  int lines;     /* lines read so far */
  int code;      /* the first error the reader or a setter found, or 0 */
  int code_line; /* its line */
  int first_line[NKEYS]; /* where each key was set in this file; 0: not yet */
  char err[512];
};

/* inih's reader (fgets' contract): one line into size bytes, or NULL at the
 * end. A line that does not fit, or holds a NUL byte, ends the file with an
 * error: inih would read the rest of it as a line of its own. */
static char *file_read_line(char *line, int size, void *user) {
  struct file_ctx *fc = user;
  int n = 0, ch;
  if (fc->code != 0)
    return NULL; /* report only the first error */
  while ((ch = getc(fc->f)) != EOF && ch != '\n') {
    if (ch == '\0')
      fc->code = loopd_errf(-EINVAL, fc->err, sizeof fc->err, "a NUL byte (expected text)");
    else if (n >= size - 2)
      fc->code = loopd_errf(-EINVAL, fc->err, sizeof fc->err,
                            "line longer than %d bytes (the INI reader's limit)", size - 2);
    if (fc->code != 0) {
      fc->code_line = fc->lines + 1;
      return NULL;
    }
    line[n++] = (char)ch;
  }
  if (ch == EOF && n == 0)
    return NULL;
  if (ch == '\n')
    line[n++] = '\n';
  line[n] = '\0';
  fc->lines++;
  return line;
}

/* One "key = value" of the file: a known key given once, its value
 * unquoted (one matched pair of quotes dropped). 0 or the error, said. */
static int file_set(struct file_ctx *fc, const char *key, const char *value) {
  const config_key_t *k = key_find(key);
  if (k == NULL)
    return loopd_errf(-ENOENT, fc->err, sizeof fc->err,
                      "unknown key \"%s\" (loopd --help lists them)", key);
  int *first = &fc->first_line[k - keys];
  if (*first != 0)
    return loopd_errf(-EINVAL, fc->err, sizeof fc->err, "%s given twice (first at line %d)",
                      k->name, *first);
  *first = fc->lines;
  char plain[INI_MAX_LINE];
  size_t n = strlen(value);
  if (quoted(value, n) && n - 2 < sizeof plain) {
    memcpy(plain, value + 1, n - 2);
    plain[n - 2] = '\0';
    value = plain;
  }
  return set_checked(k, fc->c, value, fc->err, sizeof fc->err);
}

static int ini_cb(void *user, const char *section, const char *name, const char *value) {
  struct file_ctx *fc = user;
  char key[128];
  if (fc->code != 0)
    return 1; /* report only the first error */
  if (section[0] == '\0')
    fc->code = loopd_errf(-EINVAL, fc->err, sizeof fc->err, "key \"%s\" outside a [section]", name);
  else if (snprintf(key, sizeof key, "%s.%s", section, name) >= (int)sizeof key)
    fc->code = loopd_errf(-ENOENT, fc->err, sizeof fc->err,
                          "unknown key \"%s.%s\" (loopd --help lists them)", section, name);
  else
    fc->code = file_set(fc, key, value);
  fc->code_line = fc->lines;
  return fc->code == 0;
}

int config_load_file(config_t *c, const char *path, char *err, size_t errlen) {
  struct file_ctx fc = {.c = c, .f = fopen(path, "r")};
  if (fc.f == NULL) {
    int e = errno != 0 ? -errno : -EIO;
    return loopd_errf(e, err, errlen, "%s: cannot open: %s", path, loopd_strerror(e));
  }
  errno = 0;
  int line = ini_parse_stream(file_read_line, &fc, ini_cb, &fc);
  int read_error = ferror(fc.f) ? (errno != 0 ? -errno : -EIO) : 0;
  fclose(fc.f);
  if (read_error != 0) /* a directory, an I/O error */
    return loopd_errf(read_error, err, errlen, "%s: cannot read: %s", path,
                      loopd_strerror(read_error));
  if (line == -2)
    return loopd_errf(-ENOMEM, err, errlen, "%s: out of memory", path);
  if (line > 0 && (fc.code == 0 || line < fc.code_line))
    return loopd_errf(-EINVAL, err, errlen,
                      "%s:%d: syntax error (expected [section] or key = value)", path, line);
  if (fc.code != 0)
    return loopd_errf(fc.code, err, errlen, "%s:%d: %s", path, fc.code_line, fc.err);
  return 0;
}

/* "server.max_connections" -> "LOOPD_SERVER_MAX_CONNECTIONS" */
static void env_name(const char *key, char *out, size_t outlen) {
  size_t n = (size_t)snprintf(out, outlen, "LOOPD_%s", key);
  for (size_t i = 6; i < n && i < outlen; i++)
    out[i] = out[i] == '.' ? '_' : (char)toupper((unsigned char)out[i]);
}

/* The key an environment variable's name (len bytes at e) stands for, or NULL. */
static const config_key_t *env_key(const char *e, size_t len) {
  char name[128];
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    env_name(keys[i].name, name, sizeof name);
    if (strlen(name) == len && strncmp(name, e, len) == 0)
      return &keys[i];
  }
  return NULL;
}

/* Only names under a known section are ours; LOOPD_BIN and friends are not. */
static bool env_ours(const char *e) {
  static const char *const sections[] = {"SERVER_", "LIMITS_", "WORK_",   "MONITOR_",
                                         "ROUTES_", "LOG_",    "THREADS_"};
  for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
    if (strncmp(e + 6, sections[i], strlen(sections[i])) == 0)
      return true;
  return false;
}

int config_load_env(config_t *c, char *const *env, char *err, size_t errlen) {
  int applied = 0;
  for (; env != NULL && *env != NULL; env++) {
    const char *e = *env;
    const char *eq = strchr(e, '=');
    if (strncmp(e, "LOOPD_", 6) != 0 || eq == NULL)
      continue;
    int len = (int)(eq - e);
    const config_key_t *k = env_key(e, (size_t)len);
    if (k == NULL && env_ours(e))
      return loopd_errf(-ENOENT, err, errlen, "%.*s: unknown setting (loopd --help lists the keys)",
                        len, e);
    if (k == NULL)
      continue;
    char msg[512];
    int r = set_checked(k, c, eq + 1, msg, sizeof msg);
    if (r != 0)
      return loopd_errf(r, err, errlen, "%.*s: %s", len, e, msg);
    applied++;
  }
  return applied;
}

void config_format_value(const config_t *c, const config_key_t *k, char *out, size_t outlen) {
  const void *field = (const char *)c + k->offset;
  int64_t v = *(const int64_t *)field;
  switch (k->type) {
  case CFG_INT_AUTO:
    if (v == 0) {
      snprintf(out, outlen, "auto");
      break;
    }
    __attribute__((fallthrough));
  case CFG_INT:
  case CFG_SIZE:
    snprintf(out, outlen, "%lld", (long long)v);
    break;
  case CFG_BOOL:
    snprintf(out, outlen, "%s", v ? "on" : "off");
    break;
  case CFG_ENUM:
    snprintf(out, outlen, "%s", k->names[v]);
    break;
  case CFG_STRING:
  case CFG_ADDR:
  case CFG_HOSTS: /* its text comes first */
    snprintf(out, outlen, "%s", (const char *)field);
    break;
  case CFG_FRACTION:
    fraction_format(v, out, outlen);
    break;
  }
}

void config_print(const config_t *c, FILE *f) {
  char section[32] = "";
  char value[CONFIG_PATH_MAX];
  fprintf(f, "# loopd effective configuration (loopd --print-config)\n");
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    const config_key_t *k = &keys[i];
    const char *dot = strchr(k->name, '.');
    size_t sl = (size_t)(dot - k->name);
    if (strlen(section) != sl || strncmp(section, k->name, sl) != 0) {
      snprintf(section, sizeof section, "%.*s", (int)sl, k->name);
      fprintf(f, "%s[%s]\n", i ? "\n" : "", section);
    }
    config_format_value(c, k, value, sizeof value);
    fprintf(f, "%s = %s\n", dot + 1, value);
  }
}

int config_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > INT_MAX ? INT_MAX : (int)n;
}

int config_loops(const config_t *c) {
  if (c->server.loops > 0)
    return (int)c->server.loops;
  int n = config_cpus();
  return n > 64 ? 64 : n;
}
