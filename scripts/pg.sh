#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the test session (tests_py/test_postgres*.py).
#   bash scripts/pg.sh start DIR   # initdb into DIR, start it, print its postgresql:// URL
#   bash scripts/pg.sh stop DIR    # stop it and remove DIR
# It listens on a Unix socket in DIR and on a free loopback port, with password
# (scram) auth over TCP so the tests can also check bad credentials. Run as root,
# the server runs as the `postgres` user (initdb refuses root). Installs the
# server with apt-get when it is missing and this is root on Debian/Ubuntu.
set -euo pipefail

command=${1:?usage: pg.sh start|stop DIR}
dir=${2:?usage: pg.sh start|stop DIR}
user=ferrum
password=ferrum-test-pw
database=ferrum_test

find_bin() {
    for candidate in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        if [ -x "$candidate/initdb" ]; then echo "$candidate"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

as_server_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$command" in
start)
    if ! bin=$(find_bin); then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
            bin=$(find_bin)
        else
            echo "pg.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
            exit 1
        fi
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$dir"
    fi
    printf '%s\n' "$password" >"$dir/pwfile"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/pwfile"
    as_server_user "$bin/initdb" -D "$dir/data" -U "$user" --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --no-locale -E UTF8 >"$dir/initdb.log"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # fsync off: a test server's data is thrown away, and syncing slows every test.
    as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    as_server_user "$bin/createdb" -h "$dir" -p "$port" -U "$user" "$database"
    echo "postgresql://$user:$password@127.0.0.1:$port/$database"
    ;;
stop)
    if [ -d "$dir/data" ] && bin=$(find_bin); then
        as_server_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg.sh start|stop DIR" >&2
    exit 2
    ;;
esac
