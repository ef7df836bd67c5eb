#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: initdb in a new temporary directory, run
# as an unprivileged user, listening on 127.0.0.1 only, on a free port, trusting local
# connections only, tuned for speed over durability (fsync off). Nothing outlives `stop`.
#
#   eval "$(scripts/throwaway-postgres.sh start)"   # exports ACS_TEST_POSTGRES_URL and
#                                                    # ACS_THROWAWAY_POSTGRES_DIR
#   cargo test -p acs-core --test it store
#   scripts/throwaway-postgres.sh stop "$ACS_THROWAWAY_POSTGRES_DIR"
#
# Run as root, the server runs as the system user `acs-pg` (created when absent);
# otherwise as the current user. The server binaries are Debian's
# (/usr/lib/postgresql/<version>/bin, newest first) or those on PATH; version 15 or newer.
# Everything the script says besides the `export` lines goes to standard error.
set -euo pipefail

SERVICE_USER=acs-pg

say() { printf 'throwaway-postgres: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# The directory holding initdb and pg_ctl.
server_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
    done
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    return 1
}

# Runs a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$SERVICE_USER" -- "$@"
    else
        "$@"
    fi
}

# A TCP port nothing listens on at 127.0.0.1.
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return 0
    fi
    local port
    for port in $(seq 54320 54999); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
    done
    return 1
}

start() {
    local bin version owner dir port
    bin=$(server_bin) || die "no PostgreSQL server binaries (initdb, pg_ctl) found; install Debian's 'postgresql'"
    version=$("$bin/pg_ctl" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/')
    [ "$version" -ge 15 ] 2>/dev/null || die "PostgreSQL $version in $bin is older than 15"
    if [ "$(id -u)" -eq 0 ]; then
        if ! id "$SERVICE_USER" >/dev/null 2>&1; then
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SERVICE_USER"
            say "created the system user $SERVICE_USER"
        fi
        owner=$SERVICE_USER
    else
        owner=$(id -un)
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/acs-throwaway-pg.XXXXXX")
    chmod 0755 "$dir"
    mkdir "$dir/data" "$dir/socket"
    chown -R "$owner" "$dir"
    chmod 0700 "$dir/data"
    as_owner "$bin/initdb" -D "$dir/data" -U "$owner" -E UTF8 --no-locale \
        --auth-local=trust --auth-host=trust >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    port=$(free_port) || die "no free port"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
        "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir/socket \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
         -c max_connections=400 -c shared_buffers=64MB" >&2 \
        || { cat "$dir/server.log" >&2; die "the server did not start"; }
    say "PostgreSQL $version ($bin) running as $owner on 127.0.0.1:$port, data in $dir"
    say "stop it with: $0 stop $dir"
    echo "export ACS_TEST_POSTGRES_URL=postgres://$owner@127.0.0.1:$port/postgres"
    echo "export ACS_THROWAWAY_POSTGRES_DIR=$dir"
}

stop() {
    local dir=${1:-${ACS_THROWAWAY_POSTGRES_DIR:-}} bin
    [ -n "$dir" ] || die "usage: $0 stop DIR (or set ACS_THROWAWAY_POSTGRES_DIR)"
    case "$dir" in
        */acs-throwaway-pg.*) ;;
        *) die "$dir is not a throwaway cluster's directory" ;;
    esac
    [ -d "$dir" ] || { say "$dir is already gone"; return 0; }
    bin=$(server_bin) || die "no PostgreSQL server binaries found"
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    fi
    rm -rf "$dir"
    say "stopped and removed $dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) die "usage: $0 start | stop DIR" ;;
esac
