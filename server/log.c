/* log.c: stderr messages and the buffered access log. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#define AL_BUF_SIZE (1u << 20)   /* per buffer; two of them swap */
#define AL_FLUSH_MS 100          /* the writer wakes at least this often when busy */
#define AL_LINE_MAX 4096

struct access_log {
  int fd;
  bool own_fd;
  int format;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  char *fill; /* loop threads append here */
  size_t fill_len;
  char *spare; /* the writer writes this one out */
  bool stop;
  uint64_t dropped;
  uint64_t dropped_reported;
};

void log_msg(const char *fmt, ...) {
  char line[1024];
  int n = snprintf(line, sizeof line, "loopd: ");
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    return;
  n += m;
  if (n > (int)sizeof line - 2)
    n = (int)sizeof line - 2;
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}

/* Appends s to a log field: printable ASCII kept, quotes, backslashes and
 * other bytes escaped, so a client cannot forge log lines. */
static size_t put_escaped(char *out, size_t room, const char *s, size_t n, bool json) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < n && o + 6 < room; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out[o++] = (char)c;
    } else if (json) {
      memcpy(out + o, "\\u00", 4);
      out[o + 4] = hex[c >> 4];
      out[o + 5] = hex[c & 15];
      o += 6;
    } else {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  return o;
}

size_t access_log_format(int format, const access_entry_t *e, int64_t unix_ms, char *out,
                         size_t outlen) {
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t sec = (time_t)(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  size_t o = 0;
  const size_t field = outlen / 4;
  int n;
#define ROOM (outlen - o)
#define ADV(x) do { if ((x) > 0 && (size_t)(x) < ROOM) o += (size_t)(x); } while (0)
  if (format == LOG_FORMAT_JSON) {
    n = snprintf(out, outlen,
                 "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"remote\":\"%s\","
                 "\"method\":\"%s\",\"target\":\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(unix_ms % 1000), e->remote, e->method);
    ADV(n);
    o += put_escaped(out + o, field < ROOM ? field : ROOM, e->target, e->target_len, true);
    n = snprintf(out + o, ROOM, "\",\"version\":\"%d.%d\",\"status\":%d,\"bytes\":%llu,"
                 "\"duration_ms\":%.3f,\"referer\":\"",
                 e->http_major, e->http_minor, e->status, (unsigned long long)e->bytes,
                 (double)e->duration_us / 1000.0);
    ADV(n);
    o += put_escaped(out + o, field < ROOM ? field : ROOM, e->referer, e->referer_len, true);
    n = snprintf(out + o, ROOM, "\",\"user_agent\":\"");
    ADV(n);
    o += put_escaped(out + o, field < ROOM ? field : ROOM, e->user_agent, e->user_agent_len, true);
    n = snprintf(out + o, ROOM, "\"}\n");
    ADV(n);
  } else {
    n = snprintf(out, outlen, "%s - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"%s ", e->remote,
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, e->method);
    ADV(n);
    o += put_escaped(out + o, field < ROOM ? field : ROOM, e->target, e->target_len, false);
    n = snprintf(out + o, ROOM, " HTTP/%d.%d\" %d %llu \"", e->http_major, e->http_minor,
                 e->status, (unsigned long long)e->bytes);
    ADV(n);
    if (e->referer_len)
      o += put_escaped(out + o, field < ROOM ? field : ROOM, e->referer, e->referer_len, false);
    else if (ROOM > 1)
      out[o++] = '-';
    n = snprintf(out + o, ROOM, "\" \"");
    ADV(n);
    if (e->user_agent_len)
      o += put_escaped(out + o, field < ROOM ? field : ROOM, e->user_agent, e->user_agent_len,
                       false);
    else if (ROOM > 1)
      out[o++] = '-';
    n = snprintf(out + o, ROOM, "\" %.3f\n", (double)e->duration_us / 1e6);
    ADV(n);
  }
#undef ROOM
#undef ADV
  if (o == 0 || out[o - 1] != '\n') { /* truncated: still one line */
    if (o >= outlen)
      o = outlen - 1;
    out[o++] = '\n';
  }
  return o;
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return; /* a full disk must not stop the server; lines are lost */
    }
    p += w;
    n -= (size_t)w;
  }
}

static void *writer_main(void *arg) {
  access_log_t *al = arg;
  pthread_mutex_lock(&al->mu);
  for (;;) {
    /* Batch: sleep a flush period unless the buffer is half full or we stop. */
    if (!al->stop && al->fill_len <= AL_BUF_SIZE / 2) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += AL_FLUSH_MS * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&al->cv, &al->mu, &ts);
    }
    if (al->fill_len == 0) {
      if (al->stop)
        break;
      continue;
    }
    char *out = al->fill;
    size_t n = al->fill_len;
    al->fill = al->spare;
    al->fill_len = 0;
    al->spare = out;
    uint64_t dropped = al->dropped;
    pthread_mutex_unlock(&al->mu);
    write_all(al->fd, out, n);
    if (dropped != al->dropped_reported) {
      log_msg("access log: %llu lines dropped so far (the writer fell behind)",
              (unsigned long long)dropped);
      al->dropped_reported = dropped;
    }
    pthread_mutex_lock(&al->mu);
  }
  pthread_mutex_unlock(&al->mu);
  return NULL;
}

access_log_t *access_log_new(const char *target, int format, char *err, size_t errlen) {
  if (strcmp(target, "off") == 0)
    return NULL;
  access_log_t *al = calloc(1, sizeof *al);
  if (al == NULL)
    goto nomem;
  al->format = format;
  if (strcmp(target, "stdout") == 0) {
    al->fd = STDOUT_FILENO;
  } else if (strcmp(target, "stderr") == 0) {
    al->fd = STDERR_FILENO;
  } else {
    al->fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (al->fd < 0) {
      snprintf(err, errlen, "log.access = \"%s\": cannot open: %s", target, strerror(errno));
      free(al);
      return NULL;
    }
    al->own_fd = true;
  }
  al->fill = malloc(AL_BUF_SIZE);
  al->spare = malloc(AL_BUF_SIZE);
  if (al->fill == NULL || al->spare == NULL)
    goto fail;
  pthread_mutex_init(&al->mu, NULL);
  pthread_cond_init(&al->cv, NULL);
  if (pthread_create(&al->thread, NULL, writer_main, al) != 0) {
    pthread_mutex_destroy(&al->mu);
    pthread_cond_destroy(&al->cv);
    goto fail;
  }
  return al;
fail:
  if (al->own_fd)
    close(al->fd);
  free(al->fill);
  free(al->spare);
  free(al);
nomem:
  snprintf(err, errlen, "access log: out of memory");
  return NULL;
}

void access_log_write(access_log_t *al, const access_entry_t *e) {
  char line[AL_LINE_MAX];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  size_t n = access_log_format(al->format, e, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                               line, sizeof line);
  pthread_mutex_lock(&al->mu);
  if (al->fill_len + n <= AL_BUF_SIZE) {
    memcpy(al->fill + al->fill_len, line, n);
    al->fill_len += n;
    if (al->fill_len > AL_BUF_SIZE / 2)
      pthread_cond_signal(&al->cv);
  } else {
    al->dropped++;
  }
  pthread_mutex_unlock(&al->mu);
}

uint64_t access_log_dropped(access_log_t *al) {
  pthread_mutex_lock(&al->mu);
  uint64_t d = al->dropped;
  pthread_mutex_unlock(&al->mu);
  return d;
}

void access_log_free(access_log_t *al) {
  if (al == NULL)
    return;
  pthread_mutex_lock(&al->mu);
  al->stop = true;
  pthread_cond_signal(&al->cv);
  pthread_mutex_unlock(&al->mu);
  pthread_join(al->thread, NULL);
  pthread_mutex_destroy(&al->mu);
  pthread_cond_destroy(&al->cv);
  if (al->own_fd)
    close(al->fd);
  free(al->fill);
  free(al->spare);
  free(al);
}
