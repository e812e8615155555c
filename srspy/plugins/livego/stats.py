"""livego's statistics: ``/stat/livestat`` (on the API port) and ``/streams`` (on the FLV port).

livego counts audio and video bytes per RTMP reader and writer and computes their speeds in
kbit/s (its Go names say bytes per ms; the numbers are kbit/s): the byte delta times 8,
divided by the whole seconds elapsed and by 1000, recomputed once 5 s have passed since
the last sample, in integer maths.

srspy does not count per message on the hot path: once a second ``Meters.sample`` walks
what each published stream appended to its log since the last sample and adds the audio
and video payload sizes (at 1 s the log still holds them: it keeps ``queue_length``). A
player's totals are the stream's media since the player came (players that keep up
receive what the publisher sends); its speeds are the stream's.
"""

from __future__ import annotations

import time

from ...kernel.message import AUDIO, VIDEO
from ...app.http_stream import FLV_PLAY
from ...rtmp.server import RTMP_PLAY
from .relays import LIVEGO_PULL

SPEED_INTERVAL_MS = 5000  # livego's SAVE_STATICS_INTERVAL


class Meter:
    """The audio and video bytes of one publish of one stream, and their speeds."""

    __slots__ = ("epoch", "seq", "audio", "video", "last_ms", "last_audio", "last_video", "audio_speed",
                 "video_speed", "players")

    def __init__(self, epoch: int, seq: int, now_ms: int):
        self.epoch = epoch
        self.seq = seq  # the next message of the log to count
        self.audio = self.video = 0
        self.last_ms = now_ms
        self.last_audio = self.last_video = 0
        self.audio_speed = self.video_speed = 0
        self.players: dict[str, tuple[int, int]] = {}  # cid -> (audio, video) when first seen

    def count(self, log) -> None:
        """Add the payloads of the stream's log (live/log.py) from ``seq`` on."""
        start = max(self.seq, log.start)
        audio = video = 0
        for m in log.read(start, log.end - start):
            if m.type == VIDEO:
                video += len(m.payload)
            elif m.type == AUDIO:
                audio += len(m.payload)
        self.audio += audio
        self.video += video
        self.seq = log.end

    def speeds(self, now_ms: int) -> None:
        """livego's SaveStatics: new speeds once SPEED_INTERVAL_MS passed since the last ones."""
        elapsed = now_ms - self.last_ms
        if elapsed < SPEED_INTERVAL_MS:
            return
        seconds = elapsed // 1000
        self.video_speed = (self.video - self.last_video) * 8 // seconds // 1000
        self.audio_speed = (self.audio - self.last_audio) * 8 // seconds // 1000
        self.last_video, self.last_audio, self.last_ms = self.video, self.audio, now_ms


class Meters:
    """One Meter per published stream, sampled on a timer (``sample``)."""

    def __init__(self, server):
        self.server = server
        self.meters: dict[str, Meter] = {}  # stream url -> Meter

    def sample(self, now_ms: int | None = None) -> None:
        now_ms = int(time.monotonic() * 1000) if now_ms is None else now_ms
        sources = self.server.sources.sources
        for url in [u for u in self.meters if u not in sources or not sources[u].publishing]:
            del self.meters[url]
        stat = self.server.stat
        for url, src in sources.items():
            if not src.publishing:
                continue
            meter = self.meters.get(url)
            if meter is None or meter.epoch != src.epoch:
                meter = self.meters[url] = Meter(src.epoch, src.publish_start, now_ms)
            meter.count(src.log)
            meter.speeds(now_ms)
            s = stat.streams.get(url)
            clients = s.clients if s is not None else {}
            for cid in [c for c in meter.players if c not in clients]:
                del meter.players[cid]
            for cid, c in clients.items():
                if c.type == RTMP_PLAY and cid not in meter.players:
                    meter.players[cid] = (meter.audio, meter.video)

    # -- /stat/livestat ---------------------------------------------------------------
    def livestat(self, room: str | None = None) -> dict | None:
        """``{"publishers": [...] or None, "players": [...] or None}``; None when ``room``
        (``app/name``) is given and has neither publisher nor player."""
        stat = self.server.stat
        if room is not None:
            s = stat.streams.get(_url(room))
            if s is None:
                return None
            streams = [s]
        else:
            streams = list(stat.streams.values())
        publishers, players = [], []
        for s in streams:
            meter = self.meters.get(s.url)
            pub = s.clients.get(s.publisher_cid) if s.active else None
            if pub is not None and (pub.type.endswith("-publish") or pub.type == LIVEGO_PULL):
                a, v = (meter.audio, meter.video) if meter else (0, 0)
                publishers.append(_item(s, pub, a, v, meter))
            for cid, c in s.clients.items():
                if c.type != RTMP_PLAY:
                    continue
                a0, v0 = meter.players.get(cid, (meter.audio, meter.video)) if meter else (0, 0)
                a, v = (meter.audio - a0, meter.video - v0) if meter else (0, 0)
                players.append(_item(s, c, a, v, meter))
        return {"publishers": publishers or None, "players": players or None}

    # -- /streams (the FLV port) ------------------------------------------------------
    def streams(self) -> dict:
        """livego's ``/streams``: every publisher and player (RTMP and HTTP-FLV) by key and id."""
        publishers, players = [], []
        for s in self.server.stat.streams.values():
            key = _key(s)
            if s.active and s.publisher_cid:
                publishers.append({"key": key, "id": s.publisher_cid})
            for cid, c in s.clients.items():
                if c.type in (RTMP_PLAY, FLV_PLAY):
                    players.append({"key": key, "id": cid})
        return {"publishers": publishers or None, "players": players or None}


def _url(room: str) -> str:
    """``live/room`` -> the stream url ``/live/room`` (default vhost)."""
    return "/" + room.strip("/")


def _key(s) -> str:
    """livego's stream key ``app/name``; a stream of another vhost keeps its vhost in front."""
    url = s.url
    if url.startswith("/"):
        return url[1:]
    return url


def _item(s, client, audio: int, video: int, meter: Meter | None) -> dict:
    req = client.req
    conn = client.conn
    rtmp = getattr(conn, "rtmp", None)
    return {
        "key": _key(s),
        "url": f"{req.tc_url}/{s.name}",
        "stream_id": int(getattr(rtmp, "stream_id", 0) or 0) if rtmp is not None else 0,
        "video_total_bytes": video,
        "video_speed": meter.video_speed if meter else 0,
        "audio_total_bytes": audio,
        "audio_speed": meter.audio_speed if meter else 0,
    }


__all__ = ["Meter", "Meters", "SPEED_INTERVAL_MS"]

