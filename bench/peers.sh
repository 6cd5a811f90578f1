# Orders and its Restate peer (bench/peers/restate) side by side: sourced by `bench/run.sh
# --peers [--smoke]` after its tools, helpers and build (it uses say, free_port, start_service,
# lifecycle, wrk_v, load_bin, load_v, threads, smoke, out, pids and cleanup from there).
#
# Each system runs alone on the same cores, from an idle start (the other one stopped): Orders
# on a fresh database with the lifecycle delays at 0, Restate from a fresh `peer.sh start DIR`.
# Per system, in this order: a warm-up (customers warm-*, every order final before going on),
# a. POST/ingress max throughput (wrk), b. the end to end of a's orders, c. fixed rates with
# orders-bench-load, d. CPU over a+b, e. RSS, disk and order count at the end. The same code
# computes every figure for both (bench/peers.py); raw outputs stay in $out (never removed):
# results-peers.jsonl, peers-*.wrk, peers-*.csv/.json (load reports and logs), peers-*-finals.json.
# Usage: bench/run.sh --peers [--smoke]   (--smoke: seconds and tiny rates, proves the path works)

# BENCH_PEER_SH: another implementation of the peer's interface (e.g. a stand-in under test).
peer_sh=${BENCH_PEER_SH:-bench/peers/restate/peer.sh}
export BENCH_PEER_SH=$peer_sh
[[ -f "$peer_sh" ]] || { say "--peers: $peer_sh is missing (the Restate peer is not in this tree)"; exit 1; }
if ((smoke)); then
  pdur=2; pwarm=1; pconns=16; prates=(100 200); pfixed=2; ptimeout=60
else
  pdur=10; pwarm=2; pconns=64; prates=(500 2000); pfixed=10; ptimeout=300
fi
# The raw outputs are the point of this mode: keep them, wherever they are.
BENCH_OUT=$out
presults="$out/results-peers.jsonl"
: > "$presults"
peer_dir=""
peers_exit() {
  local rc=$?
  [[ -z "$peer_dir" ]] || bash "$peer_sh" stop "$peer_dir" > /dev/null 2>&1 || true
  cleanup "$rc"
}
trap peers_exit EXIT

say "peers: $peer_sh install"
if ! bash "$peer_sh" install > "$out/peer-install.log" 2>&1; then
  tail -20 "$out/peer-install.log" >&2; say "peers: install failed (log: $out/peer-install.log)"; exit 1
fi
restate_bin="$(dirname "$peer_sh")/node_modules/.bin/restate-server"
restate_v=$([[ -x "$restate_bin" ]] && "$restate_bin" --version 2>&1 | head -1 || echo "restate-server (version unknown: no $restate_bin)")

precord() { # system item json
  python3 -c 'import json, sys; d = json.loads(sys.argv[3]); d["system"] = sys.argv[1]; d["item"] = sys.argv[2]; print(json.dumps(d))' \
    "$1" "$2" "$3" >> "$presults"
}
now_us() { date +%s%6N; }
body() { echo "{\"customerId\":\"$1\",\"items\":[{\"productId\":\"laptop\",\"quantity\":1,\"price\":1299.99}]}"; }

# The system under test: p_sys (orders|restate), p_base (its HTTP base), p_where (what
# bench/peers.py reads finals from), p_pids (its processes).
peer_start() { # system
  p_sys=$1
  if [[ $1 == orders ]]; then
    start_service "$svc_bin" "$out/peers-orders.db" "$out/peers-orders-service.log"
    p_base=$base; p_where="$out/peers-orders.db"; p_pids=("$svc")
  else
    peer_dir="$out/peers-restate"
    rm -rf "$peer_dir"; mkdir -p "$peer_dir"
    bash "$peer_sh" start "$peer_dir" > "$out/peers-restate-start.log" 2>&1 ||
      { tail -20 "$out/peers-restate-start.log" >&2; say "peers: $peer_sh start failed"; exit 1; }
    # shellcheck source=/dev/null
    source "$peer_dir/peer.env"
    p_base=$INGRESS_URL; p_where=$peer_dir; p_pids=("$SERVER_PID" "$SERVICE_PID")
  fi
}
peer_stop() {
  if [[ $p_sys == orders ]]; then
    stop_service
  else
    bash "$peer_sh" stop "$peer_dir" > "$out/peers-restate-stop.log" 2>&1 || say "peers: $peer_sh stop failed"
    peer_dir=""
  fi
}
wrk_post() { # name customer-prefix seconds: POSTs as fast as answered; prints bench/stats.py wrk
  local args
  if [[ $p_sys == orders ]]; then
    args=(-s bench/post_orders.lua "$p_base" -- "$2")
  else
    args=(-s bench/ingress.lua "$p_base" -- "$SEND_PATH" "$2")
  fi
  wrk -t"$threads" -c"$pconns" -d"$3s" --latency "${args[@]}" > "$out/peers-$p_sys-$1.wrk" 2>&1
  python3 bench/stats.py wrk "$out/peers-$p_sys-$1.wrk"
}
load_post() { # name rate customer: one fixed-rate run, its report and log in $out
  local url key
  if [[ $p_sys == orders ]]; then
    url="$p_base/orders"; key='x-idempotency-key: {uuid}'
  else
    url="$p_base$SEND_PATH"; key='idempotency-key: {uuid}'
  fi
  "$load_bin" --url "$url" --method POST --rate "$2" --duration "$pfixed" --connections "$pconns" \
    --header 'content-type: application/json' --header "$key" --body "$(body "$3")" \
    --log "$out/peers-$p_sys-$1.csv" > "$out/peers-$p_sys-$1.json" 2> "$out/peers-$p_sys-$1.err" ||
    say "peers: $load_bin exited $? (see $out/peers-$p_sys-$1.err)"
}
ok2xx() { python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print((d["requests"] or 0) - d["non2xx"])' "$1"; }

measure() { # system
  peer_start "$1"
  local s=$p_sys w=$p_where
  # An idle start: nothing of the other system, nothing of the start-up, still on the cores.
  sleep 3
  say "peers: $s warm-up, ${pwarm} s"
  local warm warm_start
  warm_start=$(now_us)
  warm=$(wrk_post warm warm "$pwarm")
  python3 bench/peers.py burst "$s" "$w" "$warm_start" "$(ok2xx "$warm")" "$ptimeout" \
    "$([[ $s == orders ]] && echo warm- || echo -)" > "$out/peers-$s-warm.json"
  python3 bench/peers.py finals "$s" "$w" > "$out/peers-$s-finals-warm.json"

  say "peers: $s a. max throughput, ${pdur} s"
  local t0 t1 start a b
  t0=$(python3 bench/peers.py ticks "${p_pids[@]}")
  start=$(now_us)
  a=$(wrk_post max max "$pdur")
  precord "$s" a "$a"
  say "peers: $s b. waiting for the orders of a"
  b=$(python3 bench/peers.py burst "$s" "$w" "$start" "$(ok2xx "$a")" "$ptimeout" \
    "$([[ $s == orders ]] && echo max- || echo "$out/peers-$s-finals-warm.json")")
  t1=$(python3 bench/peers.py ticks "${p_pids[@]}")
  precord "$s" b "$b"
  precord "$s" d "$(python3 -c 'import json, sys
t0, t1, b = (json.loads(x) for x in sys.argv[1:])
cpu = (t1["ticks"] - t0["ticks"]) / t0["hz"]
print(json.dumps({"cpu_s": cpu, "orders": b["orders"], "pids": t1["pids"],
                  "cpu_ms_per_order": cpu / b["orders"] * 1000 if b["orders"] else None}))' "$t0" "$t1" "$b")"

  local rate
  for rate in "${prates[@]}"; do
    say "peers: $s c. fixed rate ${rate}/s, ${pfixed} s"
    load_post "c$rate" "$rate" "r$rate"
    precord "$s" "c$rate" "$(python3 bench/peers.py fixed "$s" "$w" "$out/peers-$s-c$rate.json" "$out/peers-$s-c$rate.csv" "$ptimeout")"
  done

  say "peers: $s e. RSS, disk, orders"
  local rss disk orders
  python3 bench/peers.py finals "$s" "$w" > "$out/peers-$s-finals.json"
  rss=$(python3 bench/peers.py rss "${p_pids[@]}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["rss_kib"])')
  if [[ $s == orders ]]; then
    orders=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("SELECT COUNT(*) FROM orders").fetchone()[0])' "$w")
    disk=$(( $(stat -c %s "$w") + $(stat -c %s "$w-wal" 2> /dev/null || echo 0) ))
  else
    orders=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$out/peers-$s-finals.json")
    disk=$(( $(du -sb "$w/restate" | cut -f1) - DISK_AT_START ))
  fi
  precord "$s" e "$(python3 -c 'import json, sys
rss, disk, orders = (int(x) for x in sys.argv[1:])
print(json.dumps({"rss_kib": rss, "rss_mib": rss / 1024, "disk_bytes": disk, "orders": orders,
                  "disk_mb_per_1000": disk / orders * 1000 / 1e6 if orders else None}))' "$rss" "$disk" "$orders")"
  peer_stop
}

peers_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
peers_load0=$(cut -d' ' -f1-3 /proc/loadavg)
measure orders
orders_note=$lc_note
measure restate

echo
echo "date: $peers_date; machine: $(nproc) cores, $cpu; load average at start: $peers_load0, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bench/run.sh $*; raw outputs: $out"
echo "systems, one at a time on the same cores from an idle start, the load tools beside them:"
echo "  Orders: $svc_bin ($("$svc_bin" --version)), a fresh SQLite database (synchronous=FULL), $orders_note"
echo "  Restate: $restate_v + the peer binary (bench/peers/restate, restate.toml), a fresh base directory"
echo "setup:"
echo "  a: $wrk_v, $threads threads, $pconns connections, $pdur s, max throughput (closed loop), after $pwarm s of warm-up"
echo "     (customers warm-*, all final before a); Orders: bench/post_orders.lua; Restate: bench/ingress.lua"
echo "     (POST SEND_PATH, a fresh uuid per request as the order id and the idempotency-key); same body"
echo "  b: the orders of a (as many as each system took in): COMPLETED / (last final - start of a's load);"
echo "     finals: Orders orders.updated_at (ms), Restate peer.sh finals (us); (not completed) counts"
echo "     FAILED/CANCELLED; the burst's start -> final percentiles are in results-peers.jsonl only (they"
echo "     grow with the burst's size, which differs)"
echo "  c: $load_v, $pconns connections, open loop, ${prates[0]}/s then ${prates[1]}/s, $pfixed s each (the same orders for"
echo "     both, except that the client stops at the end of the window: a system answering slower than the rate"
echo "     takes fewer, as its orders row says), after b;"
echo "     latency = final - answered_us of the order's log line, COMPLETED orders; POST p99 = the client's"
echo "     p99 corrected from the due time; order id: Orders the Location header, Restate the uuid column;"
echo "     end to end = COMPLETED / (last final - first answer): the same orders for both"
echo "  d: utime+stime (/proc/PID/stat) of the system's processes and their children (Orders: one;"
echo "     Restate: restate-server + the peer binary) from the start of a to the end of b, / orders of a"
echo "  e: after c: RSS = sum of VmRSS of those processes; disk = Orders db + -wal bytes (no checkpoint),"
echo "     Restate du -sb DIR/restate - DISK_AT_START, each / total orders x 1,000; total orders ="
echo "     Orders every row of orders, Restate every order in peer.sh finals"
echo
python3 bench/peers.py table "$presults"

if ((smoke)); then
  python3 - "$presults" <<'PY'
import json, sys
r = {}
for line in open(sys.argv[1]):
    d = json.loads(line); r[(d["system"], d["item"])] = d
need = {"a": "rps", "b": "e2e_rps", "d": "cpu_ms_per_order", "e": "rss_kib"}
need.update({item: "p99_ms" for (_, item) in r if item.startswith("c")})
missing = [f"{s}.{i}.{k}" for s in ("orders", "restate") for i, k in need.items() if not r.get((s, i), {}).get(k)]
late = [f"{s}.{i}" for (s, i), d in r.items() if d.get("waited_out") or d.get("not_completed")]
if missing or late:
    sys.exit(f"peers smoke: no figure for {', '.join(missing) or '-'}; not every order completed in {', '.join(late) or '-'}")
print("peers smoke: every figure produced, every order completed")
PY
fi
