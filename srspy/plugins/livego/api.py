"""livego's control API: ``/control/{get,reset,delete,pull,push}`` and ``/stat/livestat``.

Every answer is livego's envelope ``{"status": N, "data": ...}`` as Go's encoding/json
writes it (no spaces, ``<``, ``>`` and ``&`` escaped as ``\\u003c`` ...), with
``Content-Type: application/json`` and the HTTP status equal to ``status``. Parameters
come from the query or, for POST, PUT and PATCH, from an urlencoded body (Go's
ParseForm: the body's value first); any method is accepted. Paths are exact; anything
else is Go's plain-text ``404 page not found``.

Where srspy answers differently from livego on purpose (README "livego control API"):
``/control/pull?oper=stop`` that stopped a pull answers 200 (livego: 400); starting a
relay that exists stops the old one first (livego leaves it running, unreachable); a
room name longer than 256 bytes, or a new room beyond ``max_rooms``, answers 400.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

import jwt
from loguru import logger

from ...errors import SrsError
from ...http.mux import HttpServeMux
from .keys import RoomError
from .relays import RoomPull, RoomPush

USAGE_GET = "url: /control/get?room=<ROOM_NAME>"
USAGE_RESET = "url: /control/reset?room=<ROOM_NAME>"
USAGE_DELETE = "url: /control/delete?room=<ROOM_NAME>"
USAGE_PULL = "url: /control/pull?&oper=start&app=live&name=123456&url=rtmp://192.168.16.136/live/123456"
USAGE_PUSH = "url: /control/push?&oper=start&app=live&name=123456&url=rtmp://192.168.16.136/live/123456"
PARAMS_ERROR = "control push parameter error, please check them."
FORM_METHODS = ("POST", "PUT", "PATCH")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                             "\u2029": "\\u2029"})


# -- responses --------------------------------------------------------------------------
def go_json(obj) -> bytes:
    """JSON as Go's encoding/json writes it: compact, UTF-8, HTML characters escaped.

    ``<``, ``>`` and ``&`` only ever stand inside strings in JSON, so escaping them in
    the whole text escapes them in the strings only."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).translate(_GO_ESCAPES).encode()


def envelope(status: int, data) -> bytes:
    return go_json({"status": status, "data": data})


def respond(w, status: int, data) -> None:
    """livego's Response.SendJson: the envelope, its status as the HTTP status."""
    body = envelope(status, data)
    h = w.header()
    h["Content-Type"] = "application/json"
    h["Content-Length"] = str(len(body))
    w.write_header(status)
    w.write(body)


def go_text(w, status: int, text: str) -> None:
    """Go's http.Error: a plain-text line."""
    body = (text + "\n").encode()
    h = w.header()
    h["Content-Type"] = "text/plain; charset=utf-8"
    h["X-Content-Type-Options"] = "nosniff"
    h["Content-Length"] = str(len(body))
    w.write_header(status)
    w.write(body)


def not_found(w, r) -> None:
    go_text(w, 404, "404 page not found")


class FormError(ValueError):
    """What Go's ParseForm refuses: a malformed percent escape."""


def form(r) -> dict[str, str]:
    """Go's ParseForm + Form.Get: the first value of each name, the body's before the query's."""
    sources = []
    ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
    if r.method in FORM_METHODS and ctype == "application/x-www-form-urlencoded":
        sources.append(r.body.decode("utf-8", "replace"))
    sources.append(r.query)
    out: dict[str, str] = {}
    for text in sources:
        if _BAD_ESCAPE.search(text):
            raise FormError(f"invalid URL escape in {text[:64]!r}")
        for k, v in parse_qsl(text, keep_blank_values=True):
            out.setdefault(k, v)
    return out


# -- JWT ---------------------------------------------------------------------------------
class JwtAuth:
    """livego's JWTMiddleware (auth0/go-jwt-middleware): every request but OPTIONS needs a
    token signed with ``secret``, from ``Authorization: Bearer`` or else ``?jwt=``; a
    refusal is ``403 {"status":403,"data":"<why>"}``. PyJWT checks the signature and the
    ``exp``/``nbf``/``iat`` claims."""

    def __init__(self, next_, secret: str, algorithm: str = "HS256"):
        self.next_ = next_
        self.secret = secret
        self.algorithm = algorithm

    def serve_http(self, w, r):
        if r.method == "OPTIONS":
            return self.next_.serve_http(w, r)
        problem = self.check(r)
        if problem is not None:
            logger.info("livego: {} {} refused: {}", r.method, r.path, problem)
            return respond(w, 403, problem)
        return self.next_.serve_http(w, r)

    def check(self, r) -> str | None:
        """Why the request is refused, or None."""
        auth = r.header("Authorization") or ""
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token:
                return "Authorization header format must be Bearer {token}"
        else:
            token = r.args.get("jwt", "")
        if not token:
            return "Required authorization token not found"
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError:
            return "token contains an invalid number of segments" if token.count(".") != 2 else "The token isn't valid"
        if alg != self.algorithm:
            return f"Expected {self.algorithm} signing method but token specified {alg}"
        try:
            jwt.decode(token, self.secret, algorithms=[self.algorithm], options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            return "Token is expired"
        except jwt.ImmatureSignatureError:
            return "Token is not valid yet"
        except jwt.InvalidSignatureError:
            return "signature is invalid"
        except jwt.InvalidTokenError:
            return "The token isn't valid"
        return None


# -- the handlers ------------------------------------------------------------------------
class ControlApi:
    """The handlers of the API port, on ``plugin`` (keys, relays, meters, server)."""

    def __init__(self, plugin):
        self.plugin = plugin
        self.mux = HttpServeMux()
        for pattern, handler in (("/control/get", self.get), ("/control/reset", self.reset),
                                 ("/control/delete", self.delete), ("/control/pull", self.pull),
                                 ("/control/push", self.push), ("/stat/livestat", self.livestat),
                                 ("/", not_found)):
            self.mux.handle(pattern, handler)

    # -- rooms -----------------------------------------------------------------------
    def _room(self, w, r, usage: str) -> str | None:
        try:
            room = form(r).get("room", "")
        except FormError:
            room = ""
        if not room:
            respond(w, 400, usage)
            return None
        return room

    def get(self, w, r):
        room = self._room(w, r, USAGE_GET)
        if room is not None:
            self._key(w, room, self.plugin.keys.get)

    def reset(self, w, r):
        room = self._room(w, r, USAGE_RESET)
        if room is not None:
            self._key(w, room, self.plugin.keys.reset)

    @staticmethod
    def _key(w, room: str, op):
        try:
            key = op(room)
        except RoomError as e:
            return respond(w, 400, str(e))
        except OSError as e:
            logger.error("livego: cannot save the keys: {}", e)
            return respond(w, 400, f"cannot save the keys: {e.strerror or e}")
        respond(w, 200, key)

    def delete(self, w, r):
        room = self._room(w, r, USAGE_DELETE)
        if room is None:
            return
        try:
            found = self.plugin.keys.delete(room)
        except OSError as e:
            logger.error("livego: cannot save the keys: {}", e)
            return respond(w, 400, f"cannot save the keys: {e.strerror or e}")
        if found:
            return respond(w, 200, "Ok")
        respond(w, 404, "room not found")

    # -- relays ----------------------------------------------------------------------
    def pull(self, w, r):
        """livego: every error is 400 (and its stop's success too; srspy answers that 200)."""
        self._relay(w, r, "pull", RoomPull, USAGE_PULL, 400, "session key[{}] not exist, please check it again.")

    def push(self, w, r):
        """livego: every answer is 200, errors included."""
        self._relay(w, r, "push", RoomPush, USAGE_PUSH, 200,
                    "<h1>session key[{}] not exist, please check it again.</h1>")

    def _relay(self, w, r, kind: str, cls, usage: str, error_status: int, unknown: str):
        try:
            f = form(r)
        except FormError:
            return respond(w, error_status, usage)
        app, name, url = f.get("app", ""), f.get("name", ""), f.get("url", "")
        if not app or not name or not url:
            return respond(w, error_status, PARAMS_ERROR)
        key = f"{kind}:{app}/{name}"
        if f.get("oper") == "stop":
            if not self.plugin.stop_relay(key):
                return respond(w, error_status, unknown.format(key))
            return respond(w, 200, f"<h1>push url stop {url} ok</h1></br>")
        try:
            self.plugin.start_relay(key, cls, app, name, url)
        except (SrsError, OSError, ValueError) as e:
            return respond(w, error_status, f"push error={e}")
        respond(w, 200, f"<h1>{kind} url start {url} ok</h1></br>")

    # -- statistics ------------------------------------------------------------------
    def livestat(self, w, r):
        try:
            room = form(r).get("room") or None
        except FormError:
            room = None
        data = self.plugin.meters.livestat(room)
        if data is None:
            return respond(w, 404, "room not found or inactive")
        respond(w, 200, data)


__all__ = ["ControlApi", "FormError", "JwtAuth", "envelope", "form", "go_json", "go_text", "not_found", "respond"]
