/*
 * Host classes for upstream URLs (see include/tg/hostclass.h).  Never
 * resolves a name: an address written in any spelling a resolver or the
 * gateway's URL parser would accept is brought to one canonical form and
 * judged by its class.
 */
#include "tg/hostclass.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tg/common.h"
#include "tg/banned.h"

int tg_host_parse_cidr(const char *s, int *family, unsigned char addr[16], int *bits)
{
	const char *slash = strchr(s, '/');
	char host[TG_HOST_MAX];
	long long b;
	size_t n;

	if (!slash || (n = (size_t)(slash - s)) == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, host, addr) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, host, addr) == 1)
		*family = AF_INET6;
	else
		return -1;
	if (tg_parse_ll(&b, slash + 1, 0, *family == AF_INET ? 32 : 128))
		return -1;
	*bits = (int)b;
	return 0;
}

static int in4(uint32_t a, uint32_t net, int bits)
{
	uint32_t mask = bits ? 0xffffffffu << (32 - bits) : 0;

	return (a & mask) == (net & mask);
}

static const char *class_v4(uint32_t a)
{
	if (in4(a, 0x00000000, 8) || in4(a, 0x7f000000, 8))
		return "loopback"; /* 0.0.0.0/8 reaches the local host on Linux */
	if (in4(a, 0x0a000000, 8) || in4(a, 0xac100000, 12) || in4(a, 0xc0a80000, 16) ||
	    in4(a, 0x64400000, 10))
		return "private";
	if (in4(a, 0xa9fe0000, 16))
		return "link-local";
	if (in4(a, 0xe0000000, 3) || in4(a, 0xc0000000, 24) || in4(a, 0xc0000200, 24) ||
	    in4(a, 0xc6336400, 24) || in4(a, 0xcb007100, 24) || in4(a, 0xc6120000, 15))
		return "reserved"; /* multicast, 240/4, IETF, documentation, benchmarking */
	return "public";
}

/* The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64,
 * 6to4), if any. */
static int embedded_v4(const unsigned char a[16], uint32_t *v4)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const unsigned char zero[12] = { 0 };
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };

	if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12) ||
	    (!memcmp(a, zero, 12) && (a[12] | a[13]))) {
		*v4 = (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | (uint32_t)a[14] << 8 | a[15];
		return 1;
	}
	if (a[0] == 0x20 && a[1] == 0x02) {
		*v4 = (uint32_t)a[2] << 24 | (uint32_t)a[3] << 16 | (uint32_t)a[4] << 8 | a[5];
		return 1;
	}
	return 0;
}

static const char *class_v6(const unsigned char a[16])
{
	static const unsigned char zero[16] = { 0 };
	uint32_t v4;

	if (!memcmp(a, zero, 15))
		return a[15] == 1 ? "loopback" : a[15] == 0 ? "reserved" : class_v4(a[15]);
	if (embedded_v4(a, &v4)) {
		const char *c = class_v4(v4);

		/* 6to4 of a public address is an ordinary public address. */
		return c;
	}
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "link-local";
	if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0))
		return "private"; /* unique local, old site-local */
	if (a[0] == 0xff || (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8))
		return "reserved";
	return "public";
}

static int name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

const char *tg_host_class(const char *host, char canon[TG_HOST_MAX])
{
	static const char *const metadata_names[] = { "metadata",
						      "metadata.google.internal",
						      "metadata.azure.internal",
						      "instance-data",
						      "instance-data.ec2.internal",
						      "metadata.packet.net",
						      "metadata.tencentyun.com" };
	char h[TG_HOST_MAX], tmp[INET6_ADDRSTRLEN];
	size_t n = strlen(host), i;
	unsigned char a6[16];
	struct in_addr a4;
	int digits_only = 1;
	char *pct;

	if (!n || n >= sizeof(h))
		return NULL;
	for (i = 0; i < n; i++)
		h[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] + 32 : host[i]);
	h[n] = '\0';
	if (strchr(h, ':')) {
		/* IPv6, possibly with a zone ("fe80::1%eth0"). */
		pct = strchr(h, '%');
		if (pct)
			*pct = '\0';
		if (inet_pton(AF_INET6, h, a6) != 1)
			return NULL;
		if (canon)
			snprintf(canon, TG_HOST_MAX, "%s",
				 inet_ntop(AF_INET6, a6, tmp, sizeof(tmp)) ? tmp : h);
		return class_v6(a6);
	}
	if (n > 1 && h[n - 1] == '.')
		h[--n] = '\0'; /* "localhost." is localhost */
	for (i = 0; i < n; i++) {
		if (!name_char(h[i]) && h[i] != '.')
			return NULL;
		if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.' || h[i] == 'x'))
			digits_only = 0;
	}
	/* inet_aton takes every spelling resolvers accept: 2852039166,
	 * 0xa9fea9fe, 0251.0376.0251.0376, 169.254.43518. */
	if (inet_aton(h, &a4)) {
		uint32_t v = ntohl(a4.s_addr);

		if (canon)
			snprintf(canon, TG_HOST_MAX, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255,
				 (v >> 8) & 255, v & 255);
		return class_v4(v);
	}
	if (digits_only && h[0] >= '0' && h[0] <= '9')
		return NULL; /* numeric, but no address: "999.1.1.1", "1.2.3.4.5" */
	if (h[0] == '.' || strstr(h, "..") || h[0] == '-')
		return NULL;
	if (canon)
		snprintf(canon, TG_HOST_MAX, "%s", h);
	if (!strcmp(h, "localhost") || (n > 10 && !strcmp(h + n - 10, ".localhost")))
		return "loopback";
	for (i = 0; i < TG_ARRAY_SIZE(metadata_names); i++)
		if (!strcmp(h, metadata_names[i]))
			return "link-local";
	return "name";
}

int tg_host_in_cidr(const char *entry, const char *canon)
{
	unsigned char net[16], a[16];
	int fam, bits;

	if (tg_host_parse_cidr(entry, &fam, net, &bits))
		return 0;
	memset(a, 0, sizeof(a));
	if (inet_pton(fam, canon, a) != 1) {
		uint32_t v4;

		/* An IPv6 spelling of an IPv4 address matches IPv4 ranges. */
		if (fam != AF_INET || inet_pton(AF_INET6, canon, a) != 1 || !embedded_v4(a, &v4))
			return 0;
		a[0] = (unsigned char)(v4 >> 24);
		a[1] = (unsigned char)(v4 >> 16);
		a[2] = (unsigned char)(v4 >> 8);
		a[3] = (unsigned char)v4;
	}
	for (int i = 0; i < bits; i++) {
		unsigned char m = (unsigned char)(0x80 >> (i % 8));

		if ((a[i / 8] & m) != (net[i / 8] & m))
			return 0;
	}
	return 1;
}
