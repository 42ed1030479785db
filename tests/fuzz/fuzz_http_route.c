/*
 * Fuzz target for what the HTTP server derives from a request line: the
 * path as libmicrohttpd hands it over (unescaped by tg_httpd_unescape),
 * the route it names, and the wait/timeout query values.
 * Checks the router's invariants, not only that it does not crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = tg_xstrndup((const char *)data, size), *query;
	struct tg_route r;
	size_t len;

	query = strchr(path, '?');
	if (query)
		*query++ = '\0';
	len = tg_httpd_unescape(path);
	if (len != strlen(path))
		abort(); /* unescaping must never leave a NUL inside the path */
	if (tg_httpd_route(&r, path) == 0) {
		int per_sync = r.kind == TG_ROUTE_SYNC || r.kind == TG_ROUTE_RECONCILE ||
			       r.kind == TG_ROUTE_SUSPEND || r.kind == TG_ROUTE_RESUME;

		if (per_sync != (r.name[0] != '\0') || strchr(r.name, '/') ||
		    strlen(r.name) >= sizeof(r.name))
			abort();
	}
	if (query) {
		char *timeout = strchr(query, '&');

		if (timeout)
			*timeout++ = '\0';
		if (tg_httpd_wait_ms(query, timeout, 600000) > 600000)
			abort();
	}
	free(path);
	return 0;
}
