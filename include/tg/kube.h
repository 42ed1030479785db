/*
 * A minimal Kubernetes API client for coordination.k8s.io/v1 Leases, over
 * libcurl: list (by label), create and update (optimistic concurrency:
 * the update carries the resourceVersion it read; a 409 means someone
 * else wrote first).  That is all leader election needs.
 *
 * Credentials are the pod's own by default: the projected ServiceAccount
 * token, re-read from its file before every request (the kubelet rotates
 * it; a cached copy would expire), the cluster CA, the API address from
 * KUBERNETES_SERVICE_HOST/PORT and the namespace from the ServiceAccount's
 * namespace file.  Outside a cluster: an explicit URL, token file and CA
 * file.  The token is never logged and is wiped after each request.
 *
 * One struct tg_kube is used by one thread at a time (it owns one curl
 * handle).  The reply parsers are pure and exported for tests and the
 * fuzzer.
 */
#ifndef TG_KUBE_H
#define TG_KUBE_H

#include <stddef.h>

#include "tg/common.h"
#include "tg/lease.h"

#define TG_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* Largest reply accepted: a list of a few thousand Leases. */
#define TG_KUBE_REPLY_MAX ((size_t)8 * 1024 * 1024)

struct tg_kube_opts {
	const char *api_url; /* NULL: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT */
	const char *token_file; /* NULL: TG_KUBE_SA_DIR/token */
	const char *ca_file;    /* NULL: TG_KUBE_SA_DIR/ca.crt */
	const char *namespace;  /* NULL: TG_KUBE_SA_DIR/namespace */
	long timeout_ms;        /* per request; 0: 5 s */
};

struct tg_kube;

/* Resolves the defaults (reads the namespace file when needed). */
int tg_kube_new(struct tg_kube **out, const struct tg_kube_opts *opts, struct tg_err *err);
void tg_kube_free(struct tg_kube *k);
const char *tg_kube_namespace(const struct tg_kube *k);
/* Requests sent so far (for metrics and the bench). */
unsigned long tg_kube_request_count(const struct tg_kube *k);

/*
 * Lists the Leases of the namespace carrying label_selector (e.g.
 * "tyk-gitops.io/lease").  *out (caller frees) gets *n records.
 * TG_EAUTH on 401/403; TG_ERROR otherwise.
 */
int tg_kube_list_leases(struct tg_kube *k, const char *label_selector, struct tg_lease_record **out,
			size_t *n, struct tg_err *err);

/*
 * Creates (rec->rv empty) or updates (PUT carrying rec->rv) the Lease
 * rec->name; role is the TG_LEASE_LABEL_ROLE value ("sync", "member").
 * On success *stored is the Lease as the server stored it (new
 * resourceVersion).  TG_ECONFLICT on 409 (exists, or changed since it was
 * read); TG_ENOTFOUND on 404; TG_EAUTH on 401/403.
 */
int tg_kube_write_lease(struct tg_kube *k, const struct tg_lease_record *rec, const char *role,
			struct tg_lease_record *stored, struct tg_err *err);

/* --- pure parts ------------------------------------------------------- */

/* Parses one Lease object (JSON).  TG_EINVALID when it is not one. */
int tg_kube_parse_lease(struct tg_lease_record *out, const char *json, size_t len,
			struct tg_err *err);

/* Parses a LeaseList.  Items that are not valid Leases are skipped. */
int tg_kube_parse_lease_list(struct tg_lease_record **out, size_t *n, const char *json, size_t len,
			     struct tg_err *err);

/* The Lease object to send for rec (caller frees). */
char *tg_kube_render_lease(const struct tg_lease_record *rec, const char *ns, const char *role);

/* Kubernetes MicroTime ("2006-01-02T15:04:05.000000Z", any fraction or
 * offset) <-> wall microseconds.  Parse returns TG_EINVALID on bad input. */
int tg_kube_parse_time(long long *us, const char *s);
void tg_kube_format_time(char out[40], long long us);

/* A Status reply's message, when the body is one ("" otherwise). */
void tg_kube_status_message(char *out, size_t size, const char *json, size_t len);

#endif
