/*
 * The controller daemon (see include/tg/daemon.h): the main thread's part.
 * It starts the HTTP server and the reconcile worker (worker.c), waits for
 * signals, validates a configuration on SIGHUP before the worker swaps it
 * in, and drains on SIGTERM.  Shared state: include/tg/daemon_state.h.
 */
#include "tg/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tg/buf.h"
#include "tg/catalog.h"
#include "tg/daemon_state.h"
#include "tg/elector.h"
#include "tg/log.h"
#include "tg/oidc.h"
#include "tg/banned.h"

/* SIGTERM: how long the running pass may take before it is abandoned. */
#define DRAIN_DEADLINE_MS 20000
/* At SIGTERM, the last pass's build status gets this long to reach Bitbucket. */
#define NOTIFIER_DRAIN_MS 3000

/* The only mutable globals: set by the signal handler, read by the main
 * thread. */
static volatile sig_atomic_t got_stop;
static volatile sig_atomic_t got_hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

/* Probes on their own port: a flood of slow clients on the public port
 * cannot starve a liveness probe into restarting the pod. */
#define PROBE_MAX_CONNECTIONS 16
#define PROBE_TIMEOUT_S 5
#define PROBE_REQUEST_TIMEOUT_MS (5LL * 1000)

static int start_httpd(struct tg_daemon *d, const struct tg_config *cfg, const char *listen,
		       enum tg_httpd_role role, struct tg_httpd **out, struct tg_err *err)
{
	struct tg_httpd_ops ops;
	struct tg_httpd_opts opts = { 0 };

	*out = NULL;
	if (!listen)
		return 0;
	tg_handlers_fill(&ops, d);
	opts.listen = listen;
	opts.role = role;
	if (role == TG_HTTPD_PROBES) {
		opts.max_connections = PROBE_MAX_CONNECTIONS;
		opts.connection_timeout_s = PROBE_TIMEOUT_S;
		opts.request_timeout_ms = PROBE_REQUEST_TIMEOUT_MS;
	} else {
		opts.max_connections = (unsigned)cfg->http_max_connections;
		opts.connection_timeout_s =
			(unsigned)((cfg->http_connection_timeout_ms + 999) / 1000);
		opts.max_wait_ms = cfg->http_max_wait_ms;
		opts.request_timeout_ms = cfg->http_request_timeout_ms;
	}
	return tg_httpd_start(out, &opts, &ops, err);
}

/* SIGHUP with a new address: listen there before letting the old go. */
static int move_listener(struct tg_daemon *d, const struct tg_config *nc, const char *listen,
			 enum tg_httpd_role role, struct tg_httpd **server, char **current)
{
	struct tg_httpd *h = NULL;
	struct tg_err err = { 0, "" };

	if (tg_str_eq(listen, *current))
		return 0;
	if (start_httpd(d, nc, listen, role, &h, &err)) {
		tg_log_kv(TG_LOG_ERROR, "reload refused: cannot listen on the new address", "error",
			  err.msg, NULL);
		return -1;
	}
	tg_httpd_stop(*server);
	*server = h;
	free(*current);
	*current = listen ? tg_xstrdup(listen) : NULL;
	return 0;
}

static void log_problems(const char *msg, const char *error, struct tg_problems *problems)
{
	struct tg_buf text = TG_BUF_INIT;

	tg_problems_format_text(problems, &text);
	tg_log_kv(TG_LOG_ERROR, msg, "error", error, "problems", tg_buf_cstr(&text), NULL);
	tg_buf_release(&text);
}

/* SIGHUP: load and check; hand to the worker only when valid. */
static void reload(struct tg_daemon *d, const char *path, const struct tg_config_overrides *ov)
{
	struct tg_problems problems;
	struct tg_err err = { 0, "" };
	struct tg_config *nc = NULL;
	struct tg_oidc *fresh = NULL;
	int same_issuers;

	tg_problems_init(&problems);
	if (!path) {
		tg_log_kv(TG_LOG_WARN, "SIGHUP ignored: the daemon was started without --config",
			  NULL);
		goto out;
	}
	if (tg_config_build(&nc, path, ov, &problems, &err)) {
		log_problems(
			"reload refused: the new configuration is invalid; keeping the running one",
			err.msg, &problems);
		goto out;
	}
	if (move_listener(d, nc, nc->listen, TG_HTTPD_MAIN, &d->httpd, &d->listen) ||
	    move_listener(d, nc, nc->probe_listen, TG_HTTPD_PROBES, &d->probe_httpd,
			  &d->probe_listen) ||
	    move_listener(d, nc, nc->webhook_listen, TG_HTTPD_PUBLIC, &d->webhook_httpd,
			  &d->webhook_listen))
		goto out;
	/* New issuers: a new verifier (its thread fetches their keys at
	 * once); requests in flight finish with the old one. */
	pthread_mutex_lock(&d->lock);
	same_issuers = tg_config_issuers_equal(nc, d->pending ? d->pending : d->global);
	pthread_mutex_unlock(&d->lock);
	if (!same_issuers) {
		struct tg_oidc *old;

		fresh = tg_oidc_new(nc);
		pthread_mutex_lock(&d->lock);
		old = d->oidc;
		d->oidc = fresh;
		pthread_mutex_unlock(&d->lock);
		fresh = NULL;
		tg_oidc_unref(old);
		tg_log_kv(TG_LOG_INFO, "reload: oidc issuers changed", NULL);
	}
	pthread_mutex_lock(&d->lock);
	tg_config_free(d->pending);
	d->pending = nc;
	nc = NULL;
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
out:
	tg_config_free(nc);
	tg_problems_release(&problems);
}

static void daemon_release(struct tg_daemon *d, int worker_alive)
{
	tg_httpd_stop(d->httpd);
	tg_httpd_stop(d->probe_httpd);
	tg_httpd_stop(d->webhook_httpd);
	/* No handler runs any more: the verifier and the webhook state can go. */
	tg_oidc_unref(d->oidc);
	tg_webhook_keys_free(d->hook_keys);
	tg_webhook_seen_free(d->hook_seen);
	if (!worker_alive) {
		/* Never started, or already stopped (NULL). */
		tg_elector_stop(d->elector);
		for (size_t i = 0; i < d->n_syncs; i++)
			tg_dsync_free(d->syncs[i]);
		free(d->syncs);
		tg_config_free(d->pending);
		tg_config_free(d->owned_global);
		tg_metrics_free(d->metrics);
		tg_audit_free(d->audit);
		tg_notifier_free(d->notifier);
		pthread_cond_destroy(&d->wake);
		pthread_cond_destroy(&d->done);
		pthread_mutex_destroy(&d->lock);
	}
	/* else: the abandoned worker still uses them; the process is exiting. */
	free(d->audit_path);
	free(d->listen);
	free(d->probe_listen);
	free(d->webhook_listen);
}

int tg_daemon_run(struct tg_config *cfg, const char *config_path,
		  const struct tg_config_overrides *ov)
{
	struct tg_daemon d;
	struct tg_err err = { 0, "" };
	struct sigaction sa, old_term, old_int, old_hup;
	sigset_t block, old_mask;
	long long now = tg_now_ms();
	int worker_started = 0, worker_alive = 0, start_failed = 0, rc = -1;

	memset(&d, 0, sizeof(d));
	pthread_mutex_init(&d.lock, NULL);
	tg_cond_init_monotonic(&d.wake);
	tg_cond_init_monotonic(&d.done);
	d.global = cfg;
	d.listen = tg_xstrdup(cfg->listen);
	d.probe_listen = cfg->probe_listen ? tg_xstrdup(cfg->probe_listen) : NULL;
	d.webhook_listen = cfg->webhook_listen ? tg_xstrdup(cfg->webhook_listen) : NULL;
	d.hook_keys = tg_webhook_keys_new();
	d.hook_seen = tg_webhook_seen_new(TG_WEBHOOK_SEEN);
	d.oidc = tg_oidc_new(cfg);
	d.rng = (unsigned long long)tg_wall_ms() * 2654435761ULL ^ (unsigned long long)getpid() ^
		0x9e3779b97f4a7c15ULL;
	d.heartbeat_ms = now;
	d.metrics = tg_metrics_new();
	tg_catalog_define(d.metrics);
	d.syncs = tg_xcalloc(cfg->n_syncs ? cfg->n_syncs : 1, sizeof(*d.syncs));
	for (size_t i = 0; i < cfg->n_syncs; i++) {
		d.syncs[d.n_syncs] = tg_dsync_new(&cfg->syncs[i], now);
		tg_catalog_sync_init(d.metrics, d.syncs[d.n_syncs]->cfg->name,
				     d.syncs[d.n_syncs]->sched.suspended);
		d.n_syncs++;
	}
	d.audit_path = cfg->audit ? tg_xstrdup(cfg->audit) : NULL;
	if (cfg->audit && tg_audit_open(&d.audit, cfg->audit, &err)) {
		tg_log_kv(TG_LOG_ERROR, "cannot start", "error", err.msg, NULL);
		goto out;
	}
	if (cfg->le_enabled) {
		if (tg_elector_new(&d.elector, &d, cfg, &err)) {
			tg_log_kv(TG_LOG_ERROR, "cannot start", "error", err.msg, NULL);
			goto out;
		}
		/* Standby until the first Leases are ours. */
		for (size_t i = 0; i < d.n_syncs; i++) {
			const char *l[] = { d.syncs[i]->cfg->name };

			tg_metrics_set(d.metrics, TG_M_LEADER, l, 0);
		}
	}

	/* Handlers only set flags.  The signals are blocked in every thread
	 * but this one, which waits for them in sigsuspend. */
	got_stop = got_hup = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGHUP, &sa, &old_hup);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old_mask);

	if (start_httpd(&d, cfg, cfg->listen, TG_HTTPD_MAIN, &d.httpd, &err) ||
	    start_httpd(&d, cfg, cfg->probe_listen, TG_HTTPD_PROBES, &d.probe_httpd, &err) ||
	    start_httpd(&d, cfg, cfg->webhook_listen, TG_HTTPD_PUBLIC, &d.webhook_httpd, &err)) {
		tg_log_kv(TG_LOG_ERROR, "cannot start", "error", err.msg, NULL);
		goto restore;
	}
	{
		struct tg_notifier_opts nopts = { 0 };

		/* Its thread starts with the signals blocked, like the others. */
		nopts.metrics = d.metrics;
		if (tg_notifier_new(&d.notifier, &nopts, &err)) {
			tg_log_kv(TG_LOG_ERROR, "cannot start", "error", err.msg, NULL);
			goto restore;
		}
	}
	if (pthread_create(&d.worker, NULL, tg_worker_main, &d)) {
		tg_log_kv(TG_LOG_ERROR, "cannot start the reconcile thread", NULL);
		goto restore;
	}
	worker_started = worker_alive = 1;
	if (d.elector && tg_elector_start(d.elector, &err)) {
		/* The worker runs already: stop it the normal way, then fail. */
		tg_log_kv(TG_LOG_ERROR, "cannot start", "error", err.msg, NULL);
		got_stop = 1;
		start_failed = 1;
	}
	{
		char n[32];

		snprintf(n, sizeof(n), "%zu", d.n_syncs);
		tg_log_kv(TG_LOG_INFO, "controller started", "listen", cfg->listen, "syncs", n,
			  "version", TG_VERSION, NULL);
	}

	for (;;) {
		sigset_t wait_mask = old_mask;

		sigdelset(&wait_mask, SIGTERM);
		sigdelset(&wait_mask, SIGINT);
		sigdelset(&wait_mask, SIGHUP);
		while (!got_stop && !got_hup)
			sigsuspend(&wait_mask);
		if (got_stop)
			break;
		got_hup = 0;
		tg_log_kv(TG_LOG_INFO, "SIGHUP: reloading the configuration", "path",
			  config_path ? config_path : "", NULL);
		reload(&d, config_path, ov);
	}

	tg_log_kv(TG_LOG_INFO, "shutting down: finishing the running pass", NULL);
	pthread_mutex_lock(&d.lock);
	d.stopping = 1;
	pthread_cond_broadcast(&d.wake);
	pthread_cond_broadcast(&d.done);
	pthread_mutex_unlock(&d.lock);
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += DRAIN_DEADLINE_MS / 1000;
		if (pthread_timedjoin_np(d.worker, NULL, &ts) == 0) {
			worker_alive = 0;
			/* No pass runs any more: give the Leases back so the other
			 * replicas take over at once. */
			tg_elector_stop(d.elector);
			d.elector = NULL;
		} else {
			/* Returning would let the caller shut libgit2 and libcurl
			 * down under the running pass. */
			tg_log_kv(TG_LOG_WARN,
				  "abandoning the running pass at the shutdown deadline", NULL);
			tg_httpd_stop(d.httpd);
			tg_httpd_stop(d.webhook_httpd);
			fflush(NULL);
			_exit(0);
		}
	}
	if (d.notifier && tg_notifier_drain(d.notifier, NOTIFIER_DRAIN_MS))
		tg_log_kv(TG_LOG_WARN, "stopping with bitbucket statuses unsent", NULL);
	rc = start_failed ? -1 : 0;
	tg_log_kv(TG_LOG_INFO, "stopped", NULL);
restore:
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
out:
	if (!worker_started)
		worker_alive = 0;
	daemon_release(&d, worker_alive);
	return rc;
}
