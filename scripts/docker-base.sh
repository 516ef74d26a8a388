#!/usr/bin/env bash
# Makes the local base image the Dockerfile starts FROM (default tag crm-base:bookworm).
#
# No image can be pulled from a registry here, so the base is a Debian bookworm root file
# system made with debootstrap from the same Debian mirror apt already uses, then imported
# with `docker import`. It holds only what the prebuilt (statically Swift-linked) binaries
# need at run time: libsqlite3, libcrypt (libxcrypt), libcrypto (OpenSSL 3), CA
# certificates, and tzdata (the services format times with localtime(), honouring TZ).
#
# usage: scripts/docker-base.sh [TAG]          (run as root; needs a running dockerd)
#   env: CRM_BASE_SUITE   (default bookworm)
#        CRM_BASE_MIRROR  (default: the first Debian mirror in /etc/apt/sources.list{,.d})
#        CRM_BASE_INCLUDE (default libsqlite3-0,libcrypt1,libssl3,ca-certificates,tzdata)
set -euo pipefail

tag="${1:-crm-base:bookworm}"
suite="${CRM_BASE_SUITE:-bookworm}"
include="${CRM_BASE_INCLUDE:-libsqlite3-0,libcrypt1,libssl3,ca-certificates,tzdata}"

die() { echo "docker-base: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "debootstrap needs root"
command -v docker >/dev/null || die "no docker client on PATH"
docker info >/dev/null 2>&1 || die "cannot reach the docker daemon (is dockerd running?)"

if ! command -v debootstrap >/dev/null; then
    echo "docker-base: installing debootstrap" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# The Debian mirror apt uses: one-line form (sources.list, *.list) or deb822 (*.sources).
find_mirror() {
    local files=() f
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || return 1
    # One-line: "deb [opts] URI SUITE COMPONENTS", keep URIs ending in /debian (not -security).
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "${files[@]}" |
        grep -E '/debian/?$' | head -n 1 && return 0
    # deb822: "URIs: URI [URI...]".
    awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "${files[@]}" |
        grep -E '/debian/?$' | head -n 1
}

mirror="${CRM_BASE_MIRROR:-$(find_mirror || true)}"
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d}; set CRM_BASE_MIRROR"

root="$(mktemp -d /var/tmp/crm-base.XXXXXX)"
trap 'rm -rf --one-file-system "$root"' EXIT

echo "docker-base: debootstrap $suite from $mirror into $root" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror"

# Keep the image small: no apt lists, no caches, no docs the binaries never read.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
# apt inside the image uses the same mirror as the host.
echo "deb $mirror $suite main" > "$root/etc/apt/sources.list"

echo "docker-base: importing as $tag" >&2
tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$tag"
docker image ls "$tag"
