/* reply.h: how a handler answers: a complete response, a streamed one (head,
 * body pieces, end), an error, or a JSON object. A handler that cannot answer
 * at once hands its mode a plan instead (plan.h). */
#ifndef LOOPD_REPLY_H
#define LOOPD_REPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "plan.h"
#include "response.h"
#include "route.h"

/* A complete response. */
void reply(route_ctx_t *rc, int status, const char *ctype, const void *body, size_t len);
/* Same, with extra header lines (each ending in CRLF). */
void reply_with(route_ctx_t *rc, int status, const char *ctype, const char *extra,
                const void *body, size_t len);
/* A text/plain "reason\n" response. */
void reply_error(route_ctx_t *rc, int status, const char *reason);
/* A streamed response: head, body pieces, end. length may be RESP_CHUNKED. */
void reply_head(route_ctx_t *rc, int status, const char *ctype, int64_t length, const char *extra);
void reply_body(route_ctx_t *rc, const void *data, size_t len);
void reply_end(route_ctx_t *rc);

/* A JSON object body built in rc->env->scratch: reply_json_begin opens it;
 * reply_json closes it, adds a newline and answers status with it (extra:
 * header lines, or NULL); 500 when it outgrew the scratch buffer. */
jw_t reply_json_begin(route_ctx_t *rc);
void reply_json(route_ctx_t *rc, jw_t *w, int status, const char *extra);

#endif
