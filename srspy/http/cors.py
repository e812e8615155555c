"""Port of SrsHttpCorsMux: cross-domain headers and preflight answers (srs.md 2.1).

With ``http_server.crossdomain`` on, a request carrying ``Origin`` gets the six CORS
headers; ``OPTIONS`` is answered here (200, or 405 when crossdomain is off) and never
reaches the next handler.

One deliberate difference from SRS: ``Access-Control-Allow-Headers`` is ``*, Authorization``,
not ``*`` alone. The wildcard never covers ``Authorization`` (Fetch standard), so with ``*``
only a page on another origin (the console, when the API has its own port) cannot send the
API's Basic credentials: its preflight fails.
"""

from __future__ import annotations

CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Headers", "*, Authorization"),
    ("Access-Control-Allow-Methods", "*"),
    ("Access-Control-Expose-Headers", "*"),
    ("Access-Control-Allow-Credentials", "false"),
    ("Access-Control-Request-Private-Network", "true"),
)


class HttpCorsMux:
    """Wraps ``next_``; ``enabled`` may change at run time (config reload)."""

    def __init__(self, next_, enabled: bool = True):
        self.next_ = next_
        self.enabled = enabled

    def serve_http(self, w, r):
        enabled = self.enabled
        if enabled and r.header("Origin") is not None:
            h = w.header()
            for name, value in CORS_HEADERS:
                h[name] = value
        if r.method == "OPTIONS":
            w.header()["Content-Length"] = "0"
            w.write_header(200 if enabled else 405)
            w.final_request()
            return
        self.next_.serve_http(w, r)


__all__ = ["HttpCorsMux", "CORS_HEADERS"]
