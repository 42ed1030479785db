#!/bin/sh
# Makes the base image that docker/Dockerfile names (debian:bookworm-slim)
# when the engine does not have it.  No image registry is reachable from this
# project's machines, so the image is built the way Debian's own is: a
# `debootstrap --variant=minbase bookworm` from the apt mirror this machine
# already uses, trimmed like the official -slim variant (no man pages, docs or
# locales; apt keeps no package lists or archives), and `docker import`ed.
# Everywhere else `docker build` pulls the real image and this is not used.
#
# The root filesystem is cached as a tarball outside the repository, keyed by
# suite and remade after a week (security updates), so a later run only
# imports it.  Prints the tag.
set -eu

tag=${BASE_IMAGE:-debian:bookworm-slim}
suite=bookworm
docker=${DOCKER:-docker}
cache=${TG_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tyk-gitops}

if $docker image inspect "$tag" >/dev/null 2>&1; then
	echo "$tag"
	exit 0
fi

# The mirror apt already uses (deb822 or one-line sources), else Debian's.
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/*$/\1/p' \
	/etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb[[:space:]]\+\(http[^[:space:]]*\/debian\)\/*[[:space:]].*/\1/p' \
	/etc/apt/sources.list 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

mkdir -p "$cache/base"
tarball="$cache/base/$suite-minbase-slim.tar"
exec 9>"$cache/base/.lock"
flock 9
if [ -z "$(find "$tarball" -mtime -7 -size +1M 2>/dev/null)" ]; then
	command -v debootstrap >/dev/null || { echo "base-image: debootstrap is not installed" >&2; exit 1; }
	root=$(mktemp -d "$cache/base/rootfs.XXXXXX")
	trap 'rm -rf "$root"' EXIT
	start=$(date +%s)
	echo "base-image: debootstrap --variant=minbase $suite from $mirror" >&2
	debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
		"$suite" "$root" "$mirror" >"$cache/base/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$cache/base/debootstrap.log" >&2; exit 1; }

	# What the official -slim image configures (docker-debian-artifacts).
	cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<-'EOF'
	path-exclude /usr/share/doc/*
	path-include /usr/share/doc/*/copyright
	path-exclude /usr/share/man/*
	path-exclude /usr/share/groff/*
	path-exclude /usr/share/info/*
	path-exclude /usr/share/lintian/*
	path-exclude /usr/share/linda/*
	path-exclude /usr/share/locale/*
	path-include /usr/share/locale/locale.alias
	EOF
	cat >"$root/etc/apt/apt.conf.d/docker-clean" <<-'EOF'
	DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	Dir::Cache::pkgcache "";
	Dir::Cache::srcpkgcache "";
	EOF
	echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
	echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
	rm -f "$root/etc/apt/sources.list"
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<-EOF
	Types: deb
	URIs: $mirror
	Suites: $suite $suite-updates
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

	Types: deb
	URIs: ${mirror%/debian}/debian-security
	Suites: $suite-security
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
	rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/groff/"* \
		"$root/usr/share/lintian/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
		"$root/var/lib/apt/lists/"* "$root/var/log/"*.log "$root/var/log/apt/"*
	find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
	: >"$root/etc/hostname"
	: >"$root/etc/resolv.conf"
	tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	echo "base-image: root filesystem made in $(($(date +%s) - start))s" >&2
fi
$docker import \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'CMD ["bash"]' \
	--message "debootstrap --variant=minbase $suite, trimmed like -slim (tests/peers/base-image.sh)" \
	"$tarball" "$tag" >/dev/null
echo "base-image: imported $tag from $tarball" >&2
echo "$tag"
