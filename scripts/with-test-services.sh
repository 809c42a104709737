#!/usr/bin/env bash
# Runs a command with the test services the suite needs (started on loopback,
# stopped afterwards, also when the command fails). Services are added here
# as the suite needs them.
#
# PostgreSQL (ivr-integrations: callback queue and mail outbox on the
# multi-instance backend): a throwaway cluster is initdb'ed under
# target/test-services/, listens on 127.0.0.1 on a free port, and is exported
# as IVR_TEST_POSTGRES_URL. IVR_TEST_POSTGRES_CTL is a script taking
# `stop`/`start`, for the database-restart test. postgres refuses to run as
# root, so as root the cluster runs as the `postgres` system user (or
# `ivrtest`, created if neither exists).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

SERVICES_DIR="$ROOT/target/test-services"
PG_DIR=""
PG_CTL_SCRIPT=""

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_postgres() {
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "with-test-services: PostgreSQL server binaries not found (apt package postgresql)" >&2
        return 1
    fi
    local runas=()
    if [ "$(id -u)" = 0 ]; then
        local user=postgres
        if ! id "$user" >/dev/null 2>&1; then
            user=ivrtest
            id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
        fi
        runas=(runuser -u "$user" --)
    fi
    mkdir -p "$SERVICES_DIR"
    PG_DIR="$(mktemp -d "$SERVICES_DIR/pg.XXXXXX")"
    chmod 755 "$PG_DIR"
    [ ${#runas[@]} -gt 0 ] && chown "${runas[2]}" "$PG_DIR"
    local port
    port="$(free_port)"
    "${runas[@]}" "$bin/initdb" -D "$PG_DIR/data" -U ivr --auth=trust --encoding=UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_DIR'
fsync = off
max_connections = 200
CONF
    PG_CTL_SCRIPT="$PG_DIR/pgctl.sh"
    local runas_q=""
    [ ${#runas[@]} -gt 0 ] && runas_q="${runas[*]}"
    cat >"$PG_CTL_SCRIPT" <<CTL
#!/usr/bin/env bash
# stop | start the throwaway test cluster (used by the restart test)
set -e
case "\$1" in
  stop)  $runas_q "$bin/pg_ctl" -D "$PG_DIR/data" -m fast -w stop ;;
  start) $runas_q "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w start ;;
  *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
CTL
    chmod +x "$PG_CTL_SCRIPT"
    bash "$PG_CTL_SCRIPT" start >/dev/null
    export IVR_TEST_POSTGRES_URL="postgres://ivr@127.0.0.1:$port/postgres"
    export IVR_TEST_POSTGRES_CTL="$PG_CTL_SCRIPT"
    echo "with-test-services: PostgreSQL on 127.0.0.1:$port ($PG_DIR)" >&2
}

stop_services() {
    if [ -n "$PG_CTL_SCRIPT" ]; then
        bash "$PG_CTL_SCRIPT" stop >/dev/null 2>&1 || true
    fi
    if [ -n "$PG_DIR" ]; then
        rm -rf "$PG_DIR"
    fi
}
trap stop_services EXIT

start_postgres || { echo "with-test-services: PostgreSQL not started; Postgres tests will fail under CI" >&2; }

"$@"
