"""A webhook subscriber for bench/run.sh's delivery items: answers every POST after DELAY_MS
with STATUS, on 127.0.0.1:PORT, and counts nothing (the service's deliveries table is the
record). `python3 bench/sink.py PORT STATUS DELAY_MS`; stopped by PID."""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, STATUS, DELAY = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(DELAY)
        self.send_response(STATUS)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Sink).serve_forever()
