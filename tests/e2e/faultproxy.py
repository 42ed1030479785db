"""Fault injection between the controller and a real peer.

An HTTP proxy on loopback that forwards to the real gateway, and on demand
answers with an error status, delays, or drops the connection for the next
N requests (optionally only those whose method and path match), cuts a
reply off halfway through its body, or sends bytes after it.  And a TCP relay that holds each new
connection for a while before it forwards it (a slow git server).
"""
import http.client
import http.server
import socket
import threading

from peers import free_port


class FaultProxy:
    def __init__(self, target_port):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.target_port = target_port
        self.lock = threading.Lock()
        self.faults = []  # list of dicts: {kind, count, status, delay, methods}
        self.seen = []    # (method, path, what happened)
        self.hooks = []   # (path prefix, fn): fn() runs after forwarding; an int it
                          # returns replaces the gateway's status
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy.take_fault(self.command, self.path)
                if fault and fault["kind"] == "status":
                    proxy.record(self.command, self.path, "status %d" % fault["status"])
                    data = b'{"status":"error","message":"injected fault"}'
                    self.send_response(fault["status"])
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if fault and fault["kind"] == "drop":
                    proxy.record(self.command, self.path, "dropped")
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault and fault["kind"] == "delay":
                    proxy.record(self.command, self.path, "delayed")
                    threading.Event().wait(fault["delay"])
                conn = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if fault and fault["kind"] == "cut":
                    # The whole length announced, half the body sent, then
                    # the connection closed: a transfer cut short.
                    proxy.record(self.command, self.path, "cut")
                    self.send_response(resp.status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    conn.close()
                    return
                if fault and fault["kind"] == "trailing":
                    # The whole reply, then bytes that are not JSON.
                    proxy.record(self.command, self.path, "trailing")
                    data += b" x"
                proxy.record(self.command, self.path, "forwarded %d" % resp.status)
                override = proxy.run_hooks(self.path)
                if override:
                    data = b'{"status":"error","message":"injected fault after forwarding"}'
                    self.send_response(override)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    conn.close()
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, kind, count, status=503, delay=0.0, methods=None, path=None):
        with self.lock:
            self.faults.append({"kind": kind, "count": count, "status": status,
                                "delay": delay, "methods": methods, "path": path})

    def take_fault(self, method, path):
        with self.lock:
            for f in self.faults:
                if f["count"] > 0 and (not f["methods"] or method in f["methods"]) and \
                        (not f["path"] or path == f["path"]):
                    f["count"] -= 1
                    return dict(f)
        return None

    def after(self, path_prefix, fn):
        """Calls fn() once a request to path_prefix has reached the gateway,
        before the controller gets the answer."""
        with self.lock:
            self.hooks.append((path_prefix, fn))

    def run_hooks(self, path):
        with self.lock:
            hooks = [fn for prefix, fn in self.hooks if path.startswith(prefix)]
        status = None
        for fn in hooks:
            status = fn() or status
        return status

    def record(self, method, path, what):
        with self.lock:
            self.seen.append((method, path, what))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class SlowTcp:
    """Forwards TCP connections to a real peer, each after `delay` seconds."""

    def __init__(self, target_port, delay=0.0):
        self.target_port = target_port
        self.delay = delay
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client, self.delay), daemon=True).start()

    def _relay(self, client, delay):
        self.stopped.wait(delay)
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=60)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopped.set()
        self.listener.close()
