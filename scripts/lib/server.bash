# shellcheck shell=bash
# Sourced by the scripts that test a running server (scripts/newman, scripts/fuzz-api,
# scripts/client): starts a ballpark server on a brand-new database, waits until it is
# ready, and tears both down when the calling script exits, whatever the outcome.
#
#   source scripts/lib/server.bash
#   start_server sqlite|postgres NAME [serve options...]
#
# Needs: repo_root and bin (the server binary) set by the caller; curl, python3, and psql
# for PostgreSQL. Sets: base_url (http://127.0.0.1:PORT) and server_log
# (target/NAME-DB-server.log). Installs an EXIT trap: a caller that needs one of its own
# calls stop_server from it.

server_pid=
server_tmp=
server_pg_admin_url=
server_pg_db=

# Stops the server (SIGTERM, then SIGKILL after 10 s) and drops its database.
stop_server() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    # SIGTERM first so the server shuts down gracefully and closes its pool.
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=
  if [[ -n $server_pg_db ]]; then
    # WITH (FORCE) ends connections a dying server may still hold (PostgreSQL >= 13).
    psql "$server_pg_admin_url" -q -v ON_ERROR_STOP=1 \
      -c "DROP DATABASE IF EXISTS $server_pg_db WITH (FORCE)" >/dev/null ||
      echo "warning: could not drop database $server_pg_db" >&2
    server_pg_db=
  fi
  [[ -n $server_tmp ]] && rm -rf "$server_tmp"
  server_tmp=
}

# shellcheck disable=SC2317 # only ever called by the trap below
_server_on_exit() {
  local status=$?
  stop_server
  exit "$status"
}

start_server() {
  local db=$1 name=$2
  shift 2
  trap _server_on_exit EXIT
  # Turn Ctrl-C / kill into a normal exit so the EXIT trap still cleans up.
  trap 'exit 130' INT TERM
  server_tmp=$(mktemp -d)
  local database_url
  case $db in
  sqlite)
    # The server creates the file; a temp dir keeps it out of the work tree.
    database_url=sqlite://$server_tmp/ballpark.db
    ;;
  postgres)
    server_pg_admin_url=${BALLPARK_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    local pg_db=${name//-/_}_$(date +%s)_$RANDOM
    if ! psql "$server_pg_admin_url" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $pg_db" >/dev/null; then
      echo "error: could not create a database on $server_pg_admin_url (is PostgreSQL up? try scripts/services)" >&2
      exit 1
    fi
    server_pg_db=$pg_db
    # Same server and credentials as the admin URL, pointed at the new database.
    database_url=$(python3 -c '
import sys, urllib.parse as up
parts = up.urlsplit(sys.argv[1])
print(up.urlunsplit(parts._replace(path="/" + sys.argv[2])))' "$server_pg_admin_url" "$pg_db")
    ;;
  *)
    echo "error: unknown database '$db' (sqlite or postgres)" >&2
    exit 2
    ;;
  esac

  # A free port: bind port 0 and let the kernel choose. The socket is closed before the
  # server binds, so another process could in theory take the port in between; rare on a
  # test machine, and the readiness wait below would catch it.
  local port
  port=$(python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
  base_url=http://127.0.0.1:$port
  mkdir -p "$repo_root/target"
  server_log=$repo_root/target/$name-$db-server.log

  echo "==> starting ballpark on $base_url with $db (log: ${server_log#"$repo_root"/})"
  # NO_COLOR: the log goes to a file, where ANSI colour codes only get in the way.
  NO_COLOR=1 "$bin" serve --bind "127.0.0.1:$port" --database-url "$database_url" "$@" \
    >"$server_log" 2>&1 </dev/null &
  server_pid=$!

  # Wait until /readyz answers 200 (migrations done, pool connected). Stop early if the
  # server died, so a crash at startup shows its log at once instead of after 60 s.
  for _ in $(seq 1 60); do
    curl -fs -o /dev/null --max-time 2 "$base_url/readyz" && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "error: ballpark did not become ready on $base_url/readyz within 60 s; server log:" >&2
  else
    local status=0
    wait "$server_pid" || status=$?
    server_pid= # already gone; nothing to stop
    echo "error: ballpark exited with status $status before becoming ready; server log:" >&2
  fi
  cat "$server_log" >&2
  exit 1
}
