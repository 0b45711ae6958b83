/* uvmin: the bare libuv + strict llhttp server, loopd's yardstick. It answers
 * every request with loopd's `GET /` answer (Server, Date, Content-Type
 * text/plain, Content-Length, "Hello, World!") and does nothing else: no
 * routes, no limits beyond a bounded output queue, no counters but two. What
 * it costs is what the stack itself costs; loopd's overhead is the rest.
 *
 *   uvmin [PORT]    listens on 127.0.0.1:PORT (default 0: the kernel picks),
 *                   prints "uvmin: listening on http://127.0.0.1:PORT" on
 *                   stderr; on SIGTERM or SIGINT prints "uvmin: reads=R
 *                   requests=Q" (Q/R above 1: the client pipelined) and exits 0.
 *
 * The responses made from one read go out in one write (uv_try_write, the
 * rest queued), as loopd does; the Date is formatted once a second. After
 * Connection: close the answer is written and the connection closed, with no
 * lingering close (a client that pipelined past it may lose the answer). */
#include <llhttp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define IN_SIZE 16384
#define OUT_SIZE 65536
#define QUEUED_MAX (1u << 20) /* a client that never reads is closed past this */

typedef struct {
  uv_loop_t *loop;
  llhttp_settings_t settings;
  char answer[256]; /* the whole response, Date included */
  size_t answer_len;
  time_t answer_sec;
  uint64_t reads, requests;
} server_t;

typedef struct {
  uv_tcp_t tcp; /* first: the handle's address is the connection's */
  llhttp_t parser;
  server_t *srv;
  size_t out_len, queued;
  int close_after;
  char in[IN_SIZE];
  char out[OUT_SIZE];
} conn_t;

typedef struct {
  uv_write_t req;
  conn_t *c;
  size_t len;
  char data[];
} wreq_t;

static void answer_refresh(server_t *s) {
  time_t now = time(NULL);
  if (now == s->answer_sec)
    return;
  char date[64];
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  int n = snprintf(s->answer, sizeof s->answer,
                   "HTTP/1.1 200 OK\r\nServer: uvmin\r\nDate: %s\r\n"
                   "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!",
                   date);
  s->answer_len = n > 0 && (size_t)n < sizeof s->answer ? (size_t)n : 0;
  s->answer_sec = now;
}

static void on_closed(uv_handle_t *h) { free(h); }

static void conn_close(conn_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  w->c->queued -= w->len;
  if (status < 0 || (w->c->close_after && w->c->queued == 0))
    conn_close(w->c);
  free(w);
}

/* Writes what is buffered: directly when the socket takes it, the rest
 * copied and queued behind any earlier queued write (libuv keeps the order). */
static void conn_flush(conn_t *c) {
  size_t off = 0;
  if (c->queued == 0) {
    uv_buf_t b = uv_buf_init(c->out, (unsigned)c->out_len);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r < 0 && r != UV_EAGAIN) {
      conn_close(c);
      return;
    }
    off = r > 0 ? (size_t)r : 0;
  }
  size_t left = c->out_len - off;
  c->out_len = 0;
  if (left == 0)
    return;
  wreq_t *w = malloc(sizeof *w + left);
  if (w == NULL || c->queued + left > QUEUED_MAX) {
    free(w);
    conn_close(c);
    return;
  }
  memcpy(w->data, c->out + off, left);
  w->c = c;
  w->len = left;
  c->queued += left;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)left);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
    c->queued -= left;
    free(w);
    conn_close(c);
  }
}

static int on_message_complete(llhttp_t *p) {
  conn_t *c = p->data;
  server_t *s = c->srv;
  s->requests++;
  if (c->out_len + s->answer_len > sizeof c->out)
    conn_flush(c); /* more pipelined requests in one read than the buffer holds */
  memcpy(c->out + c->out_len, s->answer, s->answer_len);
  c->out_len += s->answer_len;
  if (!llhttp_should_keep_alive(p))
    c->close_after = 1;
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  conn_t *c = (conn_t *)h;
  *b = uv_buf_init(c->in, sizeof c->in);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  conn_t *c = (conn_t *)st;
  if (n < 0) {
    conn_close(c);
    return;
  }
  if (n == 0)
    return;
  c->srv->reads++;
  answer_refresh(c->srv);
  llhttp_errno_t e = llhttp_execute(&c->parser, b->base, (size_t)n);
  if (c->out_len > 0)
    conn_flush(c);
  if (e != HPE_OK || (c->close_after && c->queued == 0))
    conn_close(c); /* a parse error gets no answer: this is a yardstick */
}

static void on_connection(uv_stream_t *ls, int status) {
  server_t *s = ls->data;
  if (status < 0)
    return;
  conn_t *c = malloc(sizeof *c);
  if (c == NULL)
    return;
  c->srv = s;
  c->out_len = c->queued = 0;
  c->close_after = 0;
  if (uv_tcp_init(s->loop, &c->tcp) != 0) {
    free(c);
    return;
  }
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
  c->parser.data = c;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_close(c);
}

static void on_signal(uv_signal_t *h, int sig) {
  (void)sig;
  server_t *s = h->data;
  fprintf(stderr, "uvmin: reads=%llu requests=%llu\n", (unsigned long long)s->reads,
          (unsigned long long)s->requests);
  uv_stop(s->loop);
}

static int usage(FILE *f, int code) {
  fprintf(f, "usage: uvmin [PORT]\n"
             "  The bare libuv + strict llhttp server (loopd's yardstick) on 127.0.0.1:PORT\n"
             "  (default 0: the kernel picks; the port is printed on stderr).\n");
  return code;
}

int main(int argc, char **argv) {
  if (argc > 2)
    return usage(stderr, 2);
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
    return usage(stdout, 0);
  char *end = NULL;
  long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
  if ((end != NULL && *end != '\0') || port < 0 || port > 65535)
    return usage(stderr, 2);
  static server_t s; /* one loop, one server: lives for the whole process */
  s.loop = uv_default_loop();
  llhttp_settings_init(&s.settings);
  s.settings.on_message_complete = on_message_complete;
  answer_refresh(&s);
  uv_tcp_t ls;
  uv_signal_t sig_term, sig_int;
  struct sockaddr_in addr;
  struct sockaddr_storage got;
  int len = sizeof got, r;
  uv_ip4_addr("127.0.0.1", (int)port, &addr);
  uv_tcp_init(s.loop, &ls);
  ls.data = &s;
  if ((r = uv_tcp_bind(&ls, (struct sockaddr *)&addr, 0)) != 0 ||
      (r = uv_listen((uv_stream_t *)&ls, 4096, on_connection)) != 0 ||
      (r = uv_tcp_getsockname(&ls, (struct sockaddr *)&got, &len)) != 0) {
    fprintf(stderr, "uvmin: cannot listen on 127.0.0.1:%ld: %s\n", port, uv_strerror(r));
    return 1;
  }
  uv_signal_init(s.loop, &sig_term);
  uv_signal_init(s.loop, &sig_int);
  sig_term.data = sig_int.data = &s;
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  signal(SIGPIPE, SIG_IGN);
  fprintf(stderr, "uvmin: listening on http://127.0.0.1:%d\n",
          ntohs(((struct sockaddr_in *)&got)->sin_port));
  uv_run(s.loop, UV_RUN_DEFAULT);
  return 0;
}
