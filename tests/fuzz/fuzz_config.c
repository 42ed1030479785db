/*
 * Fuzz target for the configuration file and the HTTP request parameters
 * the server parses (listen address, wait and timeout query values).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tg/common.h"
#include "tg/config.h"
#include "tg/httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The loader reads a path: hand it an in-memory file. */
static void fuzz_config_file(const uint8_t *data, size_t size)
{
	struct tg_problems problems;
	struct tg_config *cfg = NULL;
	struct tg_err err;
	char path[64];
	int fd = memfd_create("config", 0);

	if (fd < 0)
		return;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		tg_problems_init(&problems);
		if (!tg_config_load(&cfg, path, &problems, &err)) {
			tg_config_check(cfg, &problems);
			tg_config_free(cfg);
		}
		tg_problems_release(&problems);
	}
	close(fd);
}

static void fuzz_http_params(const uint8_t *data, size_t size)
{
	char *s = tg_xstrndup((const char *)data, size), *half = s + strlen(s) / 2;
	char *host = NULL;
	unsigned port = 0;
	struct tg_err err;

	if (!tg_httpd_parse_listen(s, &host, &port, &err))
		tg_httpd_host_is_loopback(host);
	free(host);
	tg_httpd_wait_ms(s, half, 600000);
	tg_httpd_wait_ms(half, s, 600000);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_config_file(data, size);
	fuzz_http_params(data, size);
	return 0;
}
