"""Port of SrsHttpHooks: the ``http_hooks`` callbacks, and in-process hook callables.

    vhost __defaultVhost__ {
        http_hooks {
            enabled on;
            on_publish http://127.0.0.1:8085/api/v1/streams https://auth.example.com/pub;
            on_play http://127.0.0.1:8085/api/v1/sessions;
            timeout 5;          # srspy: seconds one event may take in all
        }
    }

Each event POSTs SRS's JSON (``server_id``, ``service_id``, ``action``, ``client_id``, ...)
to every URL of the event, in order. on_connect, on_publish and on_play decide: the hook
server allows with HTTP 200 or 201 and a body of ``0`` or a JSON object whose integer
``code`` is 0; anything else (another status or body, a connection error, no answer
within ``http_hooks.timeout``) refuses, and the first refusal stops the chain. A refusal
raises AccessDenied naming the URL and the reason. on_close, on_unpublish and on_stop
only notify: they run in their own greenlet, so they never delay a teardown nor block
another connection, and their failures are logged. on_hls (a segment was listed, posted
by app/hls.py) and on_dvr (a recording was renamed, app/dvr.py) notify the same way: they
never delay the writer nor the publisher.

Embedders register Python callables for the same events, without any HTTP server::

    def on_publish(event: dict):        # the same dict the HTTP hooks POST
        return event["stream"] != "forbidden"   # True/None allows; False or raising refuses
    server.hooks.register("on_publish", on_publish)

Callables run before the URLs, whether ``http_hooks`` is enabled or not, under the same
timeout (a callable that blocks on I/O must yield to gevent for the timeout to work).
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import time
from urllib.parse import urlsplit

import gevent
from gevent.pool import Group
from loguru import logger

from . import SERVER
from .errors import ERROR_HTTP_HOOK_REJECT, AccessDenied
from .log import spawn_with_context

DECIDING = ("on_connect", "on_publish", "on_play")
NOTIFYING = ("on_close", "on_unpublish", "on_stop", "on_hls", "on_dvr")
EVENTS = DECIDING + NOTIFYING
DEFAULT_TIMEOUT = 30.0  # SRS's HTTP client timeout for hooks
NOTIFY_TIMEOUT = 10.0  # SRS's timeout for on_hls_notify
MAX_RESPONSE = 64 * 1024  # a hook answer is a few bytes; never read more than this


class HookRefused(AccessDenied):
    """A hook refused an action (its URL or callable, and why, are in the message)."""

    code = ERROR_HTTP_HOOK_REJECT


def check_response(status: int, body: bytes) -> str | None:
    """Port of SrsHttpHooks::do_post's verdict: None when the answer allows, else why not.

    Allows: HTTP 200 or 201 with the body ``0``, or a JSON object with an integer ``code``
    of 0 (other fields ignored). Surrounding whitespace of the body is ignored.
    """
    if status not in (200, 201):
        return f"HTTP status {status}"
    text = body.strip()
    if not text:
        return "empty response"
    try:
        data = json.loads(text)
    except ValueError:
        return f"response is not JSON: {_clip(body)}"
    if not isinstance(data, dict):
        if text == b"0":
            return None
        return f"response {_clip(body)} is not 0"
    code = data.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        return f"response without an integer code: {_clip(body)}"
    if code != 0:
        return f"response code={code}"
    return None


def _clip(body: bytes, n: int = 80) -> str:
    s = body[:n].decode("utf-8", "replace")
    return repr(s + ("..." if len(body) > n else ""))


def post_json(url: str, data: bytes, timeout: float, verify_tls: bool = False, method: str = "POST",
              max_body: int = MAX_RESPONSE) -> tuple[int, bytes]:
    """POST ``data`` to an http:// or https:// URL (or ``method`` it, without a body);
    (status, at most ``max_body`` bytes of the body). Cooperative under gevent.

    Raises OSError/http.client.HTTPException on transport errors. ``timeout`` bounds each
    socket operation; the caller bounds the whole call.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port
    if parts.scheme == "https":
        ctx = ssl.create_default_context() if verify_tls else ssl._create_unverified_context()  # noqa: S323
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        headers = {"User-Agent": SERVER, "Connection": "close"}
        if method == "POST":
            headers["Content-Type"] = "application/json"
            conn.request("POST", path, body=data, headers=headers)
        else:
            conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        body = resp.read(max_body)
        return resp.status, body
    finally:
        conn.close()


class Hooks:
    """Calls the configured hooks of a request's vhost, and the registered callables."""

    #: Verify the certificates of https hook servers. SRS does not; internal hook servers
    #: often use self-signed certificates.
    verify_tls = False

    def __init__(self, server):
        self.server = server
        self.callables: dict[str, list] = {e: [] for e in EVENTS}
        self.pending = Group()  # notification greenlets still running

    # -- in-process hooks ------------------------------------------------------------------
    def register(self, event: str, fn) -> None:
        """Call ``fn(event_dict)`` on ``event``; for deciding events False or raising refuses."""
        if event not in self.callables:
            raise ValueError(f"unknown hook event {event!r}, one of {', '.join(EVENTS)}")
        self.callables[event].append(fn)

    def unregister(self, event: str, fn) -> None:
        if fn in self.callables.get(event, ()):
            self.callables[event].remove(fn)

    # -- config ----------------------------------------------------------------------------
    def _conf(self, req) -> dict | None:
        found = self.server.config.resolve_vhost(req.vhost)
        return found[1]["http_hooks"] if found else None

    def _urls(self, conf: dict | None, event: str) -> list[str]:
        if not conf or not conf["enabled"]:
            return []
        return list(conf.get(event) or [])  # a copy: a reload meanwhile must not change it (SRS #475)

    @staticmethod
    def _timeout(conf: dict | None) -> float:
        return float(conf.get("timeout") or DEFAULT_TIMEOUT) if conf else DEFAULT_TIMEOUT

    # -- event bodies (SRS field order) -------------------------------------------------------
    def _base(self, action: str, req, cid: str) -> dict:
        stat = self.server.stat
        return {"server_id": stat.server_id, "service_id": stat.service_id, "action": action, "client_id": cid,
                "ip": req.ip, "vhost": req.vhost, "app": req.app}

    def _stream_ids(self, ev: dict, req) -> dict:
        url = req.stream_url
        ev["stream_url"] = url
        s = self.server.stat.streams.get(url)
        if s is not None:
            ev["stream_id"] = s.id
        return ev

    def event(self, action: str, req, cid: str, **extra) -> dict:
        """The JSON body SRS posts for ``action``."""
        ev = self._base(action, req, cid)
        if action == "on_connect":
            ev.update(stream=req.stream_name, param=req.param, tcUrl=req.tc_url, pageUrl=req.page_url)
        elif action == "on_close":
            ev.update(send_bytes=int(extra.get("send_bytes", 0)), recv_bytes=int(extra.get("recv_bytes", 0)))
        elif action == "on_play":
            ev.update(stream=req.stream_name, tcUrl=req.tc_url, param=req.param, pageUrl=req.page_url)
            self._stream_ids(ev, req)
        elif action == "on_hls":
            ev.update(tcUrl=req.tc_url, stream=req.stream_name, param=req.param, duration=extra["duration"],
                      cwd=os.getcwd(), file=extra["file"], url=extra["url"], m3u8=extra["m3u8"],
                      m3u8_url=extra["m3u8_url"], seq_no=extra["seq_no"])
            self._stream_ids(ev, req)
        elif action == "on_dvr":
            ev.update(tcUrl=req.tc_url, stream=req.stream_name, param=req.param, cwd=os.getcwd(), file=extra["file"])
            self._stream_ids(ev, req)
        else:  # on_publish, on_unpublish, on_stop
            ev.update(tcUrl=req.tc_url, stream=req.stream_name, param=req.param)
            self._stream_ids(ev, req)
        return ev

    # -- the events ------------------------------------------------------------------------------
    def on_connect(self, req, cid: str):
        self._decide("on_connect", req, cid)

    def on_publish(self, req, cid: str):
        self._decide("on_publish", req, cid)

    def on_play(self, req, cid: str):
        self._decide("on_play", req, cid)

    def on_close(self, req, cid: str, send_bytes: int, recv_bytes: int):
        self._notify("on_close", req, cid, send_bytes=send_bytes, recv_bytes=recv_bytes)

    def on_unpublish(self, req, cid: str):
        self._notify("on_unpublish", req, cid)

    def on_stop(self, req, cid: str):
        self._notify("on_stop", req, cid)

    def on_hls(self, req, cid: str, duration: float, file: str, url: str, m3u8: str, m3u8_url: str, seq_no: int):
        """A segment was listed: ``file`` its path, ``url`` its URI (relative ones prefixed
        with ``m3u8_url``'s directory, as SRS), ``duration`` in seconds."""
        self._notify("on_hls", req, cid, duration=duration, file=file, url=url, m3u8=m3u8, m3u8_url=m3u8_url,
                     seq_no=seq_no)

    def on_dvr(self, req, cid: str, file: str):
        """A recording is complete: ``file``, its final path."""
        self._notify("on_dvr", req, cid, file=file)

    def on_hls_notify(self, req, ts_url: str, nb_notify: int) -> None:
        """SRS's on_hls_notify (CDN pre-warm): GET the vhost's ``on_hls_notify`` URL with
        ``[server_id] [service_id] [app] [stream] [ts_url] [param]`` filled (an absolute
        segment URI is the URL itself), read at most ``nb_notify`` bytes, in its own
        greenlet within NOTIFY_TIMEOUT seconds; every failure is only logged."""
        conf = self._conf(req)
        template = conf.get("on_hls_notify") if conf and conf["enabled"] else ""
        if not template:
            return
        if ts_url.startswith(("http://", "https://")):
            url = ts_url
        else:
            stat = self.server.stat
            url = template
            for var, value in (("[server_id]", stat.server_id), ("[service_id]", stat.service_id), ("[app]", req.app),
                               ("[stream]", req.stream_name), ("[ts_url]", ts_url), ("[param]", req.param)):
                url = url.replace(var, value)
        self.pending.add(gevent.spawn(self._get_notify, url, nb_notify))

    def _get_notify(self, url: str, nb_notify: int) -> None:
        try:
            with gevent.Timeout(NOTIFY_TIMEOUT):
                status, body = post_json(url, b"", NOTIFY_TIMEOUT, self.verify_tls, method="GET",
                                         max_body=nb_notify)
            logger.info("http hook on_hls_notify ok, url={}, status={}, read={}B", url, status, len(body))
        except (gevent.Timeout, OSError, http.client.HTTPException, ValueError) as e:
            logger.warning("http hook on_hls_notify failed, ignored, url={}: {}", url, e or e.__class__.__name__)

    # -- machinery -------------------------------------------------------------------------------
    def _decide(self, action: str, req, cid: str) -> None:
        """Run the callables then the URLs of ``action``; raise HookRefused at the first refusal."""
        conf = self._conf(req)
        urls = self._urls(conf, action)
        fns = list(self.callables[action])
        if not urls and not fns:
            return
        ev = self.event(action, req, cid)
        timeout = self._timeout(conf)
        err = self._run(action, ev, fns, urls, timeout, stop_on_refusal=True)
        if err is not None:
            raise HookRefused(err)

    def _notify(self, action: str, req, cid: str, **extra) -> None:
        """Run ``action`` in its own greenlet: the caller never waits for it."""
        conf = self._conf(req)
        urls = self._urls(conf, action)
        fns = list(self.callables[action])
        if not urls and not fns:
            return
        ev = self.event(action, req, cid, **extra)  # now: the request may change after we return
        g = spawn_with_context(self._run, action, ev, fns, urls, self._timeout(conf), False,
                               cid=cid, ip=getattr(req, "ip", ""))
        self.pending.add(g)

    def _run(self, action: str, ev: dict, fns: list, urls: list, timeout: float, stop_on_refusal: bool) -> str | None:
        """Every callable and URL in order, all within ``timeout`` seconds; the first refusal's
        reason (None: all allowed). Failures of a notification are logged and the rest go on."""
        deadline = time.monotonic() + timeout
        data = json.dumps(ev, separators=(",", ":")).encode()
        first_err = None
        timer = gevent.Timeout(timeout)
        timer.start()
        try:
            for target in [*fns, *urls]:
                what = target if isinstance(target, str) else getattr(target, "__qualname__", repr(target))
                try:
                    if isinstance(target, str):
                        err = self._call_url(target, data, max(0.001, deadline - time.monotonic()))
                    else:
                        err = self._call_fn(target, ev)
                except gevent.Timeout as t:
                    if t is not timer:
                        raise
                    err = f"no answer within {timeout:g}s"
                    self._log_result(action, what, err, stop_on_refusal, ev)
                    return first_err or f"http_hooks {action} refused by {what}: {err}"
                self._log_result(action, what, err, stop_on_refusal, ev)
                if err is not None:
                    msg = f"http_hooks {action} refused by {what}: {err}"
                    first_err = first_err or msg
                    if stop_on_refusal:
                        return msg
        except gevent.Timeout as t:
            if t is not timer:
                raise
            return first_err or f"http_hooks {action}: no answer within {timeout:g}s"
        finally:
            timer.close()
        return first_err

    def _call_url(self, url: str, data: bytes, timeout: float) -> str | None:
        try:
            status, body = post_json(url, data, timeout, self.verify_tls)
        except ConnectionRefusedError:
            return "connection refused"
        except (OSError, http.client.HTTPException, ValueError) as e:
            return f"{e.__class__.__name__}: {e}" if str(e) else e.__class__.__name__
        return check_response(status, body)

    @staticmethod
    def _call_fn(fn, ev: dict) -> str | None:
        try:
            ok = fn(dict(ev))
        except gevent.Timeout:
            raise
        except Exception as e:  # noqa: BLE001 - a refusal, reported with its reason
            return f"raised {e.__class__.__name__}: {e}"
        if ok is False:
            return "returned False"
        return None

    @staticmethod
    def _log_result(action: str, what: str, err: str | None, deciding: bool, ev: dict) -> None:
        if err is None:
            logger.info("http hook {} ok, client_id={}, url={}, stream={}", action, ev.get("client_id"), what,
                        ev.get("stream_url", ""))
        elif deciding:
            logger.warning("http hook {} refused, client_id={}, url={}: {}", action, ev.get("client_id"), what, err)
        else:
            logger.warning("http hook {} failed, ignored, client_id={}, url={}: {}", action, ev.get("client_id"),
                           what, err)

    def drain(self, timeout: float = 1.0) -> None:
        """Wait (at most ``timeout``) for the notifications still being delivered (quit)."""
        self.pending.join(timeout=timeout)


__all__ = ["DECIDING", "EVENTS", "HookRefused", "Hooks", "NOTIFYING", "check_response", "post_json"]
