"""What the hub tells the rest of the server, and the per-source outputs it runs.

``SourceListener``: the source manager calls every registered listener when a stream is
published or unpublished, before a consumer is created (so that an edge pull can publish
first and the new consumer starts at that publish) and after one is destroyed. The HTTP
stream mounts, the statistics and the edge register as listeners (server.py wires them).

``OriginHub`` (SrsOriginHub): one per source; at publish it asks the manager's output
factories for the outputs of this stream (forward today; HLS and DVR are the same kind)
and starts them; at unpublish it stops them, giving each a moment to send what is queued.
An output reads the stream through its own consumer created with ``player=False``: it
never keeps a source or an edge pull alive and never slows the players.

See docs/architecture.md for the whole picture.
"""

from __future__ import annotations

from loguru import logger

DRAIN_S = 2.0  # an output sends what is queued at unpublish for at most this long


class SourceListener:
    """Override what you need; every call happens in the greenlet that caused it."""

    def on_publish(self, source) -> None:
        """``source`` was taken by a publisher (``source.publisher``)."""

    def on_unpublish(self, source) -> None:
        """``source``'s publisher left (``source.publisher`` is still set)."""

    def on_consumer_creating(self, source, player: bool) -> None:
        """A consumer is about to be created (``player``: it counts as a player)."""

    def on_consumer_destroyed(self, source, consumer) -> None:
        """``consumer`` left ``source``."""


class HubOutput:
    """A per-source output (forward, HLS, DVR): started at publish, stopped at unpublish."""

    def start(self, source) -> None:
        raise NotImplementedError

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop; with ``drain_s``, first send what is still queued, for at most that long."""
        raise NotImplementedError


class OriginHub:
    """The outputs of one source (SrsOriginHub)."""

    __slots__ = ("source", "outputs")

    def __init__(self, source):
        self.source = source
        self.outputs: list = []

    def on_publish(self, factories) -> None:
        self.stop_all()  # leftovers of a publish that ended without its unpublish
        for factory in factories:
            for out in factory(self.source):
                self.outputs.append(out)
                try:
                    out.start(self.source)
                except Exception:  # noqa: BLE001 - one output's failure is its own
                    logger.exception("hub {}: output {!r} failed to start", self.source.url, out)

    def on_unpublish(self) -> None:
        self.stop_all(DRAIN_S)

    def stop_all(self, drain_s: float = 0.0) -> None:
        outs, self.outputs = self.outputs, []
        for out in outs:
            try:
                out.stop(drain_s)
            except Exception:  # noqa: BLE001
                logger.exception("hub {}: output {!r} failed to stop", self.source.url, out)
