/* Request deadlines: late connections are shut down, answered ones are not. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg/common.h"
#include "tg/conndeadline.h"

/* Short enough for a quick test; tests that need a connection spared use
 * SPARE_MS, so that a loaded machine (valgrind, other builds) descheduling
 * the test between two calls cannot make it late. */
#define LIMIT_MS 100
#define SPARE_MS 5000

struct counter {
	pthread_mutex_t lock;
	unsigned n;
};

static void count_cut(void *ctx, unsigned n)
{
	struct counter *c = ctx;

	pthread_mutex_lock(&c->lock);
	c->n += n;
	pthread_mutex_unlock(&c->lock);
}

static unsigned counted(struct counter *c)
{
	unsigned n;

	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* The count once it reached want, or as it is after 5 s: the callback runs
 * after the shutdown the client sees, so it may lag behind by a moment. */
static unsigned counted_at_least(struct counter *c, unsigned want)
{
	long long until = tg_now_ms() + 5000;
	unsigned n;

	while ((n = counted(c)) < want && tg_now_ms() < until)
		poll(NULL, 0, 5);
	return n;
}

/* Whether the client end sees end of file within wait_ms. */
static int client_sees_eof(int fd, int wait_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char b;

	if (poll(&p, 1, wait_ms) != 1)
		return 0;
	return read(fd, &b, 1) == 0;
}

static void test_conndeadline__cuts_a_connection_that_sends_nothing(void **state)
{
	struct counter cnt = { PTHREAD_MUTEX_INITIALIZER, 0 };
	struct tg_conndeadlines *set = tg_conndeadlines_new(LIMIT_MS, count_cut, &cnt);
	struct tg_conndeadline *c;
	long long t0 = tg_now_ms();
	int sv[2];

	(void)state;
	assert_non_null(set);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = tg_conndeadlines_add(set, sv[0]);
	assert_non_null(c);
	assert_true(client_sees_eof(sv[1], 2000));
	assert_true(tg_now_ms() - t0 >= LIMIT_MS);
	assert_int_equal(counted_at_least(&cnt, 1), 1);
	tg_conndeadlines_remove(set, c);
	/* The server's descriptor is still its own: only the socket was shut. */
	assert_true(fcntl(sv[0], F_GETFD) >= 0);
	close(sv[0]);
	close(sv[1]);
	tg_conndeadlines_free(set);
}

static void test_conndeadline__spares_a_request_being_answered(void **state)
{
	struct counter cnt = { PTHREAD_MUTEX_INITIALIZER, 0 };
	struct tg_conndeadlines *set = tg_conndeadlines_new(SPARE_MS, count_cut, &cnt);
	struct tg_conndeadline *c;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = tg_conndeadlines_add(set, sv[0]);
	tg_conndeadlines_received(set, c);
	assert_false(client_sees_eof(sv[1], 300));
	assert_int_equal(counted(&cnt), 0);
	/* Answered: the next request is due again, SPARE_MS from now. */
	tg_conndeadlines_rearm(set, c);
	assert_true(client_sees_eof(sv[1], 3 * SPARE_MS));
	assert_int_equal(counted_at_least(&cnt, 1), 1);
	tg_conndeadlines_remove(set, c);
	close(sv[0]);
	close(sv[1]);
	tg_conndeadlines_free(set);
}

static void test_conndeadline__cuts_only_the_late_one_of_many(void **state)
{
	struct counter cnt = { PTHREAD_MUTEX_INITIALIZER, 0 };
	struct tg_conndeadlines *set = tg_conndeadlines_new(SPARE_MS / 5, count_cut, &cnt);
	struct tg_conndeadline *c[3];
	int sv[3][2];

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
		c[i] = tg_conndeadlines_add(set, sv[i][0]);
	}
	tg_conndeadlines_received(set, c[0]);
	tg_conndeadlines_received(set, c[2]);
	assert_true(client_sees_eof(sv[1][1], 3 * SPARE_MS));
	assert_false(client_sees_eof(sv[0][1], 200));
	assert_false(client_sees_eof(sv[2][1], 0));
	assert_int_equal(counted_at_least(&cnt, 1), 1);
	/* Removed in any order, including the list's head and middle. */
	tg_conndeadlines_remove(set, c[1]);
	tg_conndeadlines_remove(set, c[2]);
	tg_conndeadlines_remove(set, c[0]);
	tg_conndeadlines_remove(set, NULL);
	for (int i = 0; i < 3; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	tg_conndeadlines_free(set);
}

static void test_conndeadline__refuses_a_closed_descriptor(void **state)
{
	struct tg_conndeadlines *set = tg_conndeadlines_new(LIMIT_MS, NULL, NULL);

	(void)state;
	assert_null(tg_conndeadlines_add(set, -1));
	tg_conndeadlines_free(set);
	tg_conndeadlines_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conndeadline__cuts_a_connection_that_sends_nothing),
		cmocka_unit_test(test_conndeadline__spares_a_request_being_answered),
		cmocka_unit_test(test_conndeadline__cuts_only_the_late_one_of_many),
		cmocka_unit_test(test_conndeadline__refuses_a_closed_descriptor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
