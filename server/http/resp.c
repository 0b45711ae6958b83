/* resp.c: response heads and chunk framing. */
#include "resp.h"

#include "date.h"

const char *resp_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 203: return "Non-Authoritative Information";
  case 204: return "No Content";
  case 205: return "Reset Content";
  case 206: return "Partial Content";
  case 300: return "Multiple Choices";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 402: return "Payment Required";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 418: return "I'm a teapot";
  case 421: return "Misdirected Request";
  case 422: return "Unprocessable Content";
  case 425: return "Too Early";
  case 426: return "Upgrade Required";
  case 428: return "Precondition Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 451: return "Unavailable For Legal Reasons";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

#define LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

int resp_write_head(buf_t *out, const resp_head_t *h, const char *date) {
  const char *reason = resp_reason(h->status);
  size_t rlen = strlen(reason);
  size_t ctlen = h->content_type ? strlen(h->content_type) : 0;
  size_t xlen = h->extra ? strlen(h->extra) : 0;
  /* One reservation, then plain copies: this runs for every response. */
  if (buf_reserve(out, 160 + rlen + ctlen + xlen) != 0)
    return -1;
  char *p = out->data + out->len;
  memcpy(p, "HTTP/1.1 ", 9);
  p += 9;
  p[0] = (char)('0' + h->status / 100 % 10);
  p[1] = (char)('0' + h->status / 10 % 10);
  p[2] = (char)('0' + h->status % 10);
  p[3] = ' ';
  p += 4;
  memcpy(p, reason, rlen);
  p += rlen;
  static const char srv[] = "\r\nServer: loopd\r\nDate: ";
  memcpy(p, srv, sizeof srv - 1);
  p += sizeof srv - 1;
  memcpy(p, date, DATE_LEN);
  p += DATE_LEN;
  if (ctlen) {
    memcpy(p, "\r\nContent-Type: ", 16);
    p += 16;
    memcpy(p, h->content_type, ctlen);
    p += ctlen;
  }
  if (h->content_length >= 0) {
    memcpy(p, "\r\nContent-Length: ", 18);
    p += 18;
    p += fmt_u64(p, (unsigned long long)h->content_length);
  } else if (h->content_length == RESP_CHUNKED) {
    static const char te[] = "\r\nTransfer-Encoding: chunked";
    memcpy(p, te, sizeof te - 1);
    p += sizeof te - 1;
  }
  if (h->connection == RESP_CONN_CLOSE) {
    memcpy(p, "\r\nConnection: close", 19);
    p += 19;
  } else if (h->connection == RESP_CONN_KEEP_ALIVE) {
    memcpy(p, "\r\nConnection: keep-alive", 24);
    p += 24;
  }
  memcpy(p, "\r\n", 2);
  p += 2;
  if (xlen) {
    memcpy(p, h->extra, xlen);
    p += xlen;
  }
  memcpy(p, "\r\n", 2);
  p += 2;
  out->len = (size_t)(p - out->data);
  return 0;
}

int resp_write_chunk(buf_t *out, const void *data, size_t n) {
  if (n == 0)
    return 0;
  static const char hex[] = "0123456789abcdef";
  char size[20];
  size_t i = sizeof size;
  size[--i] = '\n';
  size[--i] = '\r';
  for (size_t v = n; v; v >>= 4)
    size[--i] = hex[v & 15];
  if (buf_reserve(out, sizeof size - i + n + 2) != 0)
    return -1;
  buf_append(out, size + i, sizeof size - i);
  buf_append(out, data, n);
  return LIT(out, "\r\n");
}

int resp_write_last_chunk(buf_t *out) { return LIT(out, "0\r\n\r\n"); }

int resp_write_continue(buf_t *out, const char *date) {
  resp_head_t h = {.status = 100, .content_length = RESP_NO_BODY};
  return resp_write_head(out, &h, date);
}

/* The 503 for a connection over server.max_connections: a head like every
 * other (Date, Server, a counted length), written without a session. */
int resp_write_refused(buf_t *out, const char *date) {
  static const char body[] = "too many connections\n";
  resp_head_t h = {.status = 503, .content_type = "text/plain",
                   .content_length = (int64_t)(sizeof body - 1), .connection = RESP_CONN_CLOSE,
                   .extra = "Retry-After: 1\r\n"};
  if (resp_write_head(out, &h, date) != 0)
    return -1;
  return buf_append(out, body, sizeof body - 1);
}
