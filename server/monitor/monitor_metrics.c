/* monitor_metrics.c: the /metrics page: loop lag, utilization, heartbeat and
 * stalls per source, HTTP counters summed over loops, work and connection
 * counts, and the standard process_* metrics read from /proc. */
#include <errno.h>
#include <dirent.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build.h"
#include "log.h"
#include "monitor_int.h"
#include "monitor_metrics.h"
#include "refusal.h"
#include "util.h"

/* ---- /proc ----
 * A scrape must stay cheap even when a client pipelines thousands of them:
 * /metrics runs on a loop. So nothing here costs more than a few syscalls:
 * the start time is read once, CPU time comes from getrusage, and the open
 * files are counted by one stat of /proc/self/fd (Linux 6.2 and later say
 * the count in st_size); older kernels need a readdir, one entry per open
 * file, so that count is reused for PROC_FDS_REUSE_NS. */

#define PROC_FDS_REUSE_NS NS_PER_S

typedef struct proc_info {
  double rss_bytes, cpu_s, start_s, open_fds, max_fds;
} proc_info_t;

static double boot_time_s(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (f == NULL)
    return NAN;
  char line[256];
  double bt = NAN;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "btime ", 6) == 0)
      bt = strtod(line + 6, NULL);
  fclose(f);
  return bt;
}

static double count_fds_readdir(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return NAN;
  double n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

static pthread_mutex_t proc_mu = PTHREAD_MUTEX_INITIALIZER;
static double proc_start_s = NAN; /* under proc_mu */
static bool proc_start_read;
static double proc_fds;
static uint64_t proc_fds_ns; /* when proc_fds was counted; 0 = never */

static double count_fds(uint64_t now_ns) {
  struct stat st;
  if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0)
    return (double)st.st_size;
  pthread_mutex_lock(&proc_mu);
  if (proc_fds_ns == 0 || now_ns - proc_fds_ns >= PROC_FDS_REUSE_NS) {
    proc_fds = count_fds_readdir();
    proc_fds_ns = now_ns;
  }
  double n = proc_fds;
  pthread_mutex_unlock(&proc_mu);
  return n;
}

/* starttime, field 22 of /proc/self/stat, in seconds since the epoch. */
static double read_start_s(void) {
  FILE *f = fopen("/proc/self/stat", "r");
  if (f == NULL)
    return NAN;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p0 = strrchr(buf, ')'); /* the command name may hold spaces and parens */
  unsigned long long start = 0;
  if (p0 == NULL ||
      sscanf(p0 + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
             &start) != 1)
    return NAN;
  return boot_time_s() + (double)start / (double)sysconf(_SC_CLK_TCK);
}

static double read_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL)
    return NAN;
  unsigned long size = 0, resident = 0;
  int k = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return k == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : NAN;
}

void mon_proc_get(double *rss_bytes, double *cpu_s) {
  struct rusage ru;
  *cpu_s = getrusage(RUSAGE_SELF, &ru) == 0
               ? (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6
               : NAN;
  *rss_bytes = read_rss_bytes();
}

static void proc_read(proc_info_t *p) {
  p->open_fds = count_fds(clock_ns());
  struct rlimit rl;
  p->max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (double)rl.rlim_cur : NAN;
  mon_proc_get(&p->rss_bytes, &p->cpu_s);
  pthread_mutex_lock(&proc_mu);
  if (!proc_start_read) {
    proc_start_s = read_start_s();
    proc_start_read = true;
  }
  p->start_s = proc_start_s;
  pthread_mutex_unlock(&proc_mu);
}

/* ---- families ---- */

static int loop_label(char *out, size_t len, int i) {
  return snprintf(out, len, "loop=\"%d\"", i);
}

/* What one source's gauges and counters are read from. */
typedef struct loop_view {
  mon_lag_t lag; /* no quantiles: the lag histogram carries them */
  mon_heartbeat_t hb;
  uint64_t requests; /* answered by this loop, every route and status */
} loop_view_t;

enum { LV_MS, LV_RATIO, LV_COUNT }; /* a double of ms (written in s), 0..1 or NaN, a uint64_t */

/* One family per row, one sample per source, read at off in loop_view_t.
 * help_threads: what it means in thread mode (NULL: the same). */
static const struct loop_family {
  const char *name, *type, *help, *help_threads;
  int kind;
  size_t off;
} loop_families[] = {
  {"loopd_event_loop_lag_now_seconds", "gauge", "The latest lag sample.", NULL, LV_MS,
   offsetof(loop_view_t, lag.now_ms)},
  {"loopd_event_loop_lag_max_seconds", "gauge", "The largest lag sample over the last 10 s.",
   NULL, LV_MS, offsetof(loop_view_t, lag.max_ms)},
  {"loopd_event_loop_lag_min_seconds", "gauge", "The smallest lag sample over the last 10 s.",
   NULL, LV_MS, offsetof(loop_view_t, lag.min_ms)},
  {"loopd_event_loop_lag_mean_seconds", "gauge", "The mean lag over the last 10 s.", NULL,
   LV_MS, offsetof(loop_view_t, lag.mean_ms)},
  {"loopd_event_loop_lag_stddev_seconds", "gauge",
   "The standard deviation of the lag over the last 10 s.", NULL, LV_MS,
   offsetof(loop_view_t, lag.stddev_ms)},
  {"loopd_event_loop_utilization", "gauge",
   "Share of wall time the loop spent outside the poll, over the last 10 s.",
   "Thread mode: process CPU time over what the cores it may run on could give, over the last "
   "10 s.", LV_RATIO, offsetof(loop_view_t, lag.utilization)},
  {"loopd_loop_stalls_total", "counter", "Loop turns longer than monitor.stall_ms.",
   "Loop turns longer than monitor.stall_ms (thread mode: there is no shared loop to stall, "
   "always 0).", LV_COUNT, offsetof(loop_view_t, lag.stalls)},
  {"loopd_heartbeat_max_gap_seconds", "gauge",
   "Largest gap between heartbeats over the last 60 s.", NULL, LV_MS,
   offsetof(loop_view_t, hb.max_gap_ms)},
  {"loopd_heartbeat_beats_total", "counter", "Heartbeats so far.", NULL, LV_COUNT,
   offsetof(loop_view_t, hb.beats)},
  {"loopd_heartbeat_late_total", "counter",
   "Heartbeats that came more than 1.5 intervals after the previous one.", NULL, LV_COUNT,
   offsetof(loop_view_t, hb.late_beats)},
  {"loopd_loop_requests_total", "counter",
   "HTTP responses this loop answered, every route and status (how SO_REUSEPORT spread the "
   "work over --loops).",
   "HTTP responses answered, every route and status (thread mode: all threads, one count).",
   LV_COUNT, offsetof(loop_view_t, requests)},
};

static int render_loop_family(const struct loop_family *f, bool threads, const loop_view_t *v,
                              int n, buf_t *b) {
  char lab[32];
  int r = prom_family(b, f->name, f->type, threads && f->help_threads ? f->help_threads : f->help);
  for (int i = 0; i < n; i++) {
    const char *at = (const char *)&v[i] + f->off;
    double d;
    uint64_t u;
    loop_label(lab, sizeof lab, i);
    if (f->kind == LV_COUNT) {
      memcpy(&u, at, sizeof u);
      r |= prom_sample_u64(b, f->name, lab, u);
      continue;
    }
    memcpy(&d, at, sizeof d);
    if (f->kind == LV_MS)
      r |= prom_sample(b, f->name, lab, d / 1e3);
    else if (!isnan(d))
      r |= prom_sample(b, f->name, lab, d);
  }
  return r;
}

/* Thread mode keeps the names and the loop="0" label (dashboards work for
 * both), but its one source is the heartbeat thread, and the help says what
 * each figure means there. */
static int render_loops(mon_hub_t *h, buf_t *b) {
  char lab[32];
  bool threads = h->mode == MODE_THREADS;
  int r = prom_family(b, "loopd_event_loop_lag_seconds", "histogram",
                      threads ? "How late the heartbeat thread woke beyond its interval (thread "
                                "mode: the OS scheduler's delay)."
                              : "How late the loop's sampling timer fired beyond its interval.");
  for (int i = 0; i < h->nsrc; i++) {
    prom_hist_sum_t s;
    memset(&s, 0, sizeof s);
    prom_hist_add(&s, &h->src[i].lag_cum, &mon_lag_bounds);
    loop_label(lab, sizeof lab, i);
    r |= prom_histogram(b, "loopd_event_loop_lag_seconds", lab, &mon_lag_bounds, &s);
  }
  loop_view_t v[64];
  int n = h->nsrc < 64 ? h->nsrc : 64;
  for (int i = 0; i < n; i++) {
    mon_lag_brief(h, i, &v[i].lag);
    mon_heartbeat_get(h, i, &v[i].hb);
    v[i].requests = i < h->nhttp ? mon_block_total(&h->http[i]) : 0;
  }
  for (size_t f = 0; f < ARRAY_SIZE(loop_families); f++)
    r |= render_loop_family(&loop_families[f], threads, v, n, b);
  return r;
}

typedef struct code_count {
  uint32_t code; /* 0: "other" */
  uint64_t n;
  uint64_t loop_ns;
} code_count_t;

/* The route's (status, count) pairs summed over every counter block, by status. */
static size_t route_codes(mon_hub_t *h, int route, code_count_t *out, size_t max) {
  size_t n = 0;
  for (int k = 0; k < h->nhttp; k++) {
    const mon_http_route_t *r = &h->http[k].route[route];
    for (int i = 0; i <= MON_CODE_SLOTS; i++) {
      uint32_t code = 0;
      uint64_t c, ns;
      if (i < MON_CODE_SLOTS) {
        code = atomic_load_explicit(&r->code[i], memory_order_acquire);
        if (code == 0)
          continue;
        c = atomic_load_explicit(&r->count[i], memory_order_relaxed);
        ns = atomic_load_explicit(&r->loop_ns[i], memory_order_relaxed);
      } else {
        c = atomic_load_explicit(&r->other, memory_order_relaxed);
        ns = atomic_load_explicit(&r->other_loop_ns, memory_order_relaxed);
      }
      if (c == 0)
        continue;
      size_t j = 0;
      while (j < n && out[j].code != code)
        j++;
      if (j == n) {
        if (n == max)
          continue;
        /* keep them sorted: 200 before 404, "other" (0) first */
        while (j > 0 && out[j - 1].code > code) {
          out[j] = out[j - 1];
          j--;
        }
        out[j] = (code_count_t){code, 0, 0};
        n++;
      }
      out[j].n += c;
      out[j].loop_ns += ns;
    }
  }
  return n;
}

/* route="...",code="..." into lab (NUL-terminated). */
static int route_code_label(buf_t *lab, const char *route, uint32_t code) {
  char c[16];
  if (code == 0)
    snprintf(c, sizeof c, "other");
  else
    snprintf(c, sizeof c, "%u", code);
  buf_reset(lab);
  return prom_label(lab, "route", route) | buf_append(lab, ",", 1) | prom_label(lab, "code", c) |
         buf_append(lab, "", 1);
}

static int render_loop_seconds(mon_hub_t *h, const char *const *names, int nroutes,
                               code_count_t *codes, buf_t *lab, buf_t *b) {
  int r = prom_family(b, "loopd_http_loop_seconds_total", "counter",
                      h->mode == MODE_THREADS
                          ? "Thread mode: handler time by route and status: what connection "
                            "threads spent in session calls (parsing, handlers) for them."
                          : "Loop time by route and status: the loop's time spent on their "
                            "requests (parsing, handler, writing; their shares of loop turns).");
  for (int route = 0; route < MON_ROUTES_MAX; route++) {
    bool other = route >= nroutes;
    if (other && route != MON_ROUTES_MAX - 1)
      continue;
    size_t n = route_codes(h, route, codes, (size_t)h->nhttp * (MON_CODE_SLOTS + 1) + 1);
    for (size_t i = 0; i < n; i++) {
      r |= route_code_label(lab, other ? "other" : names[route], codes[i].code);
      r |= prom_sample(b, "loopd_http_loop_seconds_total", lab->data, (double)codes[i].loop_ns / 1e9);
    }
  }
  return r;
}

static int render_http(mon_hub_t *h, const char *const *names, int nroutes, buf_t *b) {
  int r = 0;
  code_count_t *codes = malloc(sizeof *codes * ((size_t)h->nhttp * (MON_CODE_SLOTS + 1) + 1));
  buf_t lab;
  buf_init(&lab, 4096);
  if (codes == NULL)
    return -ENOMEM;
  r |= prom_family(b, "loopd_http_requests_total", "counter", "HTTP responses by route and status.");
  for (int route = 0; route < MON_ROUTES_MAX; route++) {
    bool other = route >= nroutes;
    if (other && route != MON_ROUTES_MAX - 1)
      continue;
    size_t n = route_codes(h, route, codes, (size_t)h->nhttp * (MON_CODE_SLOTS + 1) + 1);
    for (size_t i = 0; i < n; i++) {
      r |= route_code_label(&lab, other ? "other" : names[route], codes[i].code);
      r |= prom_sample_u64(b, "loopd_http_requests_total", lab.data, codes[i].n);
    }
  }
  r |= render_loop_seconds(h, names, nroutes, codes, &lab, b);
  r |= prom_family(b, "loopd_http_request_duration_seconds", "histogram",
                   "Time from a request's head to the end of its response, by route.");
  for (int route = 0; route < MON_ROUTES_MAX; route++) {
    bool other = route >= nroutes;
    if (other && route != MON_ROUTES_MAX - 1)
      continue;
    prom_hist_sum_t s;
    memset(&s, 0, sizeof s);
    for (int k = 0; k < h->nhttp; k++)
      prom_hist_add(&s, &h->http[k].route[route].duration, &mon_duration_bounds);
    if (prom_hist_total(&s, &mon_duration_bounds) == 0)
      continue; /* only routes that answered something */
    buf_reset(&lab);
    r |= prom_label(&lab, "route", other ? "other" : names[route]);
    r |= buf_append(&lab, "", 1);
    r |= prom_histogram(b, "loopd_http_request_duration_seconds", lab.data, &mon_duration_bounds,
                        &s);
  }
  buf_free(&lab);
  free(codes);
  return r;
}

/* A family with one sample and no labels. */
static int family1(buf_t *b, const char *name, const char *type, const char *help, double v) {
  return prom_family(b, name, type, help) | prom_sample(b, name, NULL, v);
}

static int counter1(buf_t *b, const char *name, const char *help, uint64_t v) {
  return prom_family(b, name, "counter", help) | prom_sample_u64(b, name, NULL, v);
}

static int render_counts(mon_hub_t *h, buf_t *b) {
  int r = 0;
  mon_snapshot_t *snap = &(mon_snapshot_t){.nloops = 0};
  mon_snapshot(h, snap, false);
  const mon_conns_t cn = snap->conns;
  r |= family1(b, "loopd_connections_active", "gauge", "Open client connections.",
               (double)cn.active);
  r |= counter1(b, "loopd_connections_accepted_total",
                "Connections accepted: handled + refused (nginx stub_status' accepts).",
                cn.accepted);
  r |= counter1(b, "loopd_connections_handled_total",
                "Connections admitted and served (nginx stub_status' handled).", cn.handled);
  r |= counter1(b, "loopd_connections_refused_total",
                "Connections refused with the short 503 at server.max_connections.", cn.refused);
  r |= prom_family(b, "loopd_connections_state", "gauge",
                   "Open connections by what they do: reading a request, in a handler or "
                   "waiting for its plan (the pool, a delay, a /cpu slice), writing, idle "
                   "keep-alive, closing (lingering). They sum to loopd_connections_active.");
  for (int g = 0; g < RQ_NGAUGES; g++) {
    char lab[32];
    snprintf(lab, sizeof lab, "state=\"%s\"", rq_gauge_id(g));
    r |= prom_sample(b, "loopd_connections_state", lab, (double)cn.gauge[g]);
  }
  const mon_work_t w = snap->work;
  r |= family1(b, "loopd_work_threads", "gauge", "Thread-pool size for /slow.", w.threads);
  r |= family1(b, "loopd_work_queued", "gauge", "Jobs waiting for a pool thread.",
               (double)w.queued);
  r |= family1(b, "loopd_work_running", "gauge",
               h->mode == MODE_THREADS
                   ? "Jobs running (thread mode: inline, on connection threads)."
                   : "Jobs running on pool threads.",
               (double)w.running);
  r |= counter1(b, "loopd_work_completed_total", "Jobs that ran to completion.", w.completed);
  r |= counter1(b, "loopd_work_rejected_total", "Jobs refused because the queue was full (503).",
                w.rejected);
  r |= counter1(b, "loopd_work_cancelled_total",
                "Queued jobs cancelled because their client left.", w.cancelled);
  r |= family1(b, "loopd_event_streams_open", "gauge",
               "/events streams open now (at most monitor.max_event_streams).",
               h->stats != NULL ? (double)stats_active(&h->stats->streams) : 0);
  if (cn.threads_live >= 0)
    r |= family1(b, "loopd_threads_live", "gauge",
                 "Connection threads alive (thread mode: one per open connection).",
                 (double)cn.threads_live);
  return r;
}

/* Log lines given up rather than block a loop or the exit (log.h). */
static int render_logs(buf_t *b) {
  int r = prom_family(b, "loopd_log_lines_dropped_total", "counter",
                      "Log lines dropped because their reader fell behind "
                      "(stderr: the ring was full; access: the writer's buffer was).");
  r |= prom_sample_u64(b, "loopd_log_lines_dropped_total", "log=\"stderr\"", log_dropped());
  r |= prom_sample_u64(b, "loopd_log_lines_dropped_total", "log=\"access\"",
                       access_log_dropped_total());
  return r;
}

/* Requests refused by the host and cross-site rules (refusal.h). */
static int render_refused(buf_t *b) {
  int r = prom_family(b, "loopd_http_refused_total", "counter",
                      "Requests refused: Host not in server.allowed_hosts (421), or a browser "
                      "request from another site (403).");
  for (int w = 0; w < REFUSAL_KINDS; w++) {
    char label[32];
    snprintf(label, sizeof label, "reason=\"%s\"", refusal_name((refusal_why_t)w));
    r |= prom_sample_u64(b, "loopd_http_refused_total", label, refusal_count((refusal_why_t)w));
  }
  return r;
}

static int render_process(buf_t *b) {
  proc_info_t p;
  proc_read(&p);
  int r = family1(b, "process_cpu_seconds_total", "counter",
                  "Total user and system CPU time spent in seconds.", p.cpu_s);
  r |= family1(b, "process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds);
  r |= family1(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
               p.max_fds);
  r |= family1(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               p.rss_bytes);
  r |= family1(b, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", p.start_s);
  return r;
}

/* The shed requests by reason, and what was built (one series, value 1). */
static int render_shed_build(mon_hub_t *h, buf_t *b) {
  int r = prom_family(b, "loopd_http_shed_total", "counter",
                      "Requests answered 503 by load shedding, by reason (monitor.shed_lag_ms: "
                      "lag; monitor.shed_utilization: utilization).");
  r |= prom_sample_u64(b, "loopd_http_shed_total", "reason=\"lag\"", mon_shed_total(h, MON_SHED_LAG));
  r |= prom_sample_u64(b, "loopd_http_shed_total", "reason=\"utilization\"",
                       mon_shed_total(h, MON_SHED_UTILIZATION));
  buf_t lab;
  buf_init(&lab, 512);
  r |= prom_family(b, "loopd_build_info", "gauge", "The running build: version, git commit, mode.");
  r |= prom_label(&lab, "version", LOOPD_VERSION);
  r |= buf_append(&lab, ",", 1);
  r |= prom_label(&lab, "commit", build_commit());
  r |= buf_append(&lab, ",", 1);
  r |= prom_label(&lab, "mode", h->mode == MODE_THREADS ? "threads" : "event");
  r |= buf_append(&lab, "", 1);
  r |= prom_sample(b, "loopd_build_info", lab.data, 1);
  buf_free(&lab);
  return r;
}

int mon_metrics_render(mon_hub_t *h, const char *const *route_names, int nroutes, buf_t *out) {
  if (nroutes > MON_ROUTES_MAX - 1)
    nroutes = MON_ROUTES_MAX - 1;
  int r = render_loops(h, out);
  r |= render_http(h, route_names, nroutes, out);
  r |= render_counts(h, out);
  r |= render_shed_build(h, out);
  r |= render_logs(out);
  r |= render_refused(out);
  r |= render_process(out);
  return r != 0 ? -ENOMEM : 0; /* a buffer could not grow */
}
