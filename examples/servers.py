"""Two HTTP servers whose lifetimes are tied together.

An application server and a debug server run in goroutines. serve() returns
when its server stops, with the exception that stopped it (or None); main
collects both results from `done` and, as soon as the first arrives, closes
the shared `stop` channel. Each serve() watches `stop` from a second
goroutine and then shuts its server down gracefully (socketserver's
shutdown(): the serve loop finishes the request in hand and returns). So
whichever server fails first, both exit, and main knows how each ended -
no log.Fatal, no os.exit, nothing left running.

Here the debug server fails deliberately: its /debug/crash handler raises,
and the server treats an exception escaping a handler as fatal. Both
servers listen on 127.0.0.1 with a port chosen by the OS.
"""

import http.client
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from pygoro import chan, go, runtime


class Server(HTTPServer):
    """An HTTPServer that stops serving when a handler raises."""

    def handle_error(self, request, client_address):
        self.shutdown_request(request)  # close the client's connection
        raise  # re-raise the handler's exception out of serve_forever()


def handler(routes):
    """A request handler class serving GET for the paths in routes (path ->
    function returning the body), counting the requests it answered."""

    class Handler(BaseHTTPRequestHandler):
        served = 0

        def do_GET(self):
            route = routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            body = route().encode()
            type(self).served += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass  # keep the example's output to what main prints

    return Handler


def serve(server, stop):
    """Serve until `stop` is closed or the server fails; returns the failure
    (None for a graceful shutdown)."""

    def shutdown_on_stop():
        stop.recv()  # returns when stop is closed
        # Graceful: lets serve_forever() finish the request in hand and waits
        # for it to return. It blocks this goroutine's M in a
        # threading.Event wait; sysmon keeps the other goroutines running.
        server.shutdown()

    go(shutdown_on_stop)
    try:
        server.serve_forever(poll_interval=0.05)
        return None
    except Exception as e:
        return e
    finally:
        server.server_close()


def crash():
    raise RuntimeError("debug handler crashed")


def get(server, path):
    host, port = server.server_address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return f"{resp.status} {resp.read().decode()}"
    except (http.client.RemoteDisconnected, ConnectionError):
        return "connection closed without a response"
    finally:
        conn.close()


def main():
    start = runtime.num_goroutine()
    app_handler = handler({"/": lambda: "Hello, QCon!"})
    debug_handler = handler({
        "/debug/vars": lambda: f"goroutines={runtime.num_goroutine() - start}",
        "/debug/crash": crash,
    })
    app = Server(("127.0.0.1", 0), app_handler)
    debug = Server(("127.0.0.1", 0), debug_handler)

    done = chan(2)  # (name, error): room for both, so neither serve() blocks
    stop = chan()
    for name, server in (("app", app), ("debug", debug)):
        go(lambda name=name, server=server: done.send((name, serve(server, stop))))

    for _ in range(3):
        print("app   GET /             ->", get(app, "/"))
    print("debug GET /debug/vars   ->", get(debug, "/debug/vars"))
    print("debug GET /debug/crash  ->", get(debug, "/debug/crash"))

    stopped = False
    for _ in range(done.cap):
        name, err = done.recv()
        print(f"{name} server exited:", "shut down gracefully" if err is None else repr(err))
        if not stopped:
            stopped = True
            stop.close()

    print(f"requests served: app {app_handler.served}, debug {debug_handler.served}")
    deadline = time.monotonic() + 5
    while runtime.num_goroutine() > start and time.monotonic() < deadline:
        time.sleep(0.01)
    print("goroutines left:", runtime.num_goroutine() - start)


if __name__ == "__main__":
    main()
