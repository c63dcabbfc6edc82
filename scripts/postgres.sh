#!/usr/bin/env bash
# Starts Debian's PostgreSQL cluster when it is down, makes sure the test role exists, and
# prints a URL for it (TEST_DATABASE_URL). Test databases left by earlier runs are dropped.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
as_postgres() { $SUDO runuser -u postgres -- "$@"; }

read -r version cluster port status _ < <(pg_lsclusters -h | head -n 1) || true
if [ -z "${version:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  cluster=main
  $SUDO pg_createcluster "$version" "$cluster" >&2
  read -r version cluster port status _ < <(pg_lsclusters -h | head -n 1)
fi
if [ "$status" != "online" ]; then
  $SUDO pg_ctlcluster "$version" "$cluster" start >&2
fi

psql_admin() { as_postgres psql -p "$port" -qtAX -v ON_ERROR_STOP=1 "$@"; }
for _ in $(seq 1 30); do psql_admin -c "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'oscar_test'")" != "1" ]; then
  psql_admin -c "CREATE ROLE oscar_test LOGIN CREATEDB PASSWORD 'oscar_test'"
fi
for db in $(psql_admin -c "SELECT datname FROM pg_database WHERE datname LIKE 'oscar\_test\_%'"); do
  psql_admin -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null
done
echo "postgres://oscar_test:oscar_test@127.0.0.1:${port}/postgres"
