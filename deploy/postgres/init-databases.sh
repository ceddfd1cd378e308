#!/bin/sh
# Runs once, when the compose postgres service initialises an empty data
# volume (docker-entrypoint-initdb.d): creates the role Temporal uses (it
# creates its own two databases) and the bareflow role and database.
# Passwords come from the environment of the postgres service.
set -eu

: "${TEMPORAL_DB_PASSWORD:?set TEMPORAL_DB_PASSWORD}"
: "${BAREFLOW_DB_PASSWORD:?set BAREFLOW_DB_PASSWORD}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
	-v temporal_password="$TEMPORAL_DB_PASSWORD" \
	-v bareflow_password="$BAREFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE ROLE bareflow LOGIN PASSWORD :'bareflow_password';
CREATE DATABASE bareflow OWNER bareflow;
SQL
