/* log.c: stderr messages and the buffered access log. */
#include "log.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "date.h"
#include "escape.h"
#include "util.h"

#define AL_BUF_SIZE (1u << 20)   /* per buffer; two of them swap */
#define AL_FLUSH_MS 100          /* the writer wakes at least this often when busy */
#define AL_LINE_MAX 4096

struct access_log {
  int fd;     /* the writer thread's once it runs (it alone writes, reopens, closes) */
  bool own_fd;
  int format;
  char *path; /* the file (own_fd), for a reopen */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  char *fill; /* loop threads append here */
  size_t fill_len;
  char *spare; /* the writer writes this one out */
  bool stop;
  bool busy;   /* the writer is writing a batch out (without mu) */
  bool exited; /* the writer thread has returned */
  bool reopen; /* SIGUSR1: open the path again once what is queued is out */
  bool detached; /* released: the writer frees al when it ends */
  pthread_cond_t idle; /* flushers and closers wait here for the writer */
  uint64_t dropped;
  uint64_t dropped_reported;
};

/* ---- stderr: a bounded ring drained by one writer thread ----
 * A stderr nobody reads (a stuck log collector, a full pipe) must not block
 * the loop threads or the exit: log_msg only copies its line into the ring
 * (or drops it, counted, when the ring is full); the writer thread alone
 * blocks in write(2), and the exit waits for it only so long. */

#define LOG_RING (16u * 1024) /* a burst of ~100 lines; a stuck reader drops the rest */
#define LOG_LINE_MAX 1024

static struct {
  pthread_mutex_t mu;
  pthread_cond_t more;    /* the writer waits for lines */
  pthread_cond_t drained; /* log_stop waits for the writer */
  char ring[LOG_RING];
  size_t head, len;   /* queued bytes: ring[head .. head+len) (wrapping) */
  bool running, stop, exited;
  pthread_t thread;
  uint64_t dropped, dropped_reported;
} lg = {.mu = PTHREAD_MUTEX_INITIALIZER,
        .more = PTHREAD_COND_INITIALIZER,
        .drained = PTHREAD_COND_INITIALIZER};

static _Atomic uint64_t access_dropped_total; /* every access log's drops (there is one) */
static access_log_t *abandoned; /* a writer that would not stop: kept, not freed */

/* An absolute CLOCK_REALTIME time timeout_ms from now, for timed waits
 * (the condition variables here keep their default clock). */
static struct timespec due_in(uint64_t timeout_ms) {
  return clock_after_ms(CLOCK_REALTIME, timeout_ms);
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return; /* a full disk or a closed pipe must not stop the server; lines are lost */
    }
    p += w;
    n -= (size_t)w;
  }
}

/* Appends n bytes to the ring; false (nothing copied) when they do not fit. */
static bool ring_put(const char *p, size_t n) {
  if (LOG_RING - lg.len < n)
    return false;
  size_t tail = (lg.head + lg.len) % LOG_RING;
  size_t first = n < LOG_RING - tail ? n : LOG_RING - tail;
  memcpy(lg.ring + tail, p, first);
  memcpy(lg.ring, p + first, n - first);
  lg.len += n;
  return true;
}

static void *log_writer(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lg.mu);
  for (;;) {
    while (lg.len == 0 && lg.dropped == lg.dropped_reported && !lg.stop)
      pthread_cond_wait(&lg.more, &lg.mu);
    if (lg.len == 0 && lg.dropped != lg.dropped_reported) {
      char note[128];
      int n = snprintf(note, sizeof note, "loopd: %llu log lines dropped so far (stderr was not "
                       "read fast enough)\n", (unsigned long long)lg.dropped);
      lg.dropped_reported = lg.dropped;
      ring_put(note, (size_t)n);
    }
    if (lg.len == 0)
      break; /* stop, and all is out */
    size_t n = lg.len < LOG_RING - lg.head ? lg.len : LOG_RING - lg.head;
    const char *p = lg.ring + lg.head;
    pthread_mutex_unlock(&lg.mu);
    write_all(STDERR_FILENO, p, n); /* may block: only this thread waits */
    pthread_mutex_lock(&lg.mu);
    lg.head = (lg.head + n) % LOG_RING;
    lg.len -= n;
    if (lg.len == 0)
      pthread_cond_broadcast(&lg.drained);
  }
  lg.exited = true;
  pthread_cond_broadcast(&lg.drained);
  pthread_mutex_unlock(&lg.mu);
  return NULL;
}

/* Starts a writer thread with every signal blocked: signals are the main
 * thread's (or libuv's) business, and a handler must never run on a thread
 * that may be stuck in write(2). */
static int start_writer(pthread_t *th, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int r = pthread_create(th, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return -r; /* 0 or a negative errno, like the rest */
}

int log_start(void) {
  pthread_mutex_lock(&lg.mu);
  int r = lg.running ? 0 : start_writer(&lg.thread, log_writer, NULL);
  if (r == 0)
    lg.running = true;
  pthread_mutex_unlock(&lg.mu);
  return r;
}

/* Waits until every queued line is written or timeout_ms passed; mu held. */
static bool wait_drained(uint64_t timeout_ms, bool for_exit) {
  struct timespec ts = due_in(timeout_ms);
  while (for_exit ? !lg.exited : lg.len > 0)
    if (pthread_cond_timedwait(&lg.drained, &lg.mu, &ts) != 0)
      return false;
  return true;
}

bool log_flush(uint64_t timeout_ms) {
  pthread_mutex_lock(&lg.mu);
  bool ok = !lg.running || wait_drained(timeout_ms, false);
  pthread_mutex_unlock(&lg.mu);
  return ok;
}

bool log_stop(uint64_t timeout_ms) {
  pthread_mutex_lock(&lg.mu);
  if (!lg.running) {
    pthread_mutex_unlock(&lg.mu);
    return true;
  }
  lg.stop = true;
  pthread_cond_signal(&lg.more);
  bool ok = wait_drained(timeout_ms, true);
  pthread_mutex_unlock(&lg.mu);
  if (ok) {
    pthread_join(lg.thread, NULL);
    pthread_mutex_lock(&lg.mu);
    lg.running = false; /* later lines (there should be none) go straight out */
    pthread_mutex_unlock(&lg.mu);
  }
  /* else the writer is stuck in write(2): it is left there, the process ends */
  return ok;
}

uint64_t log_dropped(void) {
  pthread_mutex_lock(&lg.mu);
  uint64_t d = lg.dropped;
  pthread_mutex_unlock(&lg.mu);
  return d;
}

uint64_t access_log_dropped_total(void) {
  return atomic_load_explicit(&access_dropped_total, memory_order_relaxed);
}

void log_msg(const char *fmt, ...) {
  char line[LOG_LINE_MAX];
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
  pthread_mutex_lock(&lg.mu);
  if (!lg.running) {
    pthread_mutex_unlock(&lg.mu);
    write_all(STDERR_FILENO, line, (size_t)n); /* no writer (yet, or it could not start) */
    return;
  }
  if (ring_put(line, (size_t)n))
    pthread_cond_signal(&lg.more);
  else
    lg.dropped++;
  pthread_mutex_unlock(&lg.mu);
}

/* ---- access log lines ---- */

/* A line being formatted into a caller's fixed array. */
typedef struct line {
  char *out;
  size_t o, cap;
  size_t field; /* the most one client-chosen value may take: the others keep room */
} line_t;

__attribute__((format(printf, 2, 3))) static void line_printf(line_t *l, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(l->out + l->o, l->cap - l->o, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < l->cap - l->o)
    l->o += (size_t)n; /* else what did not fit whole is written over */
}

/* A value the client chose, escaped (escape.h) so it cannot forge a line;
 * dash: an empty one is written "-" (the combined format's "none"). */
static void line_value(line_t *l, esc_style_t style, const char *s, size_t n, bool dash) {
  size_t room = l->cap - l->o < l->field ? l->cap - l->o : l->field;
  if (n == 0 && dash) {
    if (l->cap - l->o > 1)
      l->out[l->o++] = '-';
    return;
  }
  l->o += esc_mem(l->out + l->o, room, style, s, n);
}

static void format_json(line_t *l, const access_entry_t *e, const struct tm *tm, int ms) {
  line_printf(l, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"remote\":\"%s\","
              "\"method\":\"%s\",\"target\":\"", tm->tm_year + 1900, tm->tm_mon + 1,
              tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec, ms, e->remote, e->method);
  line_value(l, ESC_JSON, e->target, e->target_len, false);
  line_printf(l, "\",\"version\":\"%d.%d\",\"status\":%d,\"bytes\":%llu,"
              "\"duration_ms\":%.3f,\"referer\":\"", e->http_major, e->http_minor, e->status,
              (unsigned long long)e->bytes, (double)e->duration_us / 1000.0);
  line_value(l, ESC_JSON, e->referer, e->referer_len, false);
  line_printf(l, "\",\"user_agent\":\"");
  line_value(l, ESC_JSON, e->user_agent, e->user_agent_len, false);
  line_printf(l, "\"}\n");
}

static void format_text(line_t *l, const access_entry_t *e, const struct tm *tm) {
  line_printf(l, "%s - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"%s ", e->remote, tm->tm_mday,
              date_months[tm->tm_mon], tm->tm_year + 1900, tm->tm_hour, tm->tm_min, tm->tm_sec,
              e->method);
  line_value(l, ESC_TEXT, e->target, e->target_len, false);
  line_printf(l, " HTTP/%d.%d\" %d %llu \"", e->http_major, e->http_minor, e->status,
              (unsigned long long)e->bytes);
  line_value(l, ESC_TEXT, e->referer, e->referer_len, true);
  line_printf(l, "\" \"");
  line_value(l, ESC_TEXT, e->user_agent, e->user_agent_len, true);
  line_printf(l, "\" %.3f\n", (double)e->duration_us / 1e6);
}

size_t access_log_format(int format, const access_entry_t *e, int64_t unix_ms, char *out,
                         size_t outlen) {
  time_t sec = (time_t)(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  line_t l = {.out = out, .o = 0, .cap = outlen, .field = outlen / 4};
  if (format == LOG_FORMAT_JSON)
    format_json(&l, e, &tm, (int)(unix_ms % 1000));
  else
    format_text(&l, e, &tm);
  if (l.o == 0 || out[l.o - 1] != '\n') { /* truncated: still one line */
    if (l.o >= outlen)
      l.o = outlen - 1;
    out[l.o++] = '\n';
  }
  return l.o;
}

/* Writes out what is queued (mu held; released while writing). */
static void write_batch(access_log_t *al) {
  char *out = al->fill;
  size_t n = al->fill_len;
  al->fill = al->spare;
  al->fill_len = 0;
  al->spare = out;
  uint64_t dropped = al->dropped;
  al->busy = true;
  pthread_mutex_unlock(&al->mu);
  write_all(al->fd, out, n); /* may block on a stuck reader: closers wait only so long */
  if (dropped != al->dropped_reported) {
    log_msg("access log: %llu lines dropped so far (the writer fell behind)",
            (unsigned long long)dropped);
    al->dropped_reported = dropped;
  }
  pthread_mutex_lock(&al->mu);
  al->busy = false;
}

/* The file at the path again (logrotate renamed the old one): lines queued
 * before the request went to the old file, later ones go to the new. On
 * failure the old file stays. mu held; released while opening. */
static void reopen_file(access_log_t *al) {
  al->busy = true;
  pthread_mutex_unlock(&al->mu);
  int fd = open(al->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    log_msg("access log: cannot reopen %s: %s (still writing to the file it had open)", al->path,
            loopd_strerror(-errno));
  } else {
    close(al->fd);
    al->fd = fd;
  }
  pthread_mutex_lock(&al->mu);
  al->busy = false;
}

static void al_free(access_log_t *al);

static void *writer_main(void *arg) {
  access_log_t *al = arg;
  pthread_mutex_lock(&al->mu);
  for (;;) {
    /* Batch: sleep a flush period unless the buffer is half full, a reopen
     * waits or we stop. */
    if (!al->stop && !al->reopen && al->fill_len <= AL_BUF_SIZE / 2) {
      struct timespec ts = due_in(AL_FLUSH_MS);
      pthread_cond_timedwait(&al->cv, &al->mu, &ts);
    }
    bool reopen = al->reopen;
    al->reopen = false;
    if (al->fill_len > 0)
      write_batch(al);
    if (reopen)
      reopen_file(al);
    if (al->fill_len == 0) {
      pthread_cond_broadcast(&al->idle);
      if (al->stop)
        break;
    }
  }
  bool free_self = al->detached;
  al->exited = true;
  pthread_cond_broadcast(&al->idle);
  pthread_mutex_unlock(&al->mu);
  if (free_self)
    al_free(al); /* nobody else holds it (access_log_release) */
  return NULL;
}

/* Frees al and all it holds; its writer has ended, or never started. */
static void al_free(access_log_t *al) {
  pthread_mutex_destroy(&al->mu);
  pthread_cond_destroy(&al->cv);
  pthread_cond_destroy(&al->idle);
  if (al->own_fd)
    close(al->fd);
  free(al->path);
  free(al->fill);
  free(al->spare);
  free(al);
}

int access_log_open(access_log_t **out, const char *target, int format, char *err,
                    size_t errlen) {
  *out = NULL;
  if (strcmp(target, "off") == 0)
    return 0;
  access_log_t *al = calloc(1, sizeof *al);
  if (al == NULL)
    return loopd_errf(-ENOMEM, err, errlen, "access log: out of memory");
  al->format = format;
  pthread_mutex_init(&al->mu, NULL);
  pthread_cond_init(&al->cv, NULL);
  pthread_cond_init(&al->idle, NULL);
  int r = 0;
  if (strcmp(target, "stdout") == 0) {
    al->fd = STDOUT_FILENO;
  } else if (strcmp(target, "stderr") == 0) {
    al->fd = STDERR_FILENO;
  } else {
    al->fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    al->own_fd = al->fd >= 0;
    r = -errno; /* before malloc may change it */
    al->path = strdup(target);
  }
  al->fill = malloc(AL_BUF_SIZE);
  al->spare = malloc(AL_BUF_SIZE);
  if (al->fd < 0)
    r = loopd_errf(r, err, errlen, "log.access = \"%s\": cannot open: %s", target,
                   loopd_strerror(r));
  else if (al->fill == NULL || al->spare == NULL || (al->own_fd && al->path == NULL))
    r = loopd_errf(-ENOMEM, err, errlen, "access log: out of memory");
  else if ((r = start_writer(&al->thread, writer_main, al)) != 0)
    r = loopd_errf(r, err, errlen, "access log: cannot start its writer thread: %s",
                   loopd_strerror(r));
  else {
    *out = al;
    return 0;
  }
  al_free(al); /* the one way out of a set-up that failed part-way */
  return r;
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
    atomic_fetch_add_explicit(&access_dropped_total, 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&al->mu);
}

bool access_log_flush(access_log_t *al, uint64_t timeout_ms) {
  if (al == NULL)
    return true;
  struct timespec due = due_in(timeout_ms);
  pthread_mutex_lock(&al->mu);
  pthread_cond_signal(&al->cv);
  bool ok = true;
  while (ok && !al->exited && (al->fill_len > 0 || al->busy))
    ok = pthread_cond_timedwait(&al->idle, &al->mu, &due) == 0;
  pthread_mutex_unlock(&al->mu);
  return ok;
}

bool access_log_close(access_log_t *al, uint64_t timeout_ms) {
  if (al == NULL)
    return true;
  struct timespec due = due_in(timeout_ms);
  pthread_mutex_lock(&al->mu);
  al->stop = true;
  pthread_cond_signal(&al->cv);
  bool ok = true;
  while (ok && !al->exited)
    ok = pthread_cond_timedwait(&al->idle, &al->mu, &due) == 0;
  pthread_mutex_unlock(&al->mu);
  if (!ok) {
    abandoned = al; /* stuck in write(2): left as it is (still reachable); the process ends */
    return false;
  }
  pthread_join(al->thread, NULL);
  al_free(al);
  return true;
}

bool access_log_reopen(access_log_t *al) {
  if (al == NULL || al->path == NULL)
    return false;
  pthread_mutex_lock(&al->mu);
  al->reopen = true;
  pthread_cond_signal(&al->cv);
  pthread_mutex_unlock(&al->mu);
  return true;
}

void access_log_release(access_log_t *al) {
  if (al == NULL)
    return;
  pthread_mutex_lock(&al->mu);
  pthread_t th = al->thread; /* al may be freed as soon as mu is let go */
  al->stop = true;
  al->detached = true;
  pthread_cond_signal(&al->cv);
  pthread_mutex_unlock(&al->mu);
  pthread_detach(th);
}

const char *access_log_path(const access_log_t *al) { return al != NULL ? al->path : NULL; }
