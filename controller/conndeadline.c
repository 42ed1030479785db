/*
 * Request deadlines for the HTTP server (see include/tg/conndeadline.h).
 *
 * A doubly linked list under one mutex: connections are few (the server's
 * connection limit) and every operation is O(1) except the thread's scan,
 * which runs only when a deadline falls due or a connection is added.
 */
#include "tg/conndeadline.h"

#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tg/common.h"
#include "tg/banned.h"

struct tg_conndeadline {
	struct tg_conndeadline *prev, *next;
	int fd;           /* our duplicate of the connection's socket */
	long long due_ms; /* monotonic; 0 while a request is being answered */
};

struct tg_conndeadlines {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	struct tg_conndeadline *head;
	long long limit_ms;
	tg_conndeadline_cut_fn on_cut;
	void *ctx;
	int stop;
};

/* Under the lock: shut down every connection past due, count them in *cut,
 * return the earliest deadline still pending (0: none). */
static long long cut_late(struct tg_conndeadlines *set, long long now, unsigned *cut)
{
	long long next = 0;

	for (struct tg_conndeadline *c = set->head; c; c = c->next) {
		if (!c->due_ms)
			continue;
		if (c->due_ms <= now) {
			shutdown(c->fd, SHUT_RDWR);
			c->due_ms = 0;
			(*cut)++;
		} else if (!next || c->due_ms < next) {
			next = c->due_ms;
		}
	}
	return next;
}

static void *deadline_main(void *arg)
{
	struct tg_conndeadlines *set = arg;

	pthread_mutex_lock(&set->lock);
	while (!set->stop) {
		unsigned cut = 0;
		long long next = cut_late(set, tg_now_ms(), &cut);

		if (cut && set->on_cut) {
			pthread_mutex_unlock(&set->lock);
			set->on_cut(set->ctx, cut);
			pthread_mutex_lock(&set->lock);
			continue;
		}
		if (next) {
			struct timespec ts;

			tg_timespec_at(&ts, next);
			pthread_cond_timedwait(&set->wake, &set->lock, &ts);
		} else {
			pthread_cond_wait(&set->wake, &set->lock);
		}
	}
	pthread_mutex_unlock(&set->lock);
	return NULL;
}

struct tg_conndeadlines *tg_conndeadlines_new(long long limit_ms, tg_conndeadline_cut_fn on_cut,
					      void *ctx)
{
	struct tg_conndeadlines *set = tg_xcalloc(1, sizeof(*set));

	assert(limit_ms > 0);
	set->limit_ms = limit_ms;
	set->on_cut = on_cut;
	set->ctx = ctx;
	pthread_mutex_init(&set->lock, NULL);
	tg_cond_init_monotonic(&set->wake);
	if (pthread_create(&set->thread, NULL, deadline_main, set)) {
		pthread_cond_destroy(&set->wake);
		pthread_mutex_destroy(&set->lock);
		free(set);
		return NULL;
	}
	return set;
}

void tg_conndeadlines_free(struct tg_conndeadlines *set)
{
	if (!set)
		return;
	pthread_mutex_lock(&set->lock);
	set->stop = 1;
	pthread_cond_signal(&set->wake);
	pthread_mutex_unlock(&set->lock);
	pthread_join(set->thread, NULL);
	assert(!set->head);
	pthread_cond_destroy(&set->wake);
	pthread_mutex_destroy(&set->lock);
	free(set);
}

struct tg_conndeadline *tg_conndeadlines_add(struct tg_conndeadlines *set, int fd)
{
	struct tg_conndeadline *c;
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (dup_fd < 0)
		return NULL;
	c = tg_xcalloc(1, sizeof(*c));
	c->fd = dup_fd;
	pthread_mutex_lock(&set->lock);
	c->due_ms = tg_now_ms() + set->limit_ms;
	c->next = set->head;
	if (set->head)
		set->head->prev = c;
	set->head = c;
	/* The new deadline may be the earliest only when nothing else is
	 * pending, but waking the thread is cheap and keeps this simple. */
	pthread_cond_signal(&set->wake);
	pthread_mutex_unlock(&set->lock);
	return c;
}

void tg_conndeadlines_remove(struct tg_conndeadlines *set, struct tg_conndeadline *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&set->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		set->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&set->lock);
	close(c->fd);
	free(c);
}

static void set_due(struct tg_conndeadlines *set, struct tg_conndeadline *c, int armed)
{
	if (!c)
		return;
	pthread_mutex_lock(&set->lock);
	c->due_ms = armed ? tg_now_ms() + set->limit_ms : 0;
	if (armed)
		pthread_cond_signal(&set->wake);
	pthread_mutex_unlock(&set->lock);
}

void tg_conndeadlines_received(struct tg_conndeadlines *set, struct tg_conndeadline *c)
{
	set_due(set, c, 0);
}

void tg_conndeadlines_rearm(struct tg_conndeadlines *set, struct tg_conndeadline *c)
{
	set_due(set, c, 1);
}
