/* harness.h: what integration tests share, in three files: harness_proc.c
 * starts the real loopd on port 0 (the port is read from its start line) and
 * stops it by PID; harness_wire.c talks to it over raw sockets with timeouts
 * and reads responses exactly; harness_wait.c waits on state. The mode comes
 * from LOOPD_TEST_MODE (event or threads), the binary from LOOPD_BIN. */
#ifndef LOOPD_TEST_HARNESS_H
#define LOOPD_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* 1 in ASan or TSan builds (the tests are built like the server), where
 * memory per thread and stack use are the sanitizer's, not loopd's. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif
/* 1 in TSan builds, whose shadow memory grows with every heap byte. */
#if defined(__SANITIZE_THREAD__)
#define SANITIZED_THREAD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SANITIZED_THREAD 1
#endif
#endif
#ifndef SANITIZED_THREAD
#define SANITIZED_THREAD 0
#endif

typedef struct srv {
  pid_t pid;
  int port;
  int err_fd;       /* loopd's stderr, read by srv_log_wait */
  char log[65536];  /* stderr collected so far */
  size_t log_len;
} srv_t;

/* The mode under test: "event" (default) or "threads". */
const char *test_mode(void);

/* Starts loopd with --listen 127.0.0.1:0 --mode MODE and the extra args
 * (NULL-terminated), and LOOPD_SERVER_ALLOWED_HOSTS=* (the tests' requests
 * say "Host: x"; --set or env overrides it). Returns 0 once it printed its
 * start line. */
int srv_start(srv_t *s, const char *const *args);
/* Same, with extra environment entries ("NAME=value", NULL-terminated). */
int srv_start_env(srv_t *s, const char *const *args, const char *const *env);
/* In a child right after fork() (parent: getpid() before it): the child is
 * killed when the test process ends, however it ends (PR_SET_PDEATHSIG,
 * with the race of a parent that died first closed). Every fork of a test
 * calls it, so no loopd or peer outlives an interrupted test. */
void proc_dies_with(pid_t parent);
/* Starts loopd with exactly args (no --listen, no --mode: the test gives
 * them, or a config file does; the address must be 127.0.0.1) and env. */
int srv_start_bare(srv_t *s, const char *const *args, const char *const *env);
/* Same, with a variadic list of extra args ending in NULL. */
int srv_startv(srv_t *s, ...);
/* Sends sig and waits up to timeout_ms. Returns the exit status (128+N when
 * killed by signal N), or -1 (then it was SIGKILLed). */
int srv_stop(srv_t *s, int sig, int timeout_ms);
/* Waits until loopd's stderr contains needle. */
bool srv_log_wait(srv_t *s, const char *needle, int timeout_ms);
/* How often needle occurs in what loopd wrote to stderr so far (read now). */
int srv_log_count(srv_t *s, const char *needle);
/* Waits until needle occurs at least want times. */
bool srv_log_wait_count(srv_t *s, const char *needle, int want, int timeout_ms);
/* Peak resident memory of the server process, in KiB (VmHWM), or current (VmRSS). */
long srv_rss_kb(const srv_t *s, bool peak);

/* Runs loopd to completion with args; returns its exit status; stderr and
 * stdout go to the buffers (NUL-terminated, truncated). */
int srv_run_once(const char *const *args, char *out, size_t outlen, char *err, size_t errlen,
              const char *const *env);

/* Raw TCP to 127.0.0.1:port; -1 on failure. */
int raw_connect(int port);
int raw_send(int fd, const void *p, size_t n);
int raw_sends(int fd, const char *s);
/* Closes a raw socket (and forgets bytes read ahead on it). */
void raw_close(int fd);
/* Reads whatever arrives within timeout_ms (until EOF or the first quiet gap). */
ssize_t raw_recv_some(int fd, char *buf, size_t len, int timeout_ms);
/* Reads exactly n bytes within timeout_ms; 0 or -1. */
int raw_recv_exact(int fd, char *buf, size_t n, int timeout_ms);
/* True if the peer closed (EOF or reset) within timeout_ms; unread data is skipped. */
bool raw_wait_closed(int fd, int timeout_ms);

typedef struct wire_resp {
  int status;
  char head[16384]; /* the status line and headers, NUL-terminated */
  char *body;       /* malloc'd, NUL-terminated */
  size_t body_len;
  bool chunked;
  int64_t content_length; /* -1: none */
} wire_resp_t;

/* Reads one response. head_request: a HEAD response has no body. Returns 0,
 * or -1 on timeout, malformed data or a close before the end. */
int wire_read(int fd, wire_resp_t *r, int timeout_ms, bool head_request);
/* The value of a header (first match, case-insensitive), copied into a
 * buffer of the calling thread's (clients may run on several); NULL when absent. */
const char *wire_header(const wire_resp_t *r, const char *name);
void wire_free(wire_resp_t *r);

/* One request on a new connection: sends raw, reads one response. */
int raw_exchange(int port, const char *request, wire_resp_t *r, int timeout_ms);

/* GET path on a new connection (Host: localhost); the response in r. 0 or -1. */
int raw_get(int port, const char *path, wire_resp_t *r, int timeout_ms);
/* Sends GET path (Host: localhost) on fd. 0 or -1. */
int raw_send_get(int fd, const char *path);
/* "127.0.0.1:PORT" of our end of fd: what the server calls the peer. */
void raw_local_name(int fd, char *out, size_t len);

/* True when the mode under test is event mode. */
bool test_event_mode(void);
/* The number after "key": in a JSON body (first match), or -1. */
double json_num(const char *body, const char *key);
/* "Threads:" of /proc/PID/status, or -1. */
long proc_threads(pid_t pid);
/* The open descriptors of pid (/proc/PID/fd), or -1. */
long proc_fds(pid_t pid);

/* Milliseconds on a monotonic clock. */
double harness_now_ms(void);

/* Reads until EOF within timeout_ms into buf (NUL-terminated). Returns the
 * bytes read, or -1 when the deadline passed (or buf filled) before EOF. */
ssize_t raw_recv_to_eof(int fd, char *buf, size_t cap, int timeout_ms);

/* Whether a bound of a few ms on loop lag can be asserted: a release build
 * without sanitizers (LOOPD_BUILDTYPE and LOOPD_SANITIZE, set by
 * tests/meson.build) on a machine with a spare core (1-minute load average
 * below the CPUs online), asked for with LOOPD_TIMING_STRICT=1 (a suite run
 * shares the cores with other tests). Elsewhere a sanitizer or a debug build multiplies
 * the server's CPU work, and on a loaded machine the scheduler preempts a
 * busy loop thread for tens of ms: only bounds relative to a control in the
 * same run hold there. When false, *why (if not NULL) says which. */
bool timing_strict(const char **why);
/* strict_ms where timing_strict() holds; elsewhere loose_ms, the bound a
 * control in the same run promises (and a line says which, and why). */
double timing_bound_ms(double strict_ms, double loose_ms);

/* ---- waiting on state, not on time ----
 * Each polls (every few ms: a retry pace, not a guess at how long the server
 * takes) until the state holds or deadline_ms passes; true if it held. */

/* pred(arg) becomes true. */
bool wait_until(bool (*pred)(void *arg), void *arg, int deadline_ms);
/* The value of one /metrics series, e.g. "loopd_work_running" or
 * "loopd_loop_stalls_total{loop=\"0\"}" (name and labels exactly as loopd
 * prints them), or NAN when absent or unreadable. One GET /metrics. */
double metric_value(int port, const char *series);
/* The same series read from a /metrics body already fetched; NAN when absent. */
double metric_in(const char *body, const char *series);
/* metric_value(port, series) OP value, with op one of "==" "!=" ">=" "<=" ">" "<". */
bool wait_metric(int port, const char *series, const char *op, double value, int deadline_ms);
/* Every byte sent on each of fds[0..n) has been read by the server on port:
 * our send queue is empty (acked) and the server's socket for the connection
 * holds nothing unread (its receive queue, asked of the kernel by sock_diag).
 * What "the request is with the server" means when no metric shows a request
 * before it is answered. */
bool wait_consumed(int port, const int *fds, int n, int deadline_ms);
/* Threads of pid in a relative CLOCK_REALTIME clock_nanosleep, which is what
 * nanosleep() is: a sleeping /slow or /block job (loopd sleeps nowhere else;
 * thread mode's heartbeat sleeps to absolute CLOCK_MONOTONIC deadlines). */
int proc_sleepers(pid_t pid);
/* Threads of pid in clock_nanosleep on clock_id with exactly these flags
 * (TIMER_ABSTIME or 0), or -1. */
int proc_clock_sleepers(pid_t pid, int clock_id, unsigned long flags);
/* proc_sleepers(pid) >= want. */
bool wait_sleepers(pid_t pid, int want, int deadline_ms);
/* The thread count of pid (/proc) becomes want. */
bool wait_threads(pid_t pid, long want, int deadline_ms);
/* The open descriptor count of pid becomes want. */
bool wait_fds(pid_t pid, long want, int deadline_ms);

#endif
