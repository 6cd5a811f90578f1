# Sourced, not run: starts target/release/orders on a free 127.0.0.1 port with a fresh
# database in a temporary directory, and stops it by its PID (then removes the directory)
# when the sourcing script exits or calls stop_release_service.
# Sets: port, dir (orders.db and server.log are there), pid.

start_release_service() {
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    dir=$(mktemp -d)
    target/release/orders --listen "127.0.0.1:$port" --database "$dir/orders.db" > "$dir/server.log" 2>&1 &
    pid=$!
    trap stop_release_service EXIT
}

stop_release_service() {
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    rm -rf "$dir"
}
