"""pygoro inside a multithreaded service.

http.server.ThreadingHTTPServer runs each request in its own OS thread - not
a goroutine. The handler thread still uses pygoro directly: it derives a
per-request context with a deadline (context.with_timeout), fans the work
out to goroutines with errgroup.with_context, and blocks in wait() like any
goroutine would. When a backend overruns the deadline, the request answers
504 and the goroutines it started are canceled with it: nothing outlives
the request.

GET /quote?symbols=A,B,C        one goroutine per symbol, 1 s budget
GET /quote?symbols=A,SLOW       SLOW never answers: 504 after 0.2 s budget

main() starts the server, sends 8 requests from 8 client threads at once,
prints the answers in order and shuts the server down.
"""

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from pygoro import context, errgroup, runtime, select
from pygoro import time as gotime

PRICES = {"GOOG": 180, "MSFT": 420, "AAPL": 230, "AMZN": 190}


def fetch_price(ctx, symbol):
    """A backend call: 10 ms, or never for SLOW; gives up when ctx is done."""
    # None disables a select case (Go's nil channel): SLOW's answer never comes
    answer = gotime.after(0.01).recv_case() if symbol != "SLOW" else None
    i, _, _ = select(answer, ctx.done_case())
    if i == 1:
        raise ctx.err()
    return PRICES[symbol]


def quote(parent, symbols):
    """{symbol: price}, fetched concurrently; raises the first failure."""
    g, ctx = errgroup.with_context(parent)
    prices = {}

    def fetch(sym):
        prices[sym] = fetch_price(ctx, sym)

    for sym in symbols:
        g.go(fetch, sym)
    g.wait()
    return prices


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        symbols = parse_qs(url.query).get("symbols", [""])[0].split(",")
        budget = 0.2 if "SLOW" in symbols else 1.0
        with context.with_timeout(context.background(), budget) as (ctx, _):
            try:
                prices = quote(ctx, symbols)
                status, body = 200, " ".join(f"{s}={prices[s]}" for s in symbols)
            except context.DeadlineExceeded:
                status, body = 504, "deadline exceeded"
            except KeyError as e:
                status, body = 404, f"unknown symbol {e}"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


REQUESTS = [
    "GOOG,MSFT", "AAPL", "GOOG,MSFT,AAPL,AMZN", "AMZN,SLOW",
    "MSFT", "NOPE", "AAPL,GOOG", "SLOW",
]


def main():
    start = runtime.num_goroutine()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    host, port = server.server_address

    results = [None] * len(REQUESTS)

    def client(i):
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("GET", f"/quote?symbols={REQUESTS[i]}")
        resp = conn.getresponse()
        results[i] = f"{resp.status} {resp.read().decode()}"
        conn.close()

    clients = [threading.Thread(target=client, args=(i,)) for i in range(len(REQUESTS))]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    for req, res in zip(REQUESTS, results):
        print(f"{req:22} -> {res}")

    server.shutdown()
    serving.join()
    server.server_close()
    deadline = time.monotonic() + 5
    while runtime.num_goroutine() > start and time.monotonic() < deadline:
        time.sleep(0.01)
    print("goroutines left after shutdown:", runtime.num_goroutine() - start)


if __name__ == "__main__":
    main()
