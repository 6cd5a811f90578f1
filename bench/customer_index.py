#!/usr/bin/env python3
"""WAL pages per commit for the shapes of `orders_by_customer` (docs/BENCHMARKS.md, "Settings that matter").

A model, not the service: one table with the order id, customer and creation time, 2 KiB pages,
WAL mode, no automatic checkpoint. It fills the table with 60,000 orders from 100 customers,
then commits 300 groups of GROUP orders each (ids and times increasing, customers random) and
prints, for each index shape, the WAL pages per commit and the index's pages before and after.
The difference between two shapes is what the index shape costs; the absolute figures include
the table itself. Standard library only; the SQLite is Python's, not the service's bundled one.

Usage: bench/customer_index.py [GROUP]   (default 27, about a group's size under the POST load)
"""
import os
import random
import sqlite3
import sys
import tempfile

SHAPES = [
    "(customer_id, created_at DESC, order_id DESC)",
    "(customer_id, created_at, order_id)",
    "(created_at)",
]


def measure(shape, group, customers=100, warm=60_000, commits=300):
    with tempfile.TemporaryDirectory() as tmp:
        model(shape, group, customers, warm, commits, os.path.join(tmp, "model.db"))


def model(shape, group, customers, warm, commits, path):
    random.seed(1)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA page_size = 2048")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA wal_autocheckpoint = 0")
    db.execute("CREATE TABLE o (order_id TEXT PRIMARY KEY, customer_id TEXT, created_at TEXT)")
    db.execute(f"CREATE INDEX ix ON o {shape}")
    n = 0

    def commit(k):
        nonlocal n
        db.execute("BEGIN")
        for _ in range(k):
            n += 1
            db.execute(
                "INSERT INTO o VALUES (?, ?, ?)",
                (f"{n:036d}", f"customer-{random.randrange(customers)}", f"2026-11-22T{n:013d}Z"),
            )
        db.execute("COMMIT")

    for _ in range(warm // 1000):
        commit(1000)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = lambda: db.execute("SELECT count(*) FROM dbstat WHERE name = 'ix'").fetchone()[0]
    before = pages()
    for _ in range(commits):
        commit(group)
    frames = (os.path.getsize(path + "-wal") - 32) / (2048 + 24)
    print(f"{shape:48s} {frames / commits:7.1f} WAL pages/commit   index pages {before} -> {pages()}")
    db.close()


if __name__ == "__main__":
    group = int(sys.argv[1]) if len(sys.argv) > 1 else 27
    print(f"sqlite {sqlite3.sqlite_version}, {group} orders per commit, 100 customers")
    for shape in SHAPES:
        measure(shape, group)
