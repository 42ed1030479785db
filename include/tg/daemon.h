/*
 * The long-running controller (`tyk-gitops run`): schedules every sync on
 * its interval and drift interval, serves the HTTP endpoints and exits
 * cleanly on SIGTERM/SIGINT.
 */
#ifndef TG_DAEMON_H
#define TG_DAEMON_H

#include "tg/config.h"

/*
 * Runs until SIGTERM or SIGINT.  cfg is used as the initial configuration;
 * config_path (may be NULL) is re-read on SIGHUP.  Returns 0 on a clean
 * shutdown.  Call after curl_global_init and git_libgit2_init.
 */
int tg_daemon_run(struct tg_config *cfg, const char *config_path);

#endif
