"""Port of SrsHttpAuthMux: HTTP Basic authentication of the API (srs.md 2.2).

Paths containing ``/api/`` are protected, and so is ``/metrics`` (it tells the host
name, the kernel and the pid) unless ``metrics`` is off (the exporter's own listener, as
SRS has it). A missing or wrong ``Authorization`` gets 401 with ``WWW-Authenticate:
Basic`` and an empty body. The credentials split at the first colon (a password may
hold colons, a user name may not, as RFC 7617 says) and compare in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac


class HttpAuthMux:
    """Wraps ``next_``; ``enabled``, ``username`` and ``password`` may change at run time."""

    def __init__(self, next_, enabled: bool = False, username: str = "", password: str = "", metrics: bool = True):
        self.next_ = next_
        self.enabled = enabled
        self.username = username
        self.password = password
        self.metrics = metrics

    def protects(self, path: str) -> bool:
        return "/api/" in path or (self.metrics and path.rstrip("/") == "/metrics")

    def serve_http(self, w, r):
        if self.enabled and self.protects(r.path) and not self.authorized(r.header("Authorization")):
            w.header()["WWW-Authenticate"] = "Basic"
            w.header()["Content-Length"] = "0"
            w.write_header(401)
            w.final_request()
            return
        self.next_.serve_http(w, r)

    def authorized(self, value: str | None) -> bool:
        """True when ``value`` is ``Basic base64(username:password)`` with our credentials."""
        if not value:
            return False
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            plain = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, colon, password = plain.partition(b":")
        if not colon:
            return False
        user_ok = hmac.compare_digest(user, str(self.username).encode())
        pass_ok = hmac.compare_digest(password, str(self.password).encode())
        return user_ok & pass_ok


__all__ = ["HttpAuthMux"]
