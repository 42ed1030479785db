/*
 * What kind of host an upstream URL names, judged from the literal text
 * alone (no DNS): the pure part of the upstream_allow guardrail.
 */
#ifndef TG_HOSTCLASS_H
#define TG_HOSTCLASS_H

/*
 * The class of an upstream host as written in a URL (no brackets, no
 * port), without resolving it: "loopback", "private", "link-local"
 * (169.254/16 and fe80::/10: cloud metadata lives there), "reserved"
 * (unspecified, multicast, broadcast, documentation), "public" for any
 * other literal address, "name" for a host name, or NULL when the host is
 * not a valid host at all.  Known metadata names (metadata.google.internal,
 * instance-data...) are "link-local", localhost and *.localhost "loopback".
 * Writes the canonical spelling (dotted quad, compressed IPv6, lowercase
 * name) to canon when it is not NULL.
 */
#define TG_HOST_MAX 256
const char *tg_host_class(const char *host, char canon[TG_HOST_MAX]);

/* An IPv4 or IPv6 CIDR range "addr/bits": 0 with the family (AF_INET or
 * AF_INET6), the network address and the prefix length, or -1. */
int tg_host_parse_cidr(const char *s, int *family, unsigned char addr[16], int *bits);

/* Whether the canonical address canon (from tg_host_class) lies in the CIDR
 * range entry; an IPv6 spelling of an IPv4 address matches IPv4 ranges. */
int tg_host_in_cidr(const char *entry, const char *canon);

#endif
