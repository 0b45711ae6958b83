/* conn_accept.c: a connection for this loop, or the short 503 and lingering
 * close of one over server.max_connections. */
#include "conn_internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net.h"
#include "response.h"

static void format_peer(uv_tcp_t *tcp, char *out, size_t outlen) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len);
  net_peer_name(&ss, out, outlen);
}

void conn_accept(evloop_t *l) {
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    log_msg("out of memory accepting a connection");
    return;
  }
  c->loop = l;
  uv_tcp_init(&l->uv, &c->tcp);
  c->tcp.data = c;
  c->prev = NULL;
  c->next = l->conns;
  if (l->conns != NULL)
    l->conns->prev = c;
  l->conns = c;
  if (stats_conn_take(l->stats, l->cfg->server.max_connections) != 0) {
    /* Over the limit: a short 503 and a close, never a queue. */
    c->refused = true;
    if (uv_accept((uv_stream_t *)&l->listener, (uv_stream_t *)&c->tcp) != 0) {
      conn_close(c);
      return;
    }
    if (resp_write_refused(&l->out, date_cache_get(&l->env.date)) == 0) {
      uv_buf_t b = uv_buf_init(l->out.data, (unsigned)l->out.len);
      uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    l->out.len = 0;
    if (l->nlingering_refused >= LINGERING_REFUSED_MAX) {
      conn_close(c);
      return;
    }
    conn_set_reading(c, true);
    conn_finish(c);
    return;
  }
  l->nconns++;
  rq_table_add(&l->rq, RQ_IDLE, 1); /* conn_close takes it out of the counts */
  if (uv_accept((uv_stream_t *)&l->listener, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  char peer[64];
  format_peer(&c->tcp, peer, sizeof peer);
  session_init(&c->session, &l->env, peer, now_ms(c));
  buf_init(&c->inbuf, INBUF_MAX + LOOP_READ_BUF);
  conn_set_reading(c, true);
  conn_arm(c);
}

void conn_abort(conn_t *c) { conn_close(c); }
