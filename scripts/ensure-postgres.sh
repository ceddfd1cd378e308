#!/usr/bin/env bash
# ensure-postgres.sh — makes sure the local PostgreSQL server that tests and
# `make run` use answers, starting (and if need be installing) it.
#
# The server is the one named by BAREFLOW_TEST_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable (the URL the
# store tests use). When it does not answer and it is on this machine, the
# script starts the Debian cluster "main" with pg_ctlcluster, installing the
# postgresql package with apt-get when there is none. A cluster that this
# script creates is a throw-away test server: it trusts connections from
# loopback, as the URL above carries no password. Then it checks that the URL
# can log in, and with --create-db NAME creates that database when missing.
#
# Usage: scripts/ensure-postgres.sh [--create-db NAME]
# Environment:
#   BAREFLOW_TEST_DATABASE_URL   server to check (see above)
#   ENSURE_POSTGRES_TIMEOUT      seconds to wait for the server to answer (60)
set -euo pipefail

url=${BAREFLOW_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
timeout=${ENSURE_POSTGRES_TIMEOUT:-60}
create_db=""

while [ $# -gt 0 ]; do
	case $1 in
	--create-db)
		[ $# -ge 2 ] || { echo "ensure-postgres: --create-db needs a name" >&2; exit 2; }
		create_db=$2
		shift 2
		;;
	*)
		echo "usage: $0 [--create-db NAME]" >&2
		exit 2
		;;
	esac
done
if [ -n "$create_db" ] && ! [[ $create_db =~ ^[a-z_][a-z0-9_]*$ ]]; then
	echo "ensure-postgres: database name '$create_db' must match [a-z_][a-z0-9_]*" >&2
	exit 2
fi

say() { echo "ensure-postgres: $*"; }
die() {
	echo "ensure-postgres: $*" >&2
	exit 1
}

# redacted prints the URL without its password.
redacted() { sed -E 's#(://[^:/@]+):[^@]*@#\1:REDACTED@#' <<<"$url"; }

# host of the URL ("" when it names none, i.e. the local socket).
host=$(sed -E 's#^[a-z]+://([^@/]*@)?(\[[^]]*\]|[^:/?]*).*#\2#' <<<"$url")
case $host in
"" | 127.0.0.1 | localhost | "[::1]") local_server=1 ;;
*) local_server=0 ;;
esac

apt_updated=0
apt_install() {
	[ "$(id -u)" -eq 0 ] || die "$* is missing and only root can install it: apt-get install $*"
	if [ "$apt_updated" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		apt_updated=1
	fi
	say "installing $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

answers() { pg_isready -q -t 3 -d "$url"; }

if ! command -v pg_isready >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
	if [ "$local_server" -eq 1 ]; then
		apt_install postgresql
	else
		apt_install postgresql-client
	fi
fi

if answers; then
	say "PostgreSQL answers at $(redacted)"
else
	[ "$local_server" -eq 1 ] ||
		die "PostgreSQL does not answer at $(redacted); it is not on this machine, so start it there"

	installed=0
	if ! command -v pg_ctlcluster >/dev/null 2>&1 ||
		[ -z "$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ]; then
		apt_install postgresql
		installed=1
	fi
	version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
	if [ ! -d "/etc/postgresql/$version/main" ]; then
		[ "$(id -u)" -eq 0 ] || die "no cluster $version/main, and only root can create one: pg_createcluster $version main"
		say "creating cluster $version/main"
		pg_createcluster "$version" main >/dev/null
		installed=1
	fi
	if [ "$installed" -eq 1 ]; then
		# A test server made here: let loopback in without a password.
		hba=/etc/postgresql/$version/main/pg_hba.conf
		if ! grep -q '^# bareflow tests: trust loopback' "$hba"; then
			say "trusting loopback connections in $hba (test server)"
			{
				echo '# bareflow tests: trust loopback'
				echo 'host all all 127.0.0.1/32 trust'
				echo 'host all all ::1/128 trust'
				cat "$hba"
			} >"$hba.new"
			chown --reference="$hba" "$hba.new"
			chmod --reference="$hba" "$hba.new"
			mv "$hba.new" "$hba"
		fi
	fi
	if [ "$(id -u)" -eq 0 ] && [ ! -d /var/run/postgresql ]; then
		install -d -o postgres -g postgres -m 2775 /var/run/postgresql
	fi

	say "starting cluster $version/main"
	rc=0
	pg_ctlcluster --skip-systemctl-redirect "$version" main start || rc=$?
	# 2 is "already running": it may still be starting up.
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
		die "pg_ctlcluster $version main start failed (exit $rc); see /var/log/postgresql/postgresql-$version-main.log"
	fi

	deadline=$((SECONDS + timeout))
	until answers; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			die "PostgreSQL $version/main started but does not answer at $(redacted) after ${timeout}s; see /var/log/postgresql/postgresql-$version-main.log"
		fi
		sleep 1
	done
	say "PostgreSQL $version/main answers at $(redacted)"
fi

# Accepting connections is not logging in: check that the URL works.
if ! err=$(psql "$url" -X -At -v ON_ERROR_STOP=1 -c 'select 1' 2>&1 >/dev/null); then
	die "cannot log in with $(redacted): $err
  (set BAREFLOW_TEST_DATABASE_URL to a URL that can, or let loopback in with trust in pg_hba.conf)"
fi

if [ -n "$create_db" ]; then
	exists=$(psql "$url" -X -At -v ON_ERROR_STOP=1 -c "select 1 from pg_database where datname = '$create_db'")
	if [ "$exists" = 1 ]; then
		say "database $create_db exists"
	else
		psql "$url" -X -q -v ON_ERROR_STOP=1 -c "create database \"$create_db\"" ||
			die "could not create database $create_db"
		say "created database $create_db"
	fi
fi
