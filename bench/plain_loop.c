/*
 * Baseline for bench/reconcile.py: the same HTTP calls a sync makes, in a
 * plain sequential loop with one keep-alive libcurl handle, no planning,
 * no diffing, no verification logic.
 *
 *   plain_loop URL SECRET first  DIR   lists, POST every object, reload, lists again
 *                                      (a sync reads back 32 or more writes through the lists)
 *   plain_loop URL SECRET lists        the three list calls of a no-change pass
 *   plain_loop URL SECRET change DIR FILE...  lists, PUT FILEs, reload, GET them
 *
 * Prints the elapsed seconds.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static CURL *h;
static struct curl_slist *headers;
static const char *base;

static size_t sink(char *d, size_t s, size_t n, void *u)
{
	(void)d;
	(void)u;
	return s * n;
}

static void call(const char *method, const char *path, const char *body)
{
	char url[1024];
	long code = 0;

	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	if (!body)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L),
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (curl_easy_perform(h) != CURLE_OK) {
		fprintf(stderr, "plain_loop: %s %s failed\n", method, path);
		exit(1);
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (code >= 300) {
		fprintf(stderr, "plain_loop: %s %s answered %ld\n", method, path, code);
		exit(1);
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	long n;
	char *s;

	if (!f)
		exit(1);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = malloc((size_t)n + 1);
	if (fread(s, 1, (size_t)n, f) != (size_t)n)
		exit(1);
	s[n] = 0;
	fclose(f);
	return s;
}

static void lists(void)
{
	call("GET", "/tyk/apis", NULL);
	call("GET", "/tyk/apis/oas", NULL);
	call("GET", "/tyk/policies", NULL);
}

/* Files are named <id>.json. */
static void each(const char *dir, const char *sub, const char *coll, const char *method,
		 int with_body)
{
	char path[2048], item[1024];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	while (d && (e = readdir(d)) != NULL) {
		char *body = NULL, *dot;

		if (e->d_name[0] == '.')
			continue;
		snprintf(item, sizeof(item), "%s", e->d_name);
		dot = strrchr(item, '.');
		if (dot)
			*dot = 0;
		if (with_body) {
			snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, e->d_name);
			body = slurp(path);
			call(method, coll, body);
		} else {
			char p2[2048];

			snprintf(p2, sizeof(p2), "%s/%s", coll, item);
			call(method, p2, NULL);
		}
		free(body);
	}
	if (d)
		closedir(d);
}

int main(int argc, char **argv)
{
	struct timespec a, b;
	char auth[512];
	FILE *sf;
	size_t n;

	if (argc < 4)
		return 2;
	base = argv[1];
	sf = fopen(argv[2], "r");
	if (!sf)
		return 2;
	n = fread(auth + 21, 1, sizeof(auth) - 22, sf);
	fclose(sf);
	memcpy(auth, "x-tyk-authorization: ", 21);
	auth[21 + n] = 0;
	if (n && auth[21 + n - 1] == '\n')
		auth[21 + n - 1] = 0;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	h = curl_easy_init();
	headers = curl_slist_append(NULL, auth);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (!strcmp(argv[3], "first") && argc == 5) {
		lists();
		each(argv[4], "apis", "/tyk/apis", "POST", 1);
		each(argv[4], "policies", "/tyk/policies", "POST", 1);
		call("GET", "/tyk/reload?block=true", NULL);
		lists();
	} else if (!strcmp(argv[3], "lists")) {
		lists();
	} else if (!strcmp(argv[3], "change") && argc >= 5) {
		lists();
		for (int i = 5; i < argc; i++) {
			char *body = slurp(argv[i]), p[1024], id[512],
			     *slash = strrchr(argv[i], '/');

			snprintf(id, sizeof(id), "%s", slash ? slash + 1 : argv[i]);
			if (strrchr(id, '.'))
				*strrchr(id, '.') = 0;
			snprintf(p, sizeof(p), "%s/%s",
				 strstr(argv[i], "/policies/") ? "/tyk/policies" : "/tyk/apis", id);
			call("PUT", p, body);
			free(body);
		}
		call("GET", "/tyk/reload?block=true", NULL);
		for (int i = 5; i < argc; i++) {
			char p[1024], id[512], *slash = strrchr(argv[i], '/');

			snprintf(id, sizeof(id), "%s", slash ? slash + 1 : argv[i]);
			if (strrchr(id, '.'))
				*strrchr(id, '.') = 0;
			snprintf(p, sizeof(p), "%s/%s",
				 strstr(argv[i], "/policies/") ? "/tyk/policies" : "/tyk/apis", id);
			call("GET", p, NULL);
		}
	} else {
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.3f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	return 0;
}
