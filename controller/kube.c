/*
 * Kubernetes API client for Leases (see include/tg/kube.h).
 */
#include "tg/kube.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "tg/buf.h"
#include "tg/log.h"
#include "tg/banned.h"

#define DEFAULT_TIMEOUT_MS 5000L
/* A token or namespace file larger than this is not one. */
#define SMALL_FILE_MAX ((size_t)64 * 1024)

struct tg_kube {
	char *api_url;
	char *token_file;
	char *ca_file;
	char *ns;
	long timeout_ms;
	CURL *h;
	unsigned long requests;
};

/* --- pure: time ------------------------------------------------------------ */

static int digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int tg_kube_parse_time(long long *us, const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, se, frac_us = 0, off = 0;
	const char *p;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &se))
		return TG_EINVALID;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    se > 60)
		return TG_EINVALID;
	p = s + 19;
	if (*p == '.') {
		int scale = 100000, n = 0;

		p++;
		while (*p >= '0' && *p <= '9') {
			if (n < 6) {
				frac_us += (*p - '0') * scale;
				scale /= 10;
			}
			n++;
			p++;
		}
		if (n == 0)
			return TG_EINVALID;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;

		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 ||
		    om > 59)
			return TG_EINVALID;
		off = (oh * 60 + om) * 60 * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return TG_EINVALID;
	}
	if (*p)
		return TG_EINVALID;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	*us = ((long long)t - off) * 1000000LL + frac_us;
	return 0;
}

void tg_kube_format_time(char out[40], long long us)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%06uZ", (unsigned)(us % 1000000));
}

/* --- pure: parsing and rendering ------------------------------------------- */

static const char *str_at(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int copy_str(char *dst, size_t size, const char *src)
{
	if (!src) {
		dst[0] = '\0';
		return 0;
	}
	if (strlen(src) >= size)
		return -1;
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

/* A whole number in a JSON value (Kubernetes int32/int64). */
static int int_at(const cJSON *o, const char *key, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = 0;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9.0e15 ||
	    v->valuedouble != (double)(long long)v->valuedouble)
		return -1;
	*out = (long long)v->valuedouble;
	return 0;
}

static int time_at(const cJSON *o, const char *key, long long *out)
{
	const char *s = str_at(o, key);

	*out = 0;
	if (!s)
		return cJSON_GetObjectItemCaseSensitive(o, key) &&
				       !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, key))
			       ? -1
			       : 0;
	return tg_kube_parse_time(out, s) ? -1 : 0;
}

static int lease_from(struct tg_lease_record *r, const cJSON *o, struct tg_err *err)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
	const cJSON *ann, *labels;
	const char *role;

	memset(r, 0, sizeof(*r));
	if (!cJSON_IsObject(o) || !cJSON_IsObject(meta))
		return tg_err_set(err, TG_EINVALID, "not a Lease: no metadata");
	if (copy_str(r->name, sizeof(r->name), str_at(meta, "name")) || !r->name[0])
		return tg_err_set(err, TG_EINVALID, "not a Lease: bad metadata.name");
	if (copy_str(r->rv, sizeof(r->rv), str_at(meta, "resourceVersion")) || !r->rv[0])
		return tg_err_set(err, TG_EINVALID, "Lease '%.100s': bad resourceVersion", r->name);
	ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
	if (cJSON_IsObject(ann) &&
	    (copy_str(r->sync, sizeof(r->sync), str_at(ann, TG_LEASE_ANNOTATION_SYNC)) ||
	     copy_str(r->address, sizeof(r->address), str_at(ann, TG_LEASE_ANNOTATION_ADDRESS))))
		return tg_err_set(err, TG_EINVALID, "Lease '%.100s': annotation too long", r->name);
	labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
	role = cJSON_IsObject(labels) ? str_at(labels, TG_LEASE_LABEL_ROLE) : NULL;
	r->member = role && !strcmp(role, "member");
	if (spec && !cJSON_IsNull(spec)) {
		if (!cJSON_IsObject(spec))
			return tg_err_set(err, TG_EINVALID, "Lease '%.100s': spec is not an object",
					  r->name);
		if (copy_str(r->holder, sizeof(r->holder), str_at(spec, "holderIdentity")) ||
		    int_at(spec, "leaseDurationSeconds", &r->duration_s) ||
		    int_at(spec, "leaseTransitions", &r->transitions) ||
		    time_at(spec, "acquireTime", &r->acquire_us) ||
		    time_at(spec, "renewTime", &r->renew_us))
			return tg_err_set(err, TG_EINVALID, "Lease '%.100s': bad spec", r->name);
	}
	return 0;
}

int tg_kube_parse_lease(struct tg_lease_record *out, const char *json, size_t len,
			struct tg_err *err)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	int rc;

	if (!o)
		return tg_err_set(err, TG_EINVALID, "the API server's reply is not JSON");
	rc = lease_from(out, o, err);
	cJSON_Delete(o);
	return rc;
}

int tg_kube_parse_lease_list(struct tg_lease_record **out, size_t *n, const char *json, size_t len,
			     struct tg_err *err)
{
	cJSON *o = cJSON_ParseWithLength(json, len), *items, *it;
	struct tg_lease_record *recs = NULL;
	struct tg_err ignored = { 0, "" };
	size_t count = 0;

	*out = NULL;
	*n = 0;
	if (!o)
		return tg_err_set(err, TG_EINVALID, "the API server's reply is not JSON");
	items = cJSON_GetObjectItemCaseSensitive(o, "items");
	if (!cJSON_IsArray(items) && !cJSON_IsNull(items)) {
		cJSON_Delete(o);
		return tg_err_set(err, TG_EINVALID, "the API server's reply is not a LeaseList");
	}
	recs = tg_xcalloc((size_t)cJSON_GetArraySize(items) + 1, sizeof(*recs));
	cJSON_ArrayForEach(it, items)
	{
		if (lease_from(&recs[count], it, &ignored) == 0)
			count++;
	}
	cJSON_Delete(o);
	*out = recs;
	*n = count;
	return 0;
}

char *tg_kube_render_lease(const struct tg_lease_record *rec, const char *ns, const char *role)
{
	cJSON *o = cJSON_CreateObject(), *meta, *ann, *labels, *spec;
	char t[40];
	char *s;

	cJSON_AddStringToObject(o, "apiVersion", "coordination.k8s.io/v1");
	cJSON_AddStringToObject(o, "kind", "Lease");
	meta = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(meta, "name", rec->name);
	cJSON_AddStringToObject(meta, "namespace", ns);
	if (rec->rv[0])
		cJSON_AddStringToObject(meta, "resourceVersion", rec->rv);
	labels = cJSON_AddObjectToObject(meta, "labels");
	cJSON_AddStringToObject(labels, TG_LEASE_LABEL_ROLE, role);
	cJSON_AddStringToObject(labels, "app.kubernetes.io/name", "tyk-gitops");
	ann = cJSON_AddObjectToObject(meta, "annotations");
	if (rec->sync[0])
		cJSON_AddStringToObject(ann, TG_LEASE_ANNOTATION_SYNC, rec->sync);
	if (rec->address[0])
		cJSON_AddStringToObject(ann, TG_LEASE_ANNOTATION_ADDRESS, rec->address);
	spec = cJSON_AddObjectToObject(o, "spec");
	/* An empty holderIdentity is how client-go releases a Lease. */
	cJSON_AddStringToObject(spec, "holderIdentity", rec->holder);
	cJSON_AddNumberToObject(spec, "leaseDurationSeconds", (double)rec->duration_s);
	if (rec->acquire_us) {
		tg_kube_format_time(t, rec->acquire_us);
		cJSON_AddStringToObject(spec, "acquireTime", t);
	}
	if (rec->renew_us) {
		tg_kube_format_time(t, rec->renew_us);
		cJSON_AddStringToObject(spec, "renewTime", t);
	}
	cJSON_AddNumberToObject(spec, "leaseTransitions", (double)rec->transitions);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		abort(); /* out of memory */
	return s;
}

void tg_kube_status_message(char *out, size_t size, const char *json, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	const char *msg = o ? str_at(o, "message") : NULL;

	out[0] = '\0';
	if (msg)
		snprintf(out, size, "%s", msg);
	cJSON_Delete(o);
}

/* --- I/O ------------------------------------------------------------------ */

static char *read_small(const char *path, struct tg_err *err)
{
	char *s = NULL;
	size_t len = 0;

	if (tg_read_file(&s, &len, path, SMALL_FILE_MAX, err))
		return NULL;
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
		s[--len] = '\0';
	return s;
}

int tg_kube_new(struct tg_kube **out, const struct tg_kube_opts *opts, struct tg_err *err)
{
	struct tg_kube *k = tg_xcalloc(1, sizeof(*k));
	struct tg_err ferr = { 0, "" };
	int rc = 0;

	*out = NULL;
	if (opts->api_url) {
		size_t l = strlen(opts->api_url);

		k->api_url = tg_xstrdup(opts->api_url);
		if (l > 0 && k->api_url[l - 1] == '/')
			k->api_url[l - 1] = '\0';
	} else {
		const char *host = getenv("KUBERNETES_SERVICE_HOST");
		const char *port = getenv("KUBERNETES_SERVICE_PORT");

		if (!host || !host[0]) {
			rc = tg_err_set(
				err, TG_EINVALID,
				"leader election: not in a cluster (KUBERNETES_SERVICE_HOST is unset); give --kube-api");
			goto fail;
		}
		/* An IPv6 service address needs brackets in a URL. */
		k->api_url = tg_xasprintf(strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
					  host, port && port[0] ? port : "443");
	}
	k->token_file = tg_xstrdup(opts->token_file ? opts->token_file : TG_KUBE_SA_DIR "/token");
	k->ca_file = opts->ca_file   ? tg_xstrdup(opts->ca_file)
		     : opts->api_url ? NULL
				     : tg_xstrdup(TG_KUBE_SA_DIR "/ca.crt");
	if (opts->namespace) {
		k->ns = tg_xstrdup(opts->namespace);
	} else if (!(k->ns = read_small(TG_KUBE_SA_DIR "/namespace", &ferr))) {
		rc = tg_err_set(
			err, TG_EINVALID,
			"leader election: cannot read the namespace from '%s' (%s); set leader_election.namespace",
			TG_KUBE_SA_DIR "/namespace", ferr.msg);
		goto fail;
	}
	k->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	k->h = curl_easy_init();
	if (!k->h)
		abort(); /* out of memory */
	*out = k;
	return 0;
fail:
	tg_kube_free(k);
	return rc;
}

void tg_kube_free(struct tg_kube *k)
{
	if (!k)
		return;
	if (k->h)
		curl_easy_cleanup(k->h);
	free(k->api_url);
	free(k->token_file);
	free(k->ca_file);
	free(k->ns);
	free(k);
}

const char *tg_kube_namespace(const struct tg_kube *k)
{
	return k->ns;
}

unsigned long tg_kube_request_count(const struct tg_kube *k)
{
	return k->requests;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct tg_buf *reply = userdata;
	size_t n = size * nmemb;

	return tg_buf_put(reply, data, n) ? 0 : n;
}

/* One request; *status gets the HTTP status.  The token is read from its
 * file now: the kubelet rotates it. */
static int request(struct tg_kube *k, const char *method, const char *path, const char *body,
		   struct tg_buf *reply, long *status, struct tg_err *err)
{
	struct curl_slist *hdrs = NULL;
	struct tg_err ferr = { 0, "" };
	char curl_error[CURL_ERROR_SIZE] = "";
	char *token = NULL, *auth = NULL, *url = NULL;
	CURLcode cc;
	int rc = 0;

	*status = 0;
	if (!(token = read_small(k->token_file, &ferr))) {
		rc = tg_err_set(err, TG_EAUTH, "cannot read the Kubernetes token: %s", ferr.msg);
		goto out;
	}
	auth = tg_xasprintf("Authorization: Bearer %s", token);
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	url = tg_xasprintf("%s%s", k->api_url, path);
	curl_easy_reset(k->h);
	curl_easy_setopt(k->h, CURLOPT_URL, url);
	curl_easy_setopt(k->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(k->h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(k->h, CURLOPT_TIMEOUT_MS, k->timeout_ms);
	curl_easy_setopt(k->h, CURLOPT_CONNECTTIMEOUT_MS, k->timeout_ms);
	curl_easy_setopt(k->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(k->h, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(k->h, CURLOPT_ERRORBUFFER, curl_error);
	curl_easy_setopt(k->h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (k->ca_file)
		curl_easy_setopt(k->h, CURLOPT_CAINFO, k->ca_file);
	if (body)
		curl_easy_setopt(k->h, CURLOPT_POSTFIELDS, body);
	k->requests++;
	cc = curl_easy_perform(k->h);
	if (cc != CURLE_OK) {
		rc = tg_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? TG_ETIMEOUT : TG_ERROR,
				"cannot reach the Kubernetes API at '%s': %s", k->api_url,
				curl_error[0] ? curl_error : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(k->h, CURLINFO_RESPONSE_CODE, status);
out:
	/* The handle keeps no copy of the header list after the transfer. */
	curl_easy_setopt(k->h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	tg_secret_free(auth);
	tg_secret_free(token);
	free(url);
	return rc;
}

static int status_error(long status, const struct tg_buf *reply, const char *what,
			struct tg_err *err)
{
	char msg[256];
	int code = status == 401 || status == 403 ? TG_EAUTH
		   : status == 404                ? TG_ENOTFOUND
		   : status == 409                ? TG_ECONFLICT
						  : TG_ERROR;

	tg_kube_status_message(msg, sizeof(msg), tg_buf_cstr(reply), reply->len);
	return tg_err_set(err, code, "%s: HTTP %ld%s%s", what, status, msg[0] ? ": " : "", msg);
}

int tg_kube_list_leases(struct tg_kube *k, const char *label_selector, struct tg_lease_record **out,
			size_t *n, struct tg_err *err)
{
	struct tg_buf reply;
	char *path, *sel = curl_easy_escape(k->h, label_selector, 0);
	long status;
	int rc;

	*out = NULL;
	*n = 0;
	if (!sel)
		abort(); /* out of memory */
	path = tg_xasprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases?labelSelector=%s",
			    k->ns, sel);
	curl_free(sel);
	tg_buf_init(&reply, TG_KUBE_REPLY_MAX);
	rc = request(k, "GET", path, NULL, &reply, &status, err);
	if (rc == 0 && status != 200)
		rc = status_error(status, &reply, "cannot list Leases", err);
	if (rc == 0)
		rc = tg_kube_parse_lease_list(out, n, tg_buf_cstr(&reply), reply.len, err);
	tg_buf_release(&reply);
	free(path);
	return rc;
}

int tg_kube_write_lease(struct tg_kube *k, const struct tg_lease_record *rec, const char *role,
			struct tg_lease_record *stored, struct tg_err *err)
{
	struct tg_buf reply;
	char *path, *body = tg_kube_render_lease(rec, k->ns, role);
	int create = !rec->rv[0];
	long status;
	int rc;

	path = create ? tg_xasprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases", k->ns)
		      : tg_xasprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", k->ns,
				     rec->name);
	tg_buf_init(&reply, TG_KUBE_REPLY_MAX);
	rc = request(k, create ? "POST" : "PUT", path, body, &reply, &status, err);
	if (rc == 0 && status != 200 && status != 201)
		rc = status_error(status, &reply,
				  create ? "cannot create the Lease" : "cannot update the Lease",
				  err);
	if (rc == 0)
		rc = tg_kube_parse_lease(stored, tg_buf_cstr(&reply), reply.len, err);
	tg_buf_release(&reply);
	free(path);
	free(body);
	return rc;
}
