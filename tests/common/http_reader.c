/* http_reader.c: the incremental response reader (http_reader.h). */
#include "http_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum { S_HEAD, S_LENGTH, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_CRLF, S_TRAILER, S_CLOSE };

void hr_init(hr_t *h) {
  bool head_only = h->head_only, strict = h->strict_framing;
  memset(h, 0, sizeof *h);
  h->head_only = head_only;
  h->strict_framing = strict;
}

const char *hr_header(const hr_t *h, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  const char *p = memchr(h->head, '\n', h->head_len), *end = h->head + h->head_len;
  while (p != NULL && ++p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
    if (len > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
      const char *v = p + nl + 1;
      while (v < p + len && (*v == ' ' || *v == '\t'))
        v++;
      size_t vl = (size_t)(p + len - v);
      while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
        vl--;
      vl = vl < cap - 1 ? vl : cap - 1;
      memcpy(out, v, vl);
      out[vl] = '\0';
      return out;
    }
    p = eol;
  }
  return NULL;
}

/* The head is complete: its status and framing decide what follows. */
static int head_done(hr_t *h) {
  hr_resp_t *r = &h->resp;
  *r = (hr_resp_t){.content_length = -1};
  if (h->head_len < 12 || strncmp(h->head, "HTTP/1.", 7) != 0) {
    h->bad++;
    return S_HEAD;
  }
  r->status = atoi(h->head + 9);
  char v[64];
  r->close = hr_header(h, "Connection", v, sizeof v) != NULL && strcasecmp(v, "close") == 0;
  bool chunked = hr_header(h, "Transfer-Encoding", v, sizeof v) != NULL && strcasestr(v, "chunked");
  if (hr_header(h, "Content-Length", v, sizeof v) != NULL)
    r->content_length = strtoll(v, NULL, 10);
  if (h->head_only || r->status / 100 == 1 || r->status == 204 || r->status == 304)
    return r->framing = HR_NONE, -1;
  if (chunked)
    return r->framing = HR_CHUNKED, S_CHUNK_SIZE;
  if (r->content_length >= 0) {
    r->framing = HR_LENGTH;
    h->left = (uint64_t)r->content_length;
    return h->left ? S_LENGTH : -1;
  }
  if (h->strict_framing)
    return h->bad++, r->framing = HR_NONE, -1;
  return r->framing = HR_UNTIL_CLOSE, S_CLOSE;
}

/* One byte of a head; -1 when the response ended with it. */
static int head_byte(hr_t *h, char c) {
  if (h->ended) { /* the first byte of the next response */
    h->ended = false;
    h->head_len = 0;
  }
  if (h->head_len == sizeof h->head - 1) {
    h->bad++;
    h->head_len = 0; /* a head this big is not one of ours */
  }
  h->head[h->head_len++] = c;
  h->head[h->head_len] = '\0';
  if (c != '\n' || h->head_len < 4 || memcmp(h->head + h->head_len - 4, "\r\n\r\n", 4) != 0)
    return S_HEAD;
  int next = head_done(h);
  if (next == S_HEAD)
    h->head_len = 0;
  return next;
}

/* One byte of a chunk-size line, a chunk's CRLF or a trailer line. */
static int line_byte(hr_t *h, char c) {
  if (c != '\n') {
    if (h->line_len < sizeof h->line - 1)
      h->line[h->line_len++] = c;
    return h->state;
  }
  h->line[h->line_len] = '\0';
  size_t len = h->line_len;
  h->line_len = 0;
  if (h->state == S_CHUNK_CRLF)
    return S_CHUNK_SIZE;
  if (h->state == S_TRAILER)
    return len == 0 || (len == 1 && h->line[0] == '\r') ? -1 : S_TRAILER;
  h->left = strtoull(h->line, NULL, 16);
  return h->left ? S_CHUNK_DATA : S_TRAILER;
}

size_t hr_feed(hr_t *h, const char *p, size_t n, bool *done) {
  *done = false;
  size_t i = 0;
  while (i < n) {
    int next;
    if (h->state == S_LENGTH || h->state == S_CHUNK_DATA || h->state == S_CLOSE) {
      size_t k = n - i;
      if (h->state != S_CLOSE && k > h->left)
        k = (size_t)h->left;
      h->resp.body_bytes += k;
      i += k;
      if (h->state == S_CLOSE)
        continue;
      h->left -= k;
      next = h->left > 0 ? h->state : h->state == S_LENGTH ? -1 : S_CHUNK_CRLF;
    } else {
      char c = p[i++];
      next = h->state == S_HEAD ? head_byte(h, c) : line_byte(h, c);
    }
    if (next < 0) {
      h->state = S_HEAD;
      h->ended = true;
      h->responses++;
      *done = true;
      return i;
    }
    h->state = next;
  }
  return i;
}

bool hr_eof(hr_t *h) {
  if (h->state != S_CLOSE)
    return false;
  h->state = S_HEAD;
  h->ended = true;
  h->responses++;
  return true;
}

int hr_read_fd(hr_t *h, int fd) {
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0 && hr_eof(h))
      return 0;
    if (n <= 0) {
      if (n == 0)
        errno = 0;
      return -1;
    }
    bool done;
    size_t used = hr_feed(h, buf, (size_t)n, &done);
    if (done) {
      h->overrun += (long)((size_t)n - used);
      return 0;
    }
  }
}
