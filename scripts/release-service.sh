# Sourced, not run: starts target/release/orders on a free 127.0.0.1 port with a fresh
# database in a temporary directory, and stops it by its PID (then removes the directory)
# when the sourcing script exits or calls stop_release_service.
# Sets: port, dir (orders.db and server.log are there), pid.
#
#   start_release_service [extra args...]   extra arguments go to the binary after --listen
#       and --database; environment set on the call reaches it too:
#       ORDERS_AUTH=jwt start_release_service --log-format json
#   prepare_release_service                  optional, before start_release_service: picks the
#       port and creates dir only, so files the binary needs can be put there first (e.g.
#       `target/release/orders dev-keys --dir "$dir/keys"`); start then uses that port and dir.

prepare_release_service() {
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    dir=$(mktemp -d)
    pid=""
    release_service_prepared=1
    trap stop_release_service EXIT
}

start_release_service() {
    [ "${release_service_prepared:-0}" = 1 ] || prepare_release_service
    release_service_prepared=0
    target/release/orders --listen "127.0.0.1:$port" --database "$dir/orders.db" "$@" > "$dir/server.log" 2>&1 &
    pid=$!
}

stop_release_service() {
    if [ -n "${pid:-}" ]; then
        kill "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
    fi
    release_service_prepared=0
    [ -z "${dir:-}" ] || rm -rf "$dir"
}
