#!/usr/bin/env python3
"""Grows a database the service wrote to TARGET orders, for the memory item (bench/memory.sh).

usage: seed.py DB TARGET

The service must be stopped. The orders that ended (COMPLETED, FAILED, CANCELLED) are the
templates: each copy is one of them under a new order id (a random UUID) and a customer of its
own among 10,000, with its payment, shipment, saga step and earned voucher rows copied the same way, so the
tables and indexes every read touches grow as real orders grow them. Nothing else is copied
(outbox, history and idempotency rows are what retention removes). Prints one JSON line:
the orders before and after, and the seconds it took.
"""
import json
import sqlite3
import sys
import time

# (table, the column holding the order id, columns that must be unique per copy)
COPIED = [
    ("payments", "order_id", ["payment_id"]),
    ("shipments", "order_id", []),
    ("saga_steps", "order_id", []),
    ("vouchers", "issued_for_order", ["code"]),
]
# A version 4 UUID from 16 random bytes `hx` (hex).
UUID = ("lower(substr(hx,1,8)||'-'||substr(hx,9,4)||'-4'||substr(hx,14,3)||'-a'||substr(hx,18,3)"
        "||'-'||substr(hx,21,12))")


def columns(db, table):
    return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]


def main(path, target):
    t0 = time.time()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    before = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    templates = [r[0] for r in db.execute(
        "SELECT order_id FROM orders WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')")]
    if not templates:
        sys.exit("seed: no finished orders to copy")
    order_cols = columns(db, "orders")
    n = before
    batch = 20_000
    while n < target:
        take = min(batch, target - n)
        db.execute("DROP TABLE IF EXISTS temp.idmap")
        db.execute("CREATE TEMP TABLE idmap (old TEXT, new TEXT PRIMARY KEY, cust TEXT)")
        db.executemany("INSERT INTO idmap (old, new, cust) SELECT ?1, " + UUID
                       + ", 'seed-' || (abs(random()) % 10000) FROM (SELECT hex(randomblob(16)) AS hx)",
                       [(templates[i % len(templates)],) for i in range(n, n + take)])
        sel = ", ".join({"order_id": "m.new", "customer_id": "m.cust"}.get(c, "o." + c) for c in order_cols)
        db.execute(f"INSERT INTO orders ({', '.join(order_cols)}) SELECT {sel} FROM idmap m JOIN orders o ON o.order_id = m.old")
        for table, key, unique in COPIED:
            cols = columns(db, table)
            sel = ", ".join("m.new" if c == key else "m.cust" if c == "customer_id" else
                            ("lower(hex(randomblob(16)))" if c in unique else "t." + c) for c in cols)
            db.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {sel} FROM idmap m JOIN {table} t ON t.{key} = m.old")
        db.commit()
        n += take
    after = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(json.dumps({"orders_before": before, "orders_after": after, "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
