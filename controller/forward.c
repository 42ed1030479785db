/*
 * Forwarding a request to the replica holding a sync (see
 * include/tg/forward.h).
 */
#include "tg/forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "tg/banned.h"

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct tg_buf *reply = userdata;
	size_t n = size * nmemb;

	return tg_buf_put(reply, data, n) ? 0 : n;
}

int tg_forward_post(const char *base_url, const char *path_query, const struct tg_http_request *req,
		    const char *const *copy, const char *identity, long timeout_ms,
		    struct tg_buf *out, long *status, struct tg_err *err)
{
	struct curl_slist *hdrs = NULL;
	char curl_error[CURL_ERROR_SIZE] = "";
	size_t blen = strlen(base_url);
	char *url, *line;
	CURL *h = curl_easy_init();
	CURLcode cc;
	int rc = 0;

	*status = 0;
	if (!h)
		abort(); /* out of memory */
	while (blen > 0 && base_url[blen - 1] == '/')
		blen--;
	url = tg_xasprintf("%.*s%s", (int)blen, base_url, path_query);
	for (size_t i = 0; copy && copy[i]; i++) {
		const char *v = req->header(req, copy[i]);

		/* Header values reach us from libmicrohttpd without CR or LF. */
		if (!v)
			continue;
		line = tg_xasprintf("%s: %s", copy[i], v);
		hdrs = curl_slist_append(hdrs, line);
		/* It may be a bearer token. */
		tg_secret_free(line);
	}
	line = tg_xasprintf("%s: %s", TG_FORWARDED_HEADER, identity);
	hdrs = curl_slist_append(hdrs, line);
	free(line);
	/* No "Expect: 100-continue" round trip: it would add latency. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_error);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK)
		rc = tg_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? TG_ETIMEOUT : TG_ERROR,
				"cannot reach the replica holding the sync at '%s': %s", base_url,
				curl_error[0] ? curl_error : curl_easy_strerror(cc));
	else
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	free(url);
	return rc;
}
