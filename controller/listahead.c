/*
 * Lists read ahead (see include/tg/listahead.h).
 *
 * Each kind's progress goes through a relay: until the pass hands over its
 * feeds the relay drops the call (the bytes stay in the reply buffer, and
 * a feed scans from the start of what it is given), after it calls the
 * feed.  The relay reads the hand-over under the lock; the feeds are then
 * used by the list thread alone until the pass joins it.
 */
#include "tg/listahead.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tg/banned.h"

struct relay {
	struct tg_lists_ahead *a;
	enum tg_kind kind;
};

struct tg_lists_ahead {
	struct tg_gateway *gw;
	pthread_t thread;
	int threaded; /* thread runs; else the calls run at wait */
	pthread_mutex_t lock;
	tg_gateway_progress_fn progress; /* under lock; NULL until handed over */
	void *ctx[TG_KIND_COUNT];
	struct relay relays[TG_KIND_COUNT];
	struct tg_list_reply replies[TG_KIND_COUNT];
	struct tg_err err;
	int rc;
};

static size_t relay_progress(void *ctx, const char *data, size_t len)
{
	struct relay *r = ctx;
	struct tg_lists_ahead *a = r->a;
	tg_gateway_progress_fn progress;
	void *feed;

	pthread_mutex_lock(&a->lock);
	progress = a->progress;
	feed = a->ctx[r->kind];
	pthread_mutex_unlock(&a->lock);
	/* Before the hand-over every byte is kept for the feed to come. */
	return progress ? progress(feed, data, len) : 0;
}

static void run_calls(struct tg_lists_ahead *a)
{
	a->rc = tg_gateway_list_all_raw(a->gw, a->replies, &a->err);
}

static void *list_thread(void *arg)
{
	run_calls(arg);
	return NULL;
}

struct tg_lists_ahead *tg_lists_ahead_start(struct tg_gateway *gw, int on_thread)
{
	struct tg_lists_ahead *a = tg_xcalloc(1, sizeof(*a));

	a->gw = gw;
	pthread_mutex_init(&a->lock, NULL);
	for (int k = 0; k < TG_KIND_COUNT; k++) {
		a->relays[k].a = a;
		a->relays[k].kind = (enum tg_kind)k;
		a->replies[k].progress = relay_progress;
		a->replies[k].progress_ctx = &a->relays[k];
	}
	a->threaded = on_thread && pthread_create(&a->thread, NULL, list_thread, a) == 0;
	return a;
}

void tg_lists_ahead_feed(struct tg_lists_ahead *a, tg_gateway_progress_fn progress,
			 void *const ctx[TG_KIND_COUNT])
{
	pthread_mutex_lock(&a->lock);
	a->progress = progress;
	for (int k = 0; k < TG_KIND_COUNT; k++)
		a->ctx[k] = ctx[k];
	pthread_mutex_unlock(&a->lock);
}

static void join(struct tg_lists_ahead *a)
{
	if (a->threaded)
		pthread_join(a->thread, NULL);
	else
		run_calls(a);
}

static void release(struct tg_lists_ahead *a)
{
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int tg_lists_ahead_wait(struct tg_lists_ahead *a, struct tg_list_reply replies[TG_KIND_COUNT],
			struct tg_err *err)
{
	int rc;

	join(a);
	for (int k = 0; k < TG_KIND_COUNT; k++) {
		replies[k].body = a->replies[k].body;
		replies[k].len = a->replies[k].len;
		replies[k].dropped = a->replies[k].dropped;
	}
	rc = a->rc;
	if (rc && err)
		*err = a->err;
	release(a);
	return rc;
}

void tg_lists_ahead_drop(struct tg_lists_ahead *a)
{
	if (!a)
		return;
	join(a);
	for (int k = 0; k < TG_KIND_COUNT; k++)
		free(a->replies[k].body);
	release(a);
}
