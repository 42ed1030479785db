/* Unit tests of SSH signature verification (PROTOCOL.sshsig). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/common.h"
#include "tg/sshsig.h"
#include "tg/banned.h"

/* Test vectors made with ssh-keygen -Y sign -n git (ed-file: -n file). */
static const char MSG[] = "tree abc\n\nhello signed world\n";
static const char ED_PUB[] =
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHaXh4E2D/DLuqpIHR6JqBkYQ1tvOtBhVPMl6Ba+7f+4 ed";
static const char RSA_PUB[] =
	"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCVkHc3zLDS9+Zq3avDSUEsSXRynZi0+/IO28B8Sv0GA2RvyIbBIuZDwixqPqXvhPOvUv5+0iO01tbSbV3PrI3pBXHgz7erQcEWrOg3B4EyRK7he8AuTnjaaXEveFMtWHrHLJx7Et4OFl6YPtV+YO/J8touom1pzGuC5xrZZt426OEsM1ddCbpdjhiwbK50tdcEyfCyFLtjZY6zOBNbBBgxHiqmWhy0+0yS2VdLDhk9/giAMPVFPJWp2Kz+Mk8LRJFnsZzS7rtIEH5izrpVNvzQCGfNtlvA2vPkafyKP45DFrC/P4VMUipLNu3AYZjnriz7H3ekrrf4gE15Jfk/uSbX rsa";
static const char ED_FPR[] = "SHA256:8m+bjUM8YptNCD4V3wynS+tSgjagIq2g+LvvjfpOXi0";
static const char ED_SIG[] =
	"-----BEGIN SSH SIGNATURE-----\n"
	"U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgdpeHgTYP8Mu6qkgdHomoGRhDW2\n"
	"860GFU8yXoFr7t/7gAAAADZ2l0AAAAAAAAAAZzaGE1MTIAAABTAAAAC3NzaC1lZDI1NTE5\n"
	"AAAAQBalmi/4Deqrx/u9dNRee+Kk/rZp/sTXOaivRC8Lsb4PtolmtLk6IlB1s3zxbheKXF\n"
	"QOcQ3hGurmCOsCJKG9VAE=\n"
	"-----END SSH SIGNATURE-----\n";
static const char RSA_SIG[] =
	"-----BEGIN SSH SIGNATURE-----\n"
	"U1NIU0lHAAAAAQAAARcAAAAHc3NoLXJzYQAAAAMBAAEAAAEBAJWQdzfMsNL35mrdq8NJQS\n"
	"xJdHKdmLT78g7bwHxK/QYDZG/IhsEi5kPCLGo+pe+E869S/n7SI7TW1tJtXc+sjekFceDP\n"
	"t6tBwRas6DcHgTJEruF7wC5OeNppcS94Uy1YescsnHsS3g4WXpg+1X5g78ny2i6ibWnMa4\n"
	"LnGtlm3jbo4SwzV10Jul2OGLBsrnS11wTJ8LIUu2NljrM4E1sEGDEeKqZaHLT7TJLZV0sO\n"
	"GT3+CIAw9UU8lanYrP4yTwtEkWexnNLuu0gQfmLOulU2/NAIZ822W8Da8+Rp/Io/jkMWsL\n"
	"8/hUxSKks27cBhmOeuLPsfd6Sut/iATXkl+T+5JtcAAAADZ2l0AAAAAAAAAAZzaGE1MTIA\n"
	"AAEUAAAADHJzYS1zaGEyLTUxMgAAAQCFEqKUcAiTA638+k2cDDHJIaphvzNsXI03WIpfJJ\n"
	"Syh/NMR5lNnBiarnXK7AQYe7BKfSOPO+U9TNT7q32LBzNjwIKvS0zI024N+HmOtOmYhVKJ\n"
	"1u0Q8rIC5/2kJ/HH0jMhpbpiORGJ3hj5FaK2wqzUXQ+wzd62ayQirJFcOL3nAqMc1LTG+o\n"
	"tdnKO03qH1MMWax9BWteltqfobBPr1XICaDE3Usko8SEBVM1UD7yNrGtEaPe2ltM5sd4D+\n"
	"QsqBdSdSK7ib+2RpkDE9MX+E5oj9f3T3UVhCf0NHczdmI6y+27CrMQPpl0XKZnT7JH1gHn\n"
	"9ufciqjLTVsxsHbUfYSV/N\n"
	"-----END SSH SIGNATURE-----\n";
static const char ED_FILE_SIG[] =
	"-----BEGIN SSH SIGNATURE-----\n"
	"U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgdpeHgTYP8Mu6qkgdHomoGRhDW2\n"
	"860GFU8yXoFr7t/7gAAAAEZmlsZQAAAAAAAAAGc2hhNTEyAAAAUwAAAAtzc2gtZWQyNTUx\n"
	"OQAAAECMXR+PP4b4IMA6wvd3VjtmPugbLpM7fpjUMMwbI1N4fTCoAYPDONsi0qVUbkActV\n"
	"Arziq2nFEyd5HFwyx1ep0E\n"
	"-----END SSH SIGNATURE-----\n";

static int verify(const char *sig, const char *msg, const char *ns, const char *key1,
		  const char *key2, struct tg_err *err)
{
	const char *keys[2] = { key1, key2 };

	return tg_sshsig_verify(sig, strlen(sig), msg, strlen(msg), ns, keys, key2 ? 2 : 1, NULL,
				err);
}

static void test_verify__ed25519_and_rsa_signatures_by_trusted_keys(void **state)
{
	const char *keys[2] = { RSA_PUB, ED_PUB };
	struct tg_err err;
	char fpr[64];

	(void)state;
	assert_int_equal(tg_sshsig_verify(ED_SIG, strlen(ED_SIG), MSG, strlen(MSG), "git", keys, 2,
					  fpr, &err),
			 0);
	assert_string_equal(fpr, ED_FPR);
	assert_int_equal(verify(RSA_SIG, MSG, "git", RSA_PUB, NULL, &err), 0);
}

static void test_verify__refuses_untrusted_tampered_and_wrong_namespace(void **state)
{
	struct tg_err err;

	(void)state;
	assert_int_equal(verify(ED_SIG, MSG, "git", RSA_PUB, NULL, &err), TG_EINVALID);
	assert_string_equal(err.msg, "signing key "
				     "SHA256:8m+bjUM8YptNCD4V3wynS+tSgjagIq2g+LvvjfpOXi0"
				     " is not a trusted key");
	assert_int_equal(
		verify(ED_SIG, "tree abc\n\nhello forged world\n", "git", ED_PUB, NULL, &err),
		TG_EINVALID);
	assert_non_null(strstr(err.msg, "does not verify"));
	assert_int_equal(verify(RSA_SIG, "x", "git", RSA_PUB, NULL, &err), TG_EINVALID);
	assert_non_null(strstr(err.msg, "does not verify"));
	assert_int_equal(verify(ED_FILE_SIG, MSG, "git", ED_PUB, NULL, &err), TG_EINVALID);
	assert_string_equal(err.msg, "ssh signature namespace is 'file', expected 'git'");
}

static void test_verify__rejects_malformed_input(void **state)
{
	struct tg_err err;
	char *s;
	size_t n;

	(void)state;
	assert_int_equal(verify("", MSG, "git", ED_PUB, NULL, &err), TG_EINVALID);
	assert_non_null(strstr(err.msg, "not an ssh signature"));
	assert_int_equal(
		verify("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n", MSG, "git", ED_PUB, NULL, &err),
		TG_EINVALID);
	assert_non_null(strstr(err.msg, "bad armor"));
	assert_int_equal(verify("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----",
				MSG, "git", ED_PUB, NULL, &err),
			 TG_EINVALID);
	assert_non_null(strstr(err.msg, "bad magic"));
	/* truncate the base64 body: every prefix must fail cleanly */
	s = tg_xstrdup(ED_SIG);
	for (n = 40; n < strlen(ED_SIG) - 40; n += 7) {
		char *t = tg_xasprintf("%.*s\n-----END SSH SIGNATURE-----\n", (int)n, ED_SIG);

		assert_int_equal(verify(t, MSG, "git", ED_PUB, NULL, &err), TG_EINVALID);
		free(t);
	}
	/* flip one base64 character of the signature */
	s[strlen(s) - 40] = s[strlen(s) - 40] == 'A' ? 'B' : 'A';
	assert_int_equal(verify(s, MSG, "git", ED_PUB, NULL, &err), TG_EINVALID);
	free(s);
}

static void test_parse_pubkey__types_and_garbage(void **state)
{
	unsigned char *blob;
	size_t n;
	struct tg_err err;
	char fpr[64];

	(void)state;
	assert_int_equal(tg_sshsig_parse_pubkey(&blob, &n, ED_PUB, strlen(ED_PUB), &err), 0);
	assert_int_equal(n, 51);
	tg_sshsig_fingerprint(fpr, blob, n);
	assert_string_equal(fpr, ED_FPR);
	free(blob);
	assert_int_equal(tg_sshsig_parse_pubkey(&blob, &n, RSA_PUB, strlen(RSA_PUB), &err), 0);
	free(blob);
	/* type in the line must match the blob */
	assert_int_equal(tg_sshsig_parse_pubkey(&blob, &n,
						"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHaXh4E2D"
						"/DLuqpIHR6JqBkYQ1tvOtBhVPMl6Ba+7f+4",
						76, &err),
			 TG_EINVALID);
	assert_int_equal(tg_sshsig_parse_pubkey(&blob, &n, "ssh-ed25519", 11, &err), TG_EINVALID);
	assert_int_equal(tg_sshsig_parse_pubkey(&blob, &n, "ecdsa-sha2-nistp256 AAAA", 24, &err),
			 TG_EINVALID);
	assert_null(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify__ed25519_and_rsa_signatures_by_trusted_keys),
		cmocka_unit_test(test_verify__refuses_untrusted_tampered_and_wrong_namespace),
		cmocka_unit_test(test_verify__rejects_malformed_input),
		cmocka_unit_test(test_parse_pubkey__types_and_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
