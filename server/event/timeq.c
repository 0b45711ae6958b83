/* timeq.c: a loop's deadlines: a binary min-heap of nodes, one uv_timer_t
 * for the earliest, an idle handle for a burst's rest (timeq.h). */
#include "timeq.h"

#include "handle.h"

#include <errno.h>
#include <stdlib.h>

#define TIMEQ_MIN_CAP 64

static void place(timeq_t *q, uint32_t i, timeq_node_t *n) {
  q->heap[i] = n;
  n->pos = i + 1;
}

static void sift_up(timeq_t *q, uint32_t i) {
  timeq_node_t *n = q->heap[i];
  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (q->heap[p]->due <= n->due)
      break;
    place(q, i, q->heap[p]);
    i = p;
  }
  place(q, i, n);
}

static void sift_down(timeq_t *q, uint32_t i) {
  timeq_node_t *n = q->heap[i];
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= q->n)
      break;
    if (c + 1 < q->n && q->heap[c + 1]->due < q->heap[c]->due)
      c++;
    if (q->heap[c]->due >= n->due)
      break;
    place(q, i, q->heap[c]);
    i = c;
  }
  place(q, i, n);
}

static void on_timer(uv_timer_t *t);

/* The timer fires no later than the earliest deadline. It is moved only
 * when that comes sooner: when the earliest node goes or moves later, the
 * timer fires early, finds nothing due and is armed again. */
static void arm(timeq_t *q) {
  if (q->backlog || q->n == 0)
    return;
  uint64_t due = q->heap[0]->due;
  if (due >= q->armed)
    return;
  uint64_t now = uv_now(q->timer.loop);
  uv_timer_start(&q->timer, on_timer, due > now ? due - now : 0, 0);
  q->armed = due;
}

/* A batch, and whether due nodes are left for the next turn. */
static bool run_batch(timeq_t *q) {
  uint64_t now = uv_now(q->timer.loop);
  timeq_expire(q, now, TIMEQ_BATCH);
  return q->n > 0 && q->heap[0]->due <= now;
}

static void on_idle(uv_idle_t *h) {
  timeq_t *q = h->data;
  if (q->fresh) { /* the turn that left the backlog: poll first */
    q->fresh = false;
    return;
  }
  if (run_batch(q))
    return;
  q->backlog = false;
  uv_idle_stop(&q->idle);
  arm(q);
}

static void on_timer(uv_timer_t *t) {
  timeq_t *q = t->data;
  q->armed = UINT64_MAX;
  q->backlog = true; /* no arming while the batch runs (a due of now would fire in this pass) */
  if (run_batch(q)) {
    q->fresh = true;
    uv_idle_start(&q->idle, on_idle);
    return;
  }
  q->backlog = false;
  arm(q);
}

int timeq_init(timeq_t *q, uv_loop_t *loop, timeq_fire_fn fire, void *arg) {
  q->heap = NULL;
  q->n = q->cap = 0;
  q->armed = UINT64_MAX;
  q->backlog = q->fresh = false;
  q->fire = fire;
  q->arg = arg;
  int r = uv_timer_init(loop, &q->timer);
  if (r != 0)
    return r;
  if ((r = uv_idle_init(loop, &q->idle)) != 0)
    return r;
  q->timer.data = q->idle.data = q;
  /* Deadlines belong to connections, whose sockets keep the loop alive. */
  uv_unref((uv_handle_t *)&q->timer);
  uv_unref((uv_handle_t *)&q->idle);
  return 0;
}

void timeq_close(timeq_t *q) {
  evloop_close_handle((uv_handle_t *)&q->timer);
  evloop_close_handle((uv_handle_t *)&q->idle);
}

void timeq_free(timeq_t *q) {
  free(q->heap);
  q->heap = NULL;
  q->n = q->cap = 0;
}

static int grow(timeq_t *q) {
  uint32_t cap = q->cap > 0 ? q->cap * 2 : TIMEQ_MIN_CAP;
  timeq_node_t **h = realloc(q->heap, cap * sizeof *h);
  if (h == NULL)
    return -ENOMEM;
  q->heap = h;
  q->cap = cap;
  return 0;
}

/* After a burst of closes: give the array back, halving it once it is a
 * quarter full. */
static void shrink(timeq_t *q) {
  if (q->cap <= TIMEQ_MIN_CAP || q->n >= q->cap / 4)
    return;
  timeq_node_t **h = realloc(q->heap, (q->cap / 2) * sizeof *h);
  if (h == NULL)
    return;
  q->heap = h;
  q->cap /= 2;
}

int timeq_set(timeq_t *q, timeq_node_t *n, uint64_t due) {
  if (timeq_queued(n)) {
    uint64_t old = n->due;
    n->due = due;
    if (due < old)
      sift_up(q, n->pos - 1);
    else if (due > old)
      sift_down(q, n->pos - 1);
  } else {
    if (q->n == q->cap && grow(q) != 0)
      return -ENOMEM;
    n->due = due;
    place(q, q->n, n);
    sift_up(q, q->n++);
  }
  arm(q);
  return 0;
}

void timeq_remove(timeq_t *q, timeq_node_t *n) {
  if (!timeq_queued(n))
    return;
  uint32_t i = n->pos - 1;
  n->pos = 0;
  timeq_node_t *last = q->heap[--q->n];
  if (i < q->n) {
    place(q, i, last);
    if (last->due < n->due)
      sift_up(q, i);
    else
      sift_down(q, i);
  }
  shrink(q);
}

unsigned timeq_expire(timeq_t *q, uint64_t now, unsigned max) {
  unsigned k = 0;
  while (k < max && q->n > 0 && q->heap[0]->due <= now) {
    timeq_node_t *n = q->heap[0];
    timeq_remove(q, n);
    k++;
    q->fire(n, q->arg);
  }
  return k;
}
