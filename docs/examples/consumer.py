"""A minimal subscriber of Orders' domain events (Python 3, `pip install standardwebhooks`).

It verifies each delivery's Standard Webhooks signature with the subscription's secret
(refusing anything unsigned, tampered with or older than five minutes), acknowledges a
repeated delivery without acting on it again (delivery is at least once; the event id is the
`webhook-id`), and keeps, per order, only what is newer than what it has (`sequence`, an
integer in a string: on AWS events may arrive in any order). Each event it acts on is appended
to OUT as one JSON line.

    ORDERS_WEBHOOK_SECRET=whsec_... python3 consumer.py PORT OUT

Answer 2xx only once the event is safely handled: anything else is retried (with backoff, for
about a day), and 410 Gone asks Orders to stop sending to this subscription.
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

WEBHOOK = Webhook(os.environ["ORDERS_WEBHOOK_SECRET"])
PORT, OUT = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
seen = set()  # event ids acted on; a real consumer keeps these in its own database
latest = {}  # order id -> highest sequence acted on


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            event = WEBHOOK.verify(body, dict(self.headers))
        except WebhookVerificationError:
            return self.answer(400)
        with lock:
            if event["id"] not in seen:
                seen.add(event["id"])
                order, sequence = event["subject"], int(event["sequence"])
                stale = sequence < latest.get(order, 0)
                latest[order] = max(sequence, latest.get(order, 0))
                with open(OUT, "a") as out:
                    out.write(json.dumps({"stale": stale, "event": event}) + "\n")
        self.answer(204)

    def answer(self, status):
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
