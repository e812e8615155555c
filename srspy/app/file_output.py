"""What the outputs that write files (app/hls.py, app/dvr.py) share: a consumer loop in a
greenlet of their own, and file work in gevent's threadpool.

``FileOutput`` reads its source through a consumer with ``player=False`` (it never keeps
a source alive nor slows the players), hands every batch to ``_feed(msgs)``, and at
unpublish (``stop``) takes what is still queued, then calls ``_end()``. An ``OSError`` or
``SrsError`` in either ends the output through ``_fail(e)``: by default one error line and
``_abort()``, the publish going on (DVR always; HLS decides by ``hls_on_error``).
``_ended()`` runs last, whatever happened.
"""

from __future__ import annotations

import gevent
from loguru import logger

from ..errors import SrsError
from ..live.hub import HubOutput

WAIT_S = 1.0


def _caught(fn, args):
    try:
        return True, fn(*args)
    except BaseException as e:  # noqa: BLE001 - handed back to the calling greenlet
        return False, e


def run_blocking(fn, *args):
    """``fn(*args)`` in gevent's threadpool: the calling greenlet waits, the hub does not.
    What ``fn`` raises is raised again here, in the caller (the threadpool would print a
    traceback of its own for it)."""
    ok, value = gevent.get_hub().threadpool.apply(_caught, (fn, args))
    if not ok:
        raise value
    return value


class FileOutput(HubOutput):
    kind = "output"  # the name in log lines

    def __init__(self, server, source):
        self.server = server
        self.source = source
        self.req = source.req
        self.epoch = source.epoch
        self.cid = getattr(source.publisher, "cid", "") or ""  # the publisher's, for the hooks
        self.utc = bool(server.config.root.get("utc_time"))
        self.consumer = None
        self.greenlet = None
        self.stopping = False
        self.stopped = False
        self.failed = False
        self.dropped = 0

    # -- HubOutput ------------------------------------------------------------------------
    def start(self, source=None) -> None:
        self.greenlet = gevent.spawn(self._cycle)

    def stop(self, drain_s: float = 0.0) -> None:
        """Finish with what is still queued (the last segment or file), then end."""
        if self.stopping:
            return
        self.stopping = True
        c = self.consumer
        if c is not None:
            c.wakeup()

    def join(self, timeout: float | None = None) -> None:
        g = self.greenlet
        if g is not None and g is not gevent.getcurrent():
            g.join(timeout)

    # -- for subclasses ---------------------------------------------------------------------
    def _feed(self, msgs: list) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        """The publish ended: finish the open file."""

    def _abort(self) -> None:
        """A failure: drop what is open, quietly."""

    def _ended(self) -> None:
        """Last of all."""

    def _discontinuity(self) -> None:
        """The consumer fell behind: messages were dropped."""

    def _fail(self, e: BaseException) -> None:
        """An error ended the output: one error line, what is open dropped; the publish goes on."""
        logger.error("{}: {} stopped, the publish goes on: {}", self.kind, self.source.url, e)
        self._abort_quietly()

    def _abort_quietly(self) -> None:
        try:
            self._abort()
        except (OSError, SrsError):
            pass

    # -- the loop ---------------------------------------------------------------------------
    def _alive(self) -> bool:
        src = self.source
        return not self.stopping and src.publishing and src.epoch == self.epoch

    def _play_conf(self) -> dict:
        found = self.server.config.resolve_vhost(self.req.vhost)
        return found[1]["play"] if found else {"mw_msgs": 8, "mw_latency": 350}

    def _cycle(self) -> None:
        play = self._play_conf()
        consumer = self.source.create_consumer(play["mw_msgs"], play["mw_latency"], owner=self, player=False)
        self.consumer = consumer
        try:
            self.source.consumer_dumps(consumer)
            while True:
                alive = self._alive()
                if alive:
                    consumer.wait(WAIT_S)
                    consumer.pop_events()
                if self.source.epoch != self.epoch:
                    break  # a new publish: its messages are the next output's
                msgs = consumer.dump()
                if consumer.dropped != self.dropped:
                    self.dropped = consumer.dropped
                    self._discontinuity()
                if msgs:
                    self._feed(msgs)
                elif not alive:
                    break
            self._end()
        except (OSError, SrsError) as e:
            self.failed = True
            self._fail(e)
        finally:
            self.consumer = None
            consumer.dispose()
            self.stopped = True
            self._ended()


__all__ = ["FileOutput", "run_blocking"]
