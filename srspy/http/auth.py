"""Port of SrsHttpAuthMux: HTTP Basic authentication of the API (srs.md 2.2).

Only paths containing ``/api/`` are protected. A missing or wrong ``Authorization``
gets 401 with ``WWW-Authenticate: Basic`` and an empty body.
"""

from __future__ import annotations

import base64
import binascii
import hmac


class HttpAuthMux:
    """Wraps ``next_``; ``enabled``, ``username`` and ``password`` may change at run time."""

    def __init__(self, next_, enabled: bool = False, username: str = "", password: str = ""):
        self.next_ = next_
        self.enabled = enabled
        self.username = username
        self.password = password

    def serve_http(self, w, r):
        if self.enabled and "/api/" in r.path and not self.authorized(r.header("Authorization")):
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
            plain = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        parts = plain.split(":")
        if len(parts) != 2:
            return False
        user_ok = hmac.compare_digest(parts[0].encode(), str(self.username).encode())
        pass_ok = hmac.compare_digest(parts[1].encode(), str(self.password).encode())
        return user_ok and pass_ok


__all__ = ["HttpAuthMux"]
