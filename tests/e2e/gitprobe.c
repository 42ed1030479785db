/*
 * Test driver for the git source module: runs remote_head and/or sync with
 * options from argv and prints one JSON object.  Exit 0 on success, 1 on
 * failure (the JSON then holds "code" and "error"), 2 on bad usage.
 *
 *   gitprobe --url U --cache DIR [--branch B | --tag T | --commit SHA]
 *            [--op head|sync|both] [--times N] [--user U] [--password-file F]
 *            [--token-file F] [--ssh-key F] [--ssh-pub F] [--known-hosts F]
 *            [--insecure-host-key] [--ca F] [--timeout MS] [--max-file-size N]
 *            [--trusted-key LINE]...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/gitsrc.h"
#include "tg/banned.h"

#define MAX_KEYS 8

static void put_kv(struct tg_buf *b, const char *k, const char *v)
{
	tg_buf_printf(b, ",\"%s\":\"", k);
	tg_buf_put_json_escaped(b, v ? v : "");
	tg_buf_puts(b, "\"");
}

static long long num(const char *s)
{
	long long v = 0;

	if (tg_parse_ll(&v, s, 0, 1LL << 40) < 0) {
		fprintf(stderr, "gitprobe: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct tg_git_opts o;
	struct tg_git_source *src = NULL;
	struct tg_err err = { 0, "" };
	struct tg_buf b = TG_BUF_INIT;
	const char *keys[MAX_KEYS];
	const char *op = "sync";
	char sha[41] = "";
	long long times = 1, i, t0, head_ms = 0, sync_ms = 0;
	int changed = 0, rc = 0, a;

	memset(&o, 0, sizeof(o));
	o.ref_type = TG_REF_BRANCH;
	o.ref = "main";
	for (a = 1; a < argc; a++) {
		const char *k = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;

		if (!strcmp(k, "--insecure-host-key")) {
			o.auth.insecure_skip_host_key_check = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "gitprobe: %s needs a value\n", k);
			return 2;
		}
		a++;
		if (!strcmp(k, "--url"))
			o.url = v;
		else if (!strcmp(k, "--cache"))
			o.cache_dir = v;
		else if (!strcmp(k, "--branch"))
			o.ref_type = TG_REF_BRANCH, o.ref = v;
		else if (!strcmp(k, "--tag"))
			o.ref_type = TG_REF_TAG, o.ref = v;
		else if (!strcmp(k, "--commit"))
			o.ref_type = TG_REF_COMMIT, o.ref = v;
		else if (!strcmp(k, "--op"))
			op = v;
		else if (!strcmp(k, "--times"))
			times = num(v);
		else if (!strcmp(k, "--user"))
			o.auth.username = v;
		else if (!strcmp(k, "--password-file"))
			o.auth.password_file = v;
		else if (!strcmp(k, "--token-file"))
			o.auth.token_file = v;
		else if (!strcmp(k, "--ssh-key"))
			o.auth.ssh_key_file = v;
		else if (!strcmp(k, "--ssh-pub"))
			o.auth.ssh_pubkey_file = v;
		else if (!strcmp(k, "--known-hosts"))
			o.auth.known_hosts_file = v;
		else if (!strcmp(k, "--ca"))
			o.auth.ca_file = v;
		else if (!strcmp(k, "--timeout"))
			o.timeout_ms = (long)num(v);
		else if (!strcmp(k, "--max-file-size"))
			o.max_file_size = (size_t)num(v);
		else if (!strcmp(k, "--trusted-key") && o.n_trusted_keys < MAX_KEYS)
			keys[o.n_trusted_keys++] = v;
		else {
			fprintf(stderr, "gitprobe: unknown option %s\n", k);
			return 2;
		}
	}
	o.trusted_keys = keys;
	git_libgit2_init();
	tg_buf_init(&b, 0);
	rc = tg_git_source_new(&src, &o, &err);
	for (i = 0; rc == 0 && i < times; i++) {
		if (strcmp(op, "sync")) {
			t0 = tg_now_ms();
			rc = tg_git_remote_head(src, sha, &err);
			head_ms += tg_now_ms() - t0;
		}
		if (rc == 0 && strcmp(op, "head")) {
			t0 = tg_now_ms();
			rc = tg_git_sync(src, &changed, &err);
			sync_ms += tg_now_ms() - t0;
		}
	}
	if (rc == 0) {
		const struct tg_commit_info *ci = tg_git_commit(src);

		tg_buf_puts(&b, "{\"ok\":true");
		if (sha[0])
			put_kv(&b, "head", sha);
		if (ci) {
			put_kv(&b, "sha", ci->sha);
			tg_buf_printf(&b, ",\"changed\":%s", changed ? "true" : "false");
			put_kv(&b, "author", ci->author_name);
			put_kv(&b, "author_email", ci->author_email);
			put_kv(&b, "committer", ci->committer_name);
			put_kv(&b, "summary", ci->summary);
			put_kv(&b, "message", ci->message);
			tg_buf_printf(&b, ",\"time\":%lld", ci->time);
			put_kv(&b, "workdir", tg_git_workdir(src));
		}
		tg_buf_printf(&b, ",\"head_ms\":%lld,\"sync_ms\":%lld}", head_ms, sync_ms);
	} else {
		tg_buf_printf(&b, "{\"ok\":false,\"code\":%d", rc);
		put_kv(&b, "error", err.msg);
		tg_buf_puts(&b, "}");
	}
	puts(tg_buf_cstr(&b));
	tg_buf_release(&b);
	tg_git_source_free(src);
	git_libgit2_shutdown();
	return rc == 0 ? 0 : 1;
}
