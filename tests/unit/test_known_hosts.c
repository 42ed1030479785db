/* Unit tests of known_hosts lookup: patterns, ports, hashed names, @revoked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tg/common.h"
#include "tg/known_hosts.h"
#include "tg/banned.h"

/* SSH wire blobs of two ed25519 keys. */
static unsigned char key_a[51], key_b[51];

static void make_key(unsigned char blob[51], unsigned char fill)
{
	static const char type[] = "ssh-ed25519";

	memset(blob, 0, 51);
	blob[3] = 11;
	memcpy(blob + 4, type, 11);
	blob[18] = 32;
	memset(blob + 19, fill, 32);
}

static char *b64(const unsigned char *p, size_t n)
{
	char *out = tg_xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

static int kh(const char *text, const char *host, int port, const unsigned char *key)
{
	return tg_known_hosts_check(text, strlen(text), host, port, key, 51);
}

static void test_known_hosts__plain_port_and_patterns(void **state)
{
	char *a = b64(key_a, 51), *b = b64(key_b, 51), *text;

	(void)state;
	text = tg_xasprintf("# comment\n\n"
			    "github.com,gitlab.com ssh-ed25519 %s\n"
			    "[127.0.0.1]:2222 ssh-ed25519 %s c\n"
			    "*.corp.example,!bad.corp.example ssh-ed25519 %s\n"
			    "@cert-authority *.example ssh-ed25519 %s\n",
			    a, b, a, b);
	assert_int_equal(kh(text, "github.com", 22, key_a), 0);
	assert_int_equal(kh(text, "GitLab.com", 22, key_a), 0);
	assert_int_equal(kh(text, "github.com", 22, key_b), TG_ECONFLICT);
	assert_int_equal(kh(text, "127.0.0.1", 2222, key_b), 0);
	assert_int_equal(kh(text, "127.0.0.1", 22, key_b), TG_ENOTFOUND);
	assert_int_equal(kh(text, "127.0.0.1", 2223, key_b), TG_ENOTFOUND);
	assert_int_equal(kh(text, "git.corp.example", 22, key_a), 0);
	assert_int_equal(kh(text, "bad.corp.example", 22, key_a), TG_ENOTFOUND);
	/* a CA line does not vouch for a host key */
	assert_int_equal(kh(text, "x.example", 22, key_b), TG_ENOTFOUND);
	free(text);
	free(a);
	free(b);
}

static void test_known_hosts__many_stars_match_in_linear_time(void **state)
{
	char *a = b64(key_a, 51), *text, host[4096];
	long long t0;

	(void)state;
	/* "*a*a*a...*a" + "b" against "aaaa...": exponential for a
	 * backtracking matcher (9 stars took 15 s). */
	text = tg_xasprintf(
		"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*ab,?x*y?.example ssh-ed25519 %s\n", a);
	memset(host, 'a', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	t0 = tg_now_ms();
	assert_int_equal(kh(text, host, 22, key_a), TG_ENOTFOUND);
	assert_true(tg_now_ms() - t0 < 1000);
	assert_int_equal(kh(text, "aaab", 22, key_a), TG_ENOTFOUND); /* needs 20 a's */
	assert_int_equal(kh(text, "axqqy1.example", 22, key_a), 0);
	assert_int_equal(kh(text, "AXY1.EXAMPLE", 22, key_a), 0);
	assert_int_equal(kh(text, "xy1.example", 22, key_a), TG_ENOTFOUND);
	free(text);
	free(a);
}

static void test_known_hosts__hashed_names_and_revoked(void **state)
{
	static const unsigned char salt[20] = "0123456789abcdefghij";
	unsigned char mac[20];
	unsigned int len = 0;
	const char *name = "[10.0.0.5]:2200";
	char *a = b64(key_a, 51), *s = b64(salt, 20), *h, *text;

	(void)state;
	HMAC(EVP_sha1(), salt, 20, (const unsigned char *)name, strlen(name), mac, &len);
	h = b64(mac, 20);
	text = tg_xasprintf("|1|%s|%s ssh-ed25519 %s\n@revoked * ssh-ed25519 %s\n", s, h, a,
			    "AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	assert_int_equal(kh(text, "10.0.0.5", 2200, key_a), 0);
	assert_int_equal(kh(text, "10.0.0.5", 22, key_a), TG_ENOTFOUND);
	assert_int_equal(kh(text, "10.0.0.5", 2200, key_b), TG_ECONFLICT);
	free(text);
	/* a revoked key is refused even when also listed */
	text = tg_xasprintf("host ssh-ed25519 %s\n@revoked host ssh-ed25519 %s\n", a, a);
	assert_int_equal(kh(text, "host", 22, key_a), TG_ECONFLICT);
	free(text);
	/* garbage lines are skipped */
	text = tg_xasprintf("host\nhost ssh-ed25519\nhost ssh-ed25519 !!!!\n|1|x ssh-ed25519 %s\n",
			    a);
	assert_int_equal(kh(text, "host", 22, key_a), TG_ENOTFOUND);
	free(text);
	free(a);
	free(s);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_hosts__plain_port_and_patterns),
		cmocka_unit_test(test_known_hosts__hashed_names_and_revoked),
		cmocka_unit_test(test_known_hosts__many_stars_match_in_linear_time),
	};

	make_key(key_a, 0xaa);
	make_key(key_b, 0xbb);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
