#!/bin/sh
# One-shot set-up steps of the compose Temporal server, run in the
# temporalio/admin-tools image. Both are idempotent, so every
# `docker compose up` runs them again.
#
#   setup.sh schema      create the temporal and temporal_visibility databases
#                        and bring their schemas to this server version
#                        (SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD)
#   setup.sh namespace   register TEMPORAL_NAMESPACE on TEMPORAL_ADDRESS with
#                        TEMPORAL_NAMESPACE_RETENTION unless it exists
set -eu

schema_root=/etc/temporal/schema/postgresql/v12

wait_for() {
	# wait_for HOST PORT: up to two minutes.
	i=0
	until nc -z "$1" "$2"; do
		i=$((i + 1))
		if [ "$i" -ge 120 ]; then
			echo "setup: $1:$2 does not answer" >&2
			exit 1
		fi
		sleep 1
	done
}

case "${1:-}" in
schema)
	wait_for "$SQL_HOST" "$SQL_PORT"
	for db in temporal temporal_visibility; do
		case $db in
		temporal) dir=$schema_root/temporal/versioned ;;
		*) dir=$schema_root/visibility/versioned ;;
		esac
		temporal-sql-tool --db "$db" create-database
		temporal-sql-tool --db "$db" setup-schema -v 0.0
		temporal-sql-tool --db "$db" update-schema -d "$dir"
	done
	echo "setup: Temporal schemas are current"
	;;
namespace)
	ns=${TEMPORAL_NAMESPACE:-default}
	if temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1; then
		echo "setup: namespace $ns exists"
	else
		temporal operator namespace create --namespace "$ns" \
			--retention "${TEMPORAL_NAMESPACE_RETENTION:-168h}"
		echo "setup: namespace $ns registered"
	fi
	;;
*)
	echo "usage: $0 schema|namespace" >&2
	exit 2
	;;
esac
