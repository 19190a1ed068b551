#!/usr/bin/env python3
"""The simulation's origin: answers every GET with a small cacheable object and counts requests.

    origin.py ADDR PORT [MAX_AGE]

Every path answers 200 with `object <path>`, `Cache-Control: public, max-age=MAX_AGE` (default
300), an ETag and `Cache-Tag: sim` (so a purge by tag works too). Each request is logged on
stdout as `origin: GET <path> -> request #N for this path`. `GET /_origin/count?path=P` tells
how many times P was asked (not counted itself); `GET /_origin/counts` lists every path as JSON.
Standard library only: it runs wherever python3 does.
"""

import hashlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

COUNTS = {}
LOCK = threading.Lock()


class Origin(BaseHTTPRequestHandler):
    # Keep-alive, as the proxy pools its origin connections.
    protocol_version = "HTTP/1.1"
    server_version = "sim-origin/1"
    max_age = 300

    def do_GET(self):
        self.answer(send_body=True)

    def do_HEAD(self):
        self.answer(send_body=False)

    def answer(self, send_body):
        url = urlsplit(self.path)
        if url.path == "/_origin/count":
            path = parse_qs(url.query).get("path", [""])[0]
            with LOCK:
                body = f"{COUNTS.get(path, 0)}\n"
            return self.reply(200, body.encode(), "text/plain", {}, send_body)
        if url.path == "/_origin/counts":
            with LOCK:
                body = json.dumps(COUNTS, sort_keys=True) + "\n"
            return self.reply(200, body.encode(), "application/json", {}, send_body)
        with LOCK:
            COUNTS[self.path] = COUNTS.get(self.path, 0) + 1
            count = COUNTS[self.path]
        print(f"origin: {self.command} {self.path} -> request #{count} for this path", flush=True)
        body = f"object {self.path}\n".encode()
        headers = {
            "Cache-Control": f"public, max-age={self.max_age}",
            "ETag": '"' + hashlib.sha256(body).hexdigest()[:16] + '"',
            "Cache-Tag": "sim",
        }
        self.reply(200, body, "text/plain", headers, send_body)

    def reply(self, status, body, content_type, headers, send_body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format, *args):
        # One line per object request is printed above; the default access log is noise.
        pass


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: origin.py ADDR PORT [MAX_AGE]")
    addr, port = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) == 4:
        Origin.max_age = int(sys.argv[3])
    server = ThreadingHTTPServer((addr, port), Origin)
    server.daemon_threads = True
    print(f"listening origin {addr}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
