#!/usr/bin/env bash
# Installs what tests/integration/nginx.rs runs: Debian's nginx (nginx-light) and the
# openssl command (the test's self-signed certificate). Idempotent: with both present
# it does nothing; apt's package lists are refreshed only when nginx is not found.
set -euo pipefail

die() { echo "setup-nginx: $*" >&2; exit 1; }

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[[ ${#missing[@]} -eq 0 ]] && exit 0

[[ "$(id -u)" -eq 0 ]] || die "install ${missing[*]} (needs root: apt-get install ${missing[*]})"
command -v apt-get >/dev/null 2>&1 || die "no apt-get: install ${missing[*]} by hand"

apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    apt_get update -q
fi
DEBIAN_FRONTEND=noninteractive apt_get install -y -q "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
