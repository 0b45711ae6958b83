/* harness_proc.c: process control for integration tests: start loopd on
 * port 0 and read its port from the start line, read its stderr, stop it by
 * PID, and what /proc says about it (memory, threads, descriptors, sleepers). */
#include "harness.h"


#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 10000

static const char *loopd_bin(void) {
  const char *b = getenv("LOOPD_BIN");
  return b != NULL && *b ? b : "./loopd";
}

/* Reads stderr into the log buffer until timeout or EOF. */
static bool log_pump(srv_t *s, int timeout_ms) {
  struct pollfd p = {.fd = s->err_fd, .events = POLLIN};
  if (s->err_fd < 0 || poll(&p, 1, timeout_ms) <= 0)
    return false;
  if (s->log_len + 1 >= sizeof s->log) /* keep the newest half */ {
    memmove(s->log, s->log + sizeof s->log / 2, s->log_len - sizeof s->log / 2);
    s->log_len -= sizeof s->log / 2;
  }
  ssize_t n = read(s->err_fd, s->log + s->log_len, sizeof s->log - s->log_len - 1);
  if (n <= 0) {
    close(s->err_fd);
    s->err_fd = -1;
    return false;
  }
  s->log_len += (size_t)n;
  s->log[s->log_len] = '\0';
  return true;
}

bool srv_log_wait(srv_t *s, const char *needle, int timeout_ms) {
  double end = harness_now_ms() + timeout_ms;
  for (;;) {
    if (strstr(s->log, needle) != NULL)
      return true;
    double left = end - harness_now_ms();
    if (left <= 0)
      return false;
    if (!log_pump(s, (int)left) && s->err_fd < 0)
      return strstr(s->log, needle) != NULL;
  }
}

int srv_start(srv_t *s, const char *const *args) { return srv_start_env(s, args, NULL); }

void proc_dies_with(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* the forking thread's exit: the test's main thread */
  if (getppid() != parent)
    _exit(126); /* the test died before prctl took hold */
}

/* Starts argv (argv[0] the binary) with env added and waits for its start line. */
static int spawn(srv_t *s, const char *const *argv, const char *const *env) {
  memset(s, 0, sizeof *s);
  s->err_fd = -1;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0)
    return -1;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    proc_dies_with(parent); /* a crashed or killed test leaves no server behind */
    dup2(pipefd[1], STDERR_FILENO);
    /* The suites' requests say "Host: x": any Host, unless a test says
     * otherwise (its env or --set wins; test_hosts checks the default). */
    putenv((char *)"LOOPD_SERVER_ALLOWED_HOSTS=*");
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
      putenv((char *)env[i]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(pipefd[1]);
  s->pid = pid;
  s->err_fd = pipefd[0];
  if (!srv_log_wait(s, "listening on http://", START_TIMEOUT_MS)) {
    fprintf(stderr, "loopd did not start: %s\n", s->log);
    srv_stop(s, SIGKILL, 1000);
    return -1;
  }
  /* http://127.0.0.1:PORT, or the address a test's own --listen gave */
  const char *p = strstr(s->log, "listening on http://");
  if (p == NULL)
    return -1;
  p += strlen("listening on http://");
  if (*p == '[')
    p = strchr(p, ']'); /* an IPv6 address */
  p = p != NULL ? strchr(p, ':') : NULL;
  if (p == NULL)
    return -1;
  s->port = atoi(p + 1);
  return s->port > 0 ? 0 : -1;
}

#define ARGV_MAX 64

/* Fills argv with the binary, the n0 words of pre, then args (NULL-ended;
 * what does not fit is dropped), and a NULL. */
static void build_argv(const char *argv[ARGV_MAX], const char *const *pre, size_t n0,
                       const char *const *args) {
  size_t n = 0;
  argv[n++] = loopd_bin();
  for (size_t i = 0; i < n0; i++)
    argv[n++] = pre[i];
  for (size_t i = 0; args != NULL && args[i] != NULL && n < ARGV_MAX - 1; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
}

int srv_start_env(srv_t *s, const char *const *args, const char *const *env) {
  const char *pre[] = {"--listen", "127.0.0.1:0", "--mode", test_mode()};
  const char *argv[ARGV_MAX];
  build_argv(argv, pre, 4, args);
  return spawn(s, argv, env);
}

int srv_start_bare(srv_t *s, const char *const *args, const char *const *env) {
  const char *argv[ARGV_MAX];
  build_argv(argv, NULL, 0, args);
  return spawn(s, argv, env);
}

int srv_log_count(srv_t *s, const char *needle) {
  while (log_pump(s, 0)) {
  }
  int n = 0;
  for (const char *p = s->log; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

bool srv_log_wait_count(srv_t *s, const char *needle, int want, int timeout_ms) {
  double end = harness_now_ms() + timeout_ms;
  for (;;) {
    if (srv_log_count(s, needle) >= want)
      return true;
    double left = end - harness_now_ms();
    if (left <= 0 || (!log_pump(s, (int)left) && s->err_fd < 0))
      return srv_log_count(s, needle) >= want;
  }
}

int srv_startv(srv_t *s, ...) {
  const char *args[48];
  size_t n = 0;
  va_list ap;
  va_start(ap, s);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 47)
    args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  return srv_start(s, args);
}

int srv_stop(srv_t *s, int sig, int timeout_ms) {
  if (s->pid <= 0)
    return -1;
  kill(s->pid, sig);
  double end = harness_now_ms() + timeout_ms;
  int status;
  for (;;) {
    pid_t r = waitpid(s->pid, &status, WNOHANG);
    if (r == s->pid)
      break;
    if (harness_now_ms() > end) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, &status, 0);
      s->pid = 0;
      while (log_pump(s, 0)) {
      }
      /* say why, so a failure in CI can be read without a rerun */
      fprintf(stderr, "loopd did not exit within %d ms of signal %d; its stderr:\n%s\n",
              timeout_ms, sig, s->log);
      return -1;
    }
    if (!log_pump(s, 10))
      usleep(2000); /* a retry pace for waitpid under the deadline */
  }
  s->pid = 0;
  while (log_pump(s, 50)) {
  }
  if (s->err_fd >= 0) {
    close(s->err_fd);
    s->err_fd = -1;
  }
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

long srv_rss_kb(const srv_t *s, bool peak) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  long v = -1;
  const char *key = peak ? "VmHWM:" : "VmRSS:";
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, key, strlen(key)) == 0)
      v = atol(line + strlen(key));
  fclose(f);
  return v;
}

static void read_all(int fd, char *buf, size_t len, size_t *got) {
  for (;;) {
    if (*got + 1 >= len) {
      char sink[4096];
      if (read(fd, sink, sizeof sink) <= 0)
        return;
      continue;
    }
    ssize_t n = read(fd, buf + *got, len - *got - 1);
    if (n <= 0)
      return;
    *got += (size_t)n;
    buf[*got] = '\0';
  }
}

int srv_run_once(const char *const *args, char *out, size_t outlen, char *err, size_t errlen,
              const char *const *env) {
  const char *argv[ARGV_MAX];
  build_argv(argv, NULL, 0, args);
  char tmpl_o[] = "/tmp/loopd-test-outXXXXXX", tmpl_e[] = "/tmp/loopd-test-errXXXXXX";
  int fo = mkstemp(tmpl_o), fe = mkstemp(tmpl_e);
  unlink(tmpl_o);
  unlink(tmpl_e);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    proc_dies_with(parent);
    dup2(fo, STDOUT_FILENO);
    dup2(fe, STDERR_FILENO);
    if (env != NULL)
      for (size_t i = 0; env[i] != NULL; i++)
        putenv((char *)env[i]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  size_t got = 0;
  if (out != NULL && outlen > 0) {
    out[0] = '\0';
    lseek(fo, 0, SEEK_SET);
    read_all(fo, out, outlen, &got);
  }
  got = 0;
  if (err != NULL && errlen > 0) {
    err[0] = '\0';
    lseek(fe, 0, SEEK_SET);
    read_all(fe, err, errlen, &got);
  }
  close(fo);
  close(fe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

long proc_threads(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  long v = -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "Threads:", 8) == 0)
      v = atol(line + 8);
  fclose(f);
  return v;
}

long proc_fds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return -1;
  long n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

int proc_clock_sleepers(pid_t pid, int clock_id, unsigned long flags_want) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char sp[320], line[256];
    snprintf(sp, sizeof sp, "/proc/%d/task/%s/syscall", (int)pid, e->d_name);
    FILE *f = fopen(sp, "r");
    if (f == NULL)
      continue;
    long nr;
    unsigned long clock, flags;
    if (fgets(line, sizeof line, f) != NULL &&
        sscanf(line, "%ld 0x%lx 0x%lx", &nr, &clock, &flags) == 3 && nr == SYS_clock_nanosleep &&
        clock == (unsigned long)clock_id && flags == flags_want)
      n++;
    fclose(f);
  }
  closedir(d);
  return n;
}

int proc_sleepers(pid_t pid) { return proc_clock_sleepers(pid, CLOCK_REALTIME, 0); }
