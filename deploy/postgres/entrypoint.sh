#!/bin/sh
# First start: a cluster in $PGDATA with the role $POSTGRES_USER (password from $POSTGRES_PASSWORD_FILE, never
# printed) owning the database $POSTGRES_DB, password authentication from the network. Then postgres as postgres.
set -eu
: "${POSTGRES_USER:=jupyterhub}" "${POSTGRES_DB:=jupyterhub}"
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ -r "${POSTGRES_PASSWORD_FILE:-}" ] || { echo "postgres: POSTGRES_PASSWORD_FILE is not a readable file" >&2; exit 1; }
    pwfile=$(mktemp)
    # initdb reads the superuser's password from a file only it can read
    head -n1 "$POSTGRES_PASSWORD_FILE" | tr -d '\n' >"$pwfile"
    chown postgres "$pwfile" && chmod 0400 "$pwfile"
    gosu postgres initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=peer --auth-host=scram-sha-256 \
        --encoding=UTF8 >/dev/null
    rm -f "$pwfile"
    gosu postgres postgres --single -D "$PGDATA" postgres >/dev/null 2>&1 <<SQL || true
CREATE DATABASE "$POSTGRES_DB" OWNER "$POSTGRES_USER";
SQL
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "postgres: initialised $PGDATA (role $POSTGRES_USER, database $POSTGRES_DB)"
fi
exec gosu postgres postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql
