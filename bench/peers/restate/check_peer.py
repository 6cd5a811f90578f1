"""The checks of check.sh against a started peer (its environment: RUN, INGRESS_URL, ADMIN_URL,
STATS_URL, ACTORS_URL, SEND_PATH, STRACE_OUT, LOAD_BIN). Every check prints ok/FAIL; the last
line is "N passed, N failed" and the exit code is 1 if anything failed."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid

ENV = os.environ
INGRESS, ADMIN, STATS, ACTORS = (ENV[k] for k in ("INGRESS_URL", "ADMIN_URL", "STATS_URL", "ACTORS_URL"))
SEND_PATH = ENV["SEND_PATH"]
PASSED, FAILED = 0, 0


def check(what, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"ok   {what}")
    else:
        FAILED += 1
        print(f"FAIL {what} {detail}")


def http(method, url, body=None, headers=None):
    """(status, parsed JSON or text) of one request; errors are answers too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            status, raw = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def send(order_id, body, key=True):
    headers = {"content-type": "application/json"}
    if key:
        headers["idempotency-key"] = order_id
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http("POST", INGRESS + SEND_PATH.replace("{uuid}", order_id), raw, headers)


def state(order_id):
    return http("POST", f"{INGRESS}/Order/{order_id}/state")[1]


def available(product):
    return http("POST", f"{INGRESS}/Inventory/{product}/available")[1]


def query(sql):
    status, body = http("POST", f"{ADMIN}/query", json.dumps({"query": sql}).encode(),
                        {"content-type": "application/json", "accept": "application/json"})
    assert status == 200, (status, body)
    return body["rows"]


def finals():
    return http("GET", STATS)[1]


def wait_final(ids, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        f = finals()
        if all(i in f for i in ids) or time.monotonic() > deadline:
            return f
        time.sleep(0.2)


def wait_invocations_done(order_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(f"SELECT status FROM sys_invocation WHERE target_service_name = 'Order' "
                     f"AND target_service_key = '{order_id}'")
        if rows and all(r["status"] == "completed" for r in rows):
            return rows
        time.sleep(0.2)
    return None


def order(product, quantity, price, method=None):
    body = {"customerId": "check-1", "items": [{"productId": product, "quantity": quantity, "price": price}]}
    if method:
        body["paymentMethod"] = method
    return body


def good_orders():
    # 10 over 100.00 EUR (voucher), 9 small, 1 of exactly 100.00 (no voucher: strictly over).
    cases = [(order("laptop", 1, 1299.99), 129_999)] * 10 + [(order("mouse", 2, 25.5), 5_100)] * 9
    cases.append((order("headphones", 1, 100.00), 10_000))
    ids = {str(uuid.uuid4()): c for c in cases}
    codes = [send(i, body)[0] for i, (body, _) in ids.items()]
    check("20 good orders accepted 202", codes == [202] * 20, codes)
    f = wait_final(ids)
    done = [i for i in ids if f.get(i, [None])[0] == "COMPLETED"]
    check("20 good orders COMPLETED in /stats", len(done) == 20, f"{len(done)} of 20")
    bad = []
    for i, (_, total) in ids.items():
        s = state(i)
        voucher = s.get("voucher")
        want_voucher = total > 10_000
        ok = (s.get("status") == "COMPLETED" and s["order"]["totalCents"] == total
              and s.get("payment", {}).get("status") == "SUCCEEDED"
              and s.get("shipment", {}).get("trackingNumber", "").startswith("TRK-")
              and "sentAtMicros" in s.get("notification", {})
              and (voucher is not None) == want_voucher
              and (not want_voucher or (voucher["discountCents"] == 500 and voucher["status"] == "READY")))
        if not ok:
            bad.append((i, s))
    check("good orders' state: paid, shipped, notified, voucher iff total > 100.00", not bad, bad[:1])


def declined():
    before = available("monitor")
    i = str(uuid.uuid4())
    check("declined card accepted 202", send(i, order("monitor", 3, 199.0, "pm_card_chargeDeclined"))[0] == 202)
    f = wait_final([i])
    s = state(i)
    check("declined card FAILED (PaymentDeclined)", f.get(i, [None])[0] == "FAILED"
          and s.get("status") == "FAILED" and s.get("failureReason") == "PaymentDeclined", s)
    check("declined card: reservation released", available("monitor") == before, (before, available("monitor")))
    check("declined card: no shipment, no voucher", "shipment" not in s and "voucher" not in s, s)


def out_of_stock():
    i = str(uuid.uuid4())
    check("out-of-stock accepted 202", send(i, order("sold-out", 1, 10.0))[0] == 202)
    f = wait_final([i])
    s = state(i)
    check("out-of-stock FAILED (OutOfStock), nothing charged", f.get(i, [None])[0] == "FAILED"
          and s.get("failureReason") == "OutOfStock" and "payment" not in s, s)
    check("out-of-stock: stock untouched", available("sold-out") == 0)


def bad_bodies():
    # Restate's ingress checks only the content type before it logs a send and answers 202:
    # the body itself (JSON or not) is validated by the handler, which ends the invocation
    # with a terminal 400 before any state is written.
    i = str(uuid.uuid4())
    raw = json.dumps(order("laptop", 1, 1.0)).encode()
    status, _ = http("POST", INGRESS + SEND_PATH.replace("{uuid}", i), raw,
                     {"content-type": "text/plain", "idempotency-key": i})
    check("a body that is not declared JSON: 4xx", 400 <= status < 500, status)
    time.sleep(0.5)
    started = query(f"SELECT id FROM sys_invocation WHERE target_service_key = '{i}'")
    check("a body that is not declared JSON: no invocation started", started == [], started)
    for what, body, field in (("a body that is not JSON", b'{"customerId": "check-1", "items": [', ""),
                              ("an invalid order", order("laptop", 0, 1.0), "items[0].quantity")):
        j = str(uuid.uuid4())
        status, _ = send(j, body)
        check(f"{what}: accepted by the async send (202)", status == 202, status)
        rows = wait_invocations_done(j)
        failure = query(f"SELECT completion_result, completion_failure FROM sys_invocation "
                        f"WHERE target_service_key = '{j}'")
        text = (failure[0]["completion_failure"] or "") if failure else ""
        check(f"{what}: ends with a terminal failure {field}".rstrip(), rows is not None
              and failure[0]["completion_result"] == "failure" and field in text, failure)
        check(f"{what}: no state written, not in /stats", state(j) == {} and j not in finals())


def duplicate():
    before = available("keyboard")
    i = str(uuid.uuid4())
    body = order("keyboard", 7, 49.99)
    first, second = send(i, body), send(i, body)
    check("same id twice: both 202, one invocation", first[0] == second[0] == 202
          and first[1]["invocationId"] == second[1]["invocationId"]
          and second[1].get("status") == "PreviouslyAccepted", (first, second))
    third = send(i, body, key=False)
    check("same id again without idempotency-key: accepted", third[0] == 202, third)
    wait_final([i])
    wait_invocations_done(i)
    check("same id: one saga (stock taken once, one final record)",
          available("keyboard") == before - 7 and state(i).get("status") == "COMPLETED",
          (before, available("keyboard")))


def webhooks():
    secret = open(os.path.join(ENV["RUN"], "webhook-secret")).read().strip()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    body = json.dumps({"type": "payment.succeeded", "data": {"metadata": {"awakeableId": "x"}}}).encode()

    def post(ts, sign_with):
        mac = hmac.new(sign_with, f"msg_check.{ts}.".encode() + body, hashlib.sha256).digest()
        headers = {"content-type": "application/json", "webhook-id": "msg_check", "webhook-timestamp": str(ts),
                   "webhook-signature": "v1," + base64.b64encode(mac).decode()}
        return http("POST", f"{ACTORS}/webhooks/payment", body, headers)[0]

    check("forged payment webhook refused 401", post(int(time.time()), b"not-the-secret-key-000000") == 401)
    check("stale payment webhook refused 401", post(int(time.time()) - 600, key) == 401)


def fsyncs():
    out = ENV.get("STRACE_OUT")
    if not out:
        print("skip fsync check: strace not installed")
        return
    lines = [ln for ln in open(out) if "fdatasync(" in ln or "fsync(" in ln]
    wal = [ln for ln in lines if "/log-store/" in ln and ".log>" in ln and "= 0" in ln]
    check("restate-server fdatasyncs its log-server WAL while taking orders",
          len(wal) >= 20, f"{len(wal)} WAL syncs of {len(lines)}")
    print(f"     {len(wal)} WAL (log-store/*.log) syncs, {len(lines)} fsync/fdatasync calls in all")


def load_generator():
    binary = ENV.get("LOAD_BIN", "")
    if not os.access(binary, os.X_OK):
        print("skip load generator check: orders-bench-load not built")
        return
    log = os.path.join(ENV["RUN"], "load.csv")
    body = json.dumps(order("laptop", 1, 1299.99))
    res = subprocess.run([binary, "--url", INGRESS + SEND_PATH, "--method", "POST",
                          "--header", "content-type: application/json", "--header", "idempotency-key: {uuid}",
                          "--body", body, "--rate", "50", "--duration", "2", "--connections", "8",
                          "--log", log], capture_output=True, text=True)
    summary = json.loads(res.stdout)
    ids = [ln.split(",")[1] for ln in open(log) if ln.strip()]
    f = wait_final(ids, timeout=60)
    done = sum(1 for i in ids if f.get(i, [None])[0] == "COMPLETED")
    check("orders-bench-load: every sent order COMPLETED", res.returncode == 0 and summary["codes"] == {"202": len(ids)}
          and done == len(ids) == 100, (summary["codes"], done, len(ids)))


for step in (good_orders, declined, out_of_stock, bad_bodies, duplicate, webhooks, load_generator, fsyncs):
    try:
        step()
    except Exception as e:  # a crash in one group fails it, the others still run
        check(step.__name__, False, repr(e))

print(f"{PASSED} passed, {FAILED} failed")
raise SystemExit(1 if FAILED else 0)
