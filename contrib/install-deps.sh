#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages that moat needs to build,
# test or benchmark.  Run as root:
#
#   contrib/install-deps.sh [build|test|bench|all]     (default: build)
#
#   build  compiler, autotools and the libraries moatd links, python3 with
#          aiosmtpd (the demo backend) and swaks (to send test mail)
#   test   build + pytest, clang with its runtime (libFuzzer, sanitizers), dnslib
#   bench  build + postfix (for smtp-source/smtp-sink) + procps
#   all    everything above
#
# Idempotent: when every package is already installed it neither runs
# "apt-get update" nor "apt-get install"; otherwise it runs "apt-get update"
# once and installs only what is missing (--no-install-recommends).
# postfix is installed unconfigured ("No configuration") and without letting
# it start a daemon or take port 25: only its smtp-source/smtp-sink are used.
set -euo pipefail

usage() {
	echo "usage: $0 [build|test|bench|all]" >&2
	exit 2
}

[ "$#" -le 1 ] || usage
what=${1:-build}

BUILD_PKGS=(build-essential autoconf automake libtool pkg-config
	libevent-dev libpcre2-dev libgnutls28-dev libspf2-dev libopendkim-dev
	libmilter-dev libunbound-dev liblmdb-dev libgmime-3.0-dev python3 python3-aiosmtpd swaks)
# Hyperscan speeds the rule engine up several times; Debian builds it for
# amd64 only, and moat works without it (configure says which it found).
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then
	BUILD_PKGS+=(libhyperscan-dev)
fi
TEST_PKGS=(python3-pytest clang libclang-rt-14-dev python3-dnslib git)
BENCH_PKGS=(postfix procps)

case "$what" in
build) want=("${BUILD_PKGS[@]}") ;;
test) want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
bench) want=("${BUILD_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
all) want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
-h | --help) usage ;;
*) usage ;;
esac

# True if the package is installed (not merely known or config-files only).
installed() {
	local status
	status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
	[ "$status" = installed ]
}

missing=()
for p in "${want[@]}"; do
	installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#want[@]} packages for '$what' are already installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run this script as root to install them" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing for '$what': ${missing[*]}"

# postfix: no configuration (no main.cf, so nothing listens on port 25), and
# a policy-rc.d that forbids starting services while the packages install.
policy=/usr/sbin/policy-rc.d
created_policy=no
cleanup() {
	if [ "$created_policy" = yes ]; then
		rm -f "$policy"
	fi
}
trap cleanup EXIT
for p in "${missing[@]}"; do
	if [ "$p" = postfix ]; then
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		if [ ! -e "$policy" ]; then
			printf '#!/bin/sh\n# written by moat contrib/install-deps.sh during an install; deny service starts\nexit 101\n' >"$policy"
			chmod 755 "$policy"
			created_policy=yes
		fi
	fi
done

apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
	installed "$p" || still+=("$p")
done
if [ "${#still[@]}" -ne 0 ]; then
	echo "install-deps: still not installed: ${still[*]}" >&2
	exit 1
fi
echo "install-deps: done (${#missing[@]} installed: ${missing[*]})"
