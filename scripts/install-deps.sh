#!/usr/bin/env bash
# Installs what liberator's tests and quickstart need on a Debian machine,
# when it is missing: PostgreSQL 15, MariaDB, make and a C compiler (for
# go test -race). The distribution's database services are kept stopped: the
# tests start their own throwaway servers.
set -euo pipefail

step() { printf '\n==> %s\n' "$*"; }
run() {
	printf '+ %s\n' "$*"
	"$@"
}

pgbin=/usr/lib/postgresql/15/bin
packages=()
if [ ! -x "$pgbin/initdb" ] || [ ! -x "$pgbin/postgres" ]; then
	packages+=(postgresql)
fi
if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
	packages+=(mariadb-server)
fi
# make runs the suite; gcc and libc6-dev are what go test -race needs (cgo).
command -v make >/dev/null || packages+=(make)
command -v gcc >/dev/null || packages+=(gcc libc6-dev)

if [ "${#packages[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing: ${packages[*]}; run as root, or: sudo apt-get install -y ${packages[*]}" >&2
		exit 1
	fi
	step "installing ${packages[*]}"
	# Keep the packages from starting their services while they install: a
	# policy-rc.d that exits 101 forbids it. Remove it afterwards if it is ours.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	run apt-get update
	run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
fi

step "making sure the distribution's database services are stopped"
for svc in postgresql mariadb; do
	if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
		run systemctl stop "$svc"
		run systemctl disable "$svc"
	elif command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then
		run service "$svc" stop
	else
		echo "$svc: not running"
	fi
done

