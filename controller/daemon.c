/* Placeholder replaced by the daemon module; keeps the build linking. */
#include "tg/daemon.h"

#include <stdio.h>

#include "tg/banned.h"

int tg_daemon_run(struct tg_config *cfg, const char *config_path)
{
	(void)cfg;
	(void)config_path;
	fprintf(stderr, "tyk-gitops: run: the daemon is not built yet\n");
	return -1;
}
