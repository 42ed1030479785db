/*
 * The gateway's three lists requested as a pass starts, read on a thread
 * of their own while the pass fetches git and loads the desired state.
 *
 * Why: the gateway builds each list whole before it sends the first byte
 * (about 0.1 s at 10,000 objects, over a second at 100,000), and a pass
 * used to spend as long loading its commit before it asked.  Asked first,
 * the two overlap.
 *
 * The gateway handle belongs to the list thread from tg_lists_ahead_start
 * until tg_lists_ahead_wait returns: the pass must not use it in between
 * (one thread at a time, as libcurl wants).  Arriving bytes are kept until
 * the pass hands over its feeds (tg_lists_ahead_feed); from then on the
 * thread gives every arrival to them, the bytes before included, so that
 * elements are handled while the other lists are still arriving.
 */
#ifndef TG_LISTAHEAD_H
#define TG_LISTAHEAD_H

#include "tg/common.h"
#include "tg/desired.h"
#include "tg/gateway.h"

struct tg_lists_ahead;

/* Starts the three list calls of gw (tg_gateway_list_all_raw) on a new
 * thread, or, without on_thread or when no thread can be made, gets them
 * ready to run at tg_lists_ahead_wait on the caller's thread: for a pass
 * with nothing to do meanwhile, whose allocations then stay in its own
 * malloc arena (a drift pass measured 10 % slower with a thread). */
struct tg_lists_ahead *tg_lists_ahead_start(struct tg_gateway *gw, int on_thread);

/* From now on each kind's reply goes to progress(ctx[kind], ...) as it
 * arrives (see tg_gateway_progress_fn): what came before at the next
 * arrival.  Call at most once, before tg_lists_ahead_wait. */
void tg_lists_ahead_feed(struct tg_lists_ahead *a, tg_gateway_progress_fn progress,
			 void *const ctx[TG_KIND_COUNT]);

/* Waits for the calls and frees a: replies[k].body (the caller's) and len
 * as tg_gateway_list_all_raw gives them, or its error.  replies' progress
 * fields are not used.  err may be NULL. */
int tg_lists_ahead_wait(struct tg_lists_ahead *a, struct tg_list_reply replies[TG_KIND_COUNT],
			struct tg_err *err);

/* Waits for the calls of a pass that no longer needs them; frees a.  NULL
 * is a no-op. */
void tg_lists_ahead_drop(struct tg_lists_ahead *a);

#endif
