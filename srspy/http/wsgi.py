"""A PEP 3333 adapter: mount any WSGI application (Flask, Bottle, ...) into a mux.

``mux.handle("/admin/", WsgiHandler(app, prefix="/admin"))``: the application sees
``SCRIPT_NAME = "/admin"`` and ``PATH_INFO`` the rest of the path. The request body is
already read (``wsgi.input`` reads it from memory). The response goes through the
ResponseWriter: Content-Length when the application gives one (or returns a one-item
list), chunked otherwise.
"""

from __future__ import annotations

import io
import sys

from loguru import logger

from .message import url_bytes

# Hop-by-hop headers are the connection's business (PEP 3333), not the application's.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade"}


class _Response:
    """start_response state for one request."""

    def __init__(self, w):
        self.w = w
        self.status = None
        self.headers = None

    def start_response(self, status: str, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.w.header_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called twice without exc_info")
        self.status = int(status.split(None, 1)[0])
        self.headers = list(headers)
        return self.write

    def send_head(self):
        """Copy status and headers into the writer (nothing is sent yet)."""
        if self.status is None:
            raise AssertionError("the WSGI application did not call start_response")
        if self.w.header_sent:
            return
        h = self.w.header()
        for name, value in self.headers:
            if name.lower() not in _HOP_BY_HOP:
                h.add(name, value)
        self.w.write_header(self.status)

    def write(self, data: bytes):
        self.send_head()
        if data:
            self.w.write(data)


class WsgiHandler:
    """Serves ``app`` (a WSGI callable) mounted under ``prefix``."""

    def __init__(self, app, prefix: str = ""):
        self.app = app
        self.prefix = prefix.rstrip("/")

    def environ(self, r) -> dict:
        path = url_bytes(r.raw_path).decode("latin-1")  # PEP 3333: bytes as latin-1
        script = self.prefix
        if script and (path == script or path.startswith(script + "/")):
            path = path[len(script):]
        else:
            script = ""
        conn = r.conn
        sock = getattr(conn, "sock", None)
        try:
            server_name, server_port = sock.getsockname()[:2]
        except (AttributeError, OSError):
            server_name, server_port = r.host or "localhost", 0
        env = {
            "REQUEST_METHOD": r.method,
            "SCRIPT_NAME": script,
            "PATH_INFO": path,
            "QUERY_STRING": r.query,
            "SERVER_NAME": str(server_name),
            "SERVER_PORT": str(server_port),
            "SERVER_PROTOCOL": f"HTTP/{r.version}",
            "REMOTE_ADDR": r.remote_ip,
            "REMOTE_PORT": str(r.remote_port),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(r.body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "srspy.request": r,
        }
        for name, value in r.headers.pairs():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
                env[key] = value
                continue
            key = "HTTP_" + key
            env[key] = f"{env[key]},{value}" if key in env else value
        if "CONTENT_LENGTH" not in env and r.body:
            env["CONTENT_LENGTH"] = str(len(r.body))
        return env

    def serve_http(self, w, r):
        resp = _Response(w)
        result = self.app(self.environ(r), resp.start_response)
        try:
            if isinstance(result, (list, tuple)) and len(result) == 1 and not w.header_sent:
                resp.send_head()
                if "Content-Length" not in w.header():
                    w.header()["Content-Length"] = str(len(result[0]))
            for data in result:
                if data:
                    resp.write(data)
            resp.send_head()
            w.final_request()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - the response is what matters now
                    logger.exception("wsgi: close() of the application's result failed")


__all__ = ["WsgiHandler"]
