/*
 * A sync's long-lived handles (see include/tg/reconcile.h): the git
 * source, the gateway client, the verified cache and the apply history's
 * path, made once per sync and used by one thread at a time; and the
 * first stage of every pass, bringing its commit into the working tree.
 */
#include "tg/reconcile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/governed.h"
#include "tg/loadmemo.h"
#include "tg/log.h"
#include "tg/syncer_internal.h"
#include "tg/banned.h"

int tg_syncer_new(struct tg_syncer **out, const struct tg_sync_config *cfg, const char *cache_dir,
		  struct tg_err *err)
{
	struct tg_syncer *s = tg_xcalloc(1, sizeof(*s));
	struct tg_gateway_opts gopts = { 0 };
	struct tg_git_opts git = { 0 };
	int rc;

	s->cfg = cfg;
	s->cache_dir = tg_xasprintf("%s/%s", cache_dir, cfg->name);
	s->verified = tg_verified_new(cfg->name, NULL);
	gopts.url = cfg->gateway_url;
	gopts.secret_file = cfg->gateway_secret_file;
	gopts.ca_file = cfg->gateway_ca_file;
	gopts.cert_file = cfg->gateway_cert_file;
	gopts.key_file = cfg->gateway_key_file;
	gopts.insecure_skip_verify = cfg->gateway_insecure_skip_verify;
	gopts.timeout_ms = (long)cfg->gateway_timeout_ms;
	gopts.max_concurrency = (int)cfg->gateway_concurrency;
	gopts.adaptive = cfg->gateway_adaptive;
	gopts.max_list_bytes = (size_t)cfg->gateway_max_list_mib * 1024 * 1024;
	rc = tg_gateway_new(&s->gw, &gopts, err);
	if (rc)
		goto fail;
	if (cfg->repo_url) {
		if (tg_mkdir_p(s->cache_dir, 0700)) {
			rc = tg_err_set(err, TG_ERROR, "cannot create cache directory '%s': %s",
					s->cache_dir, strerror(errno));
			goto fail;
		}
		git.url = cfg->repo_url;
		git.ref_type = cfg->ref_type;
		git.ref = cfg->ref;
		git.cache_dir = s->cache_dir;
		git.auth.username = cfg->auth_username;
		git.auth.password_file = cfg->auth_password_file;
		git.auth.token_file = cfg->auth_token_file;
		git.auth.ssh_key_file = cfg->auth_ssh_key_file;
		git.auth.known_hosts_file = cfg->auth_known_hosts_file;
		git.auth.insecure_skip_host_key_check = cfg->auth_insecure_skip_host_key_check;
		git.auth.ca_file = cfg->auth_ca_file;
		git.trusted_keys = (const char *const *)cfg->trusted_keys;
		git.n_trusted_keys = cfg->n_trusted_keys;
		rc = tg_git_source_new(&s->git, &git, err);
		if (rc)
			goto fail;
		s->hist_path = tg_xasprintf("%s/history.json", s->cache_dir);
		s->lock_path = tg_xasprintf("%s/pass.lock", s->cache_dir);
		tg_governed_load_history(s);
		/* The CLI's passes share what they verified through this file. */
		tg_verified_free(s->verified);
		{
			char *path = tg_xasprintf("%s/verified", s->cache_dir);

			s->verified = tg_verified_new(cfg->name, path);
			free(path);
		}
	}
	*out = s;
	return 0;
fail:
	tg_syncer_free(s);
	return rc;
}

void tg_syncer_tidy(struct tg_syncer *s)
{
	if (s->git)
		tg_git_tidy(s->git);
}

void tg_syncer_tidy_start(struct tg_syncer *s)
{
	if (s->git)
		tg_git_tidy_start(s->git);
}

void tg_syncer_free(struct tg_syncer *s)
{
	if (!s)
		return;
	tg_git_source_free(s->git);
	tg_gateway_free(s->gw);
	tg_verified_free(s->verified);
	tg_desired_free(s->kept);
	free(s->kept_hashes);
	tg_loadmemo_free(s->memo);
	free(s->cache_dir);
	tg_history_release(&s->hist);
	free(s->hist_path);
	free(s->lock_path);
	free(s);
}

void tg_syncer_set_audit(struct tg_syncer *s, struct tg_audit *audit)
{
	s->audit = audit;
}

void tg_syncer_set_gateway_observer(struct tg_syncer *s, tg_gateway_observe_fn fn, void *ctx)
{
	tg_gateway_set_observer(s->gw, fn, ctx);
}

int tg_syncer_check_gateway(struct tg_syncer *s, struct tg_err *err)
{
	return tg_gateway_check(s->gw, err);
}

void tg_syncer_set_git_observer(struct tg_syncer *s, tg_git_observe_fn fn, void *ctx)
{
	s->git_observe = fn;
	s->git_observe_ctx = ctx;
}

void tg_syncer_set_commit_observer(struct tg_syncer *s, tg_commit_observe_fn fn, void *ctx)
{
	s->commit_observe = fn;
	s->commit_observe_ctx = ctx;
}

int tg_syncer_fetch(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
		    struct tg_reconcile_result *res, char **root, const char *pin, char head[41])
{
	struct tg_err err = { 0, "" };
	const struct tg_commit_info *ci;
	char *author;
	int changed = 0;

	if (opts->local_dir) {
		*root = tg_xstrdup(opts->local_dir);
		return 0;
	}
	if (!s->git) {
		tg_reconcile_result_error(res, TG_OUTCOME_ERROR, "no repository configured");
		return -1;
	}
	long long t0 = tg_now_ms();
	int rc = tg_git_sync_at(s->git, pin, head, &changed, &err);

	if (s->git_observe)
		s->git_observe(s->git_observe_ctx, s->cfg->name, "fetch", rc == 0,
			       (double)(tg_now_ms() - t0) / 1000.0);
	if (rc) {
		tg_reconcile_result_error(res, TG_OUTCOME_ERROR, err.msg);
		/* A refused commit (unsigned, a file over the limit) gets
		 * its commit status too. */
		if (tg_git_refused(s->git))
			snprintf(res->refused_commit, sizeof(res->refused_commit), "%s",
				 tg_git_refused(s->git));
		/* Keep working from the last good checkout, if there is one:
		 * drift is still repaired, and the pass says it is stale. */
		if (!tg_git_commit(s->git) || (pin && strcmp(tg_git_commit(s->git)->sha, pin)))
			return -1; /* a rollback needs the commit it names */
		tg_log_kv(TG_LOG_WARN, "git fetch failed, using the last good checkout", "sync",
			  s->cfg->name, "error", err.msg, NULL);
		snprintf(res->source_error, sizeof(res->source_error), "%s", err.msg);
	}
	ci = tg_git_commit(s->git);
	snprintf(res->commit, sizeof(res->commit), "%s", ci->sha);
	/* Commit metadata is anyone's text: keep it valid UTF-8 for the JSON
	 * it reaches (status API, audit, logs). */
	author = tg_xasprintf("%s <%s>", ci->author_name ? ci->author_name : "",
			      ci->author_email ? ci->author_email : "");
	res->author = tg_utf8_sanitize(author);
	free(author);
	res->author_name = tg_utf8_sanitize(ci->author_name ? ci->author_name : "");
	res->author_email = tg_utf8_sanitize(ci->author_email ? ci->author_email : "");
	res->summary_line = tg_utf8_sanitize(ci->summary ? ci->summary : "");
	*root = tg_xstrdup(tg_git_workdir(s->git));
	res->outcome = TG_OUTCOME_SUCCESS;
	res->error[0] = '\0';
	return 0;
}
