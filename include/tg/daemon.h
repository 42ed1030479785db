/*
 * The long-running controller (`tyk-gitops run`): schedules every sync on
 * its interval and drift interval, serves the HTTP endpoints and exits
 * cleanly on SIGTERM/SIGINT.
 *
 * Threads: the calling thread only waits for signals (and reloads the
 * configuration on SIGHUP); one worker thread owns every syncer (all
 * libgit2 and libcurl handles) and runs the passes one at a time;
 * libmicrohttpd's threads read status under the daemon's mutex and enqueue
 * triggers.  The worker sleeps on a condition variable until the next
 * timer or trigger (and at least every 10 s, so /healthz can tell it is
 * alive).
 */
#ifndef TG_DAEMON_H
#define TG_DAEMON_H

#include "tg/config.h"

/*
 * Runs until SIGTERM or SIGINT.  cfg is the initial configuration: its
 * sync entries are moved out (left zeroed; tg_config_free(cfg) stays
 * valid) and its global settings are read while the daemon runs.
 * config_path (may be NULL) is re-read on SIGHUP: the new configuration
 * replaces the old only when it loads and checks cleanly; syncs whose
 * settings did not change keep their state.  ov (may be NULL) holds the
 * command-line flags, laid over the file at every reload as at start-up.
 * Returns 0 on a clean shutdown
 * (the running pass finishes, or is abandoned after 20 s), -1 when it
 * cannot start (listen address, audit file).  Call after curl_global_init
 * and git_libgit2_init, with SIGPIPE ignored.
 */
int tg_daemon_run(struct tg_config *cfg, const char *config_path,
		  const struct tg_config_overrides *ov);

#endif
