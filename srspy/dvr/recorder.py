"""The bytes of a DVR file: :func:`make_recorder` picks FLV or MP4 by the path.

Every recorder has the same three calls: ``header()`` (the file's first bytes),
``write(msg, timestamp)`` (bytes to append) and ``finish()`` -> ``(tail, patches)``: bytes
to append last and ``(offset, bytes)`` pairs to write in place before the rename.

* FLV (SRS ``SrsDvrFlvSegmenter``): header, tags as they come; the first onMetaData is
  rewritten without the publisher's ``filesize``/``duration``, with ``service`` and
  ``filesize`` 0 and ``duration`` 0 as its last two properties; on close both doubles are
  patched: bytes written and (last - first timestamp) / 1000 s.
* MP4, fragmented (srspy's default for recording): ``ftyp``+``moov`` once the first frame
  shows which tracks exist, then one ``moof``+``mdat`` per GOP (per second without video):
  a file cut short by a crash plays up to its last whole fragment.
* Either MP4 refuses (``Mp4Error``) a sequence header that changes a track once the file
  holds samples: its one sample description would be wrong for what follows. The plan
  (srspy/dvr/plan.py) starts a new file there, so a recording never gets one.
* MP4, progressive (SRS's ``SrsMp4Encoder``): ``mdat`` streamed, ``moov`` appended on close;
  unreadable if the process dies before (ossrs/srs#1292), hence not the default.
"""

from __future__ import annotations

import struct

from ..kernel import amf0
from ..kernel.flv import encode_tag, flv_header, tag_type
from ..kernel.message import AUDIO, VIDEO
from ..kernel.mp4 import DVR_TIMESCALE, VIDE, Fragmenter, Mp4Error, Mp4Tracks, ProgressiveMp4, init_segment
from ..errors import Amf0Error
from .plan import is_mp4

SERVICE = "srspy"
AUDIO_FRAGMENT_MS = 1000


class FlvRecorder:
    def __init__(self):
        self.offset = 0
        self.meta_at: int | None = None  # file offset of the filesize double
        self.first: int | None = None
        self.last = 0

    def header(self) -> bytes:
        head = flv_header(True, True)
        self.offset = len(head)
        return head

    def write(self, msg, timestamp: int) -> bytes:
        payload = msg.payload
        if msg.type not in (AUDIO, VIDEO):
            if self.meta_at is not None:
                return b""  # only the first onMetaData is kept, as SRS
            payload, at = self._metadata(payload)
            if at is None:
                return b""
            self.meta_at = self.offset + 11 + at
            timestamp = 0
        else:
            if self.first is None:
                self.first = timestamp
            self.last = max(self.last, timestamp)
        tag = encode_tag(tag_type(msg.type), timestamp, payload)
        self.offset += len(tag)
        return tag

    @staticmethod
    def _metadata(payload: bytes):
        try:
            values = amf0.decode_all(payload)
        except Amf0Error:  # a broken onMetaData is dropped, the recording goes on
            return payload, None
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) < 2 or values[0] != "onMetaData" or not isinstance(values[1], dict):
            return payload, None
        meta = amf0.EcmaArray((k, v) for k, v in values[1].items() if k not in ("filesize", "duration"))
        meta["service"] = SERVICE
        meta["filesize"] = 0.0
        meta["duration"] = 0.0
        body = amf0.encode_all("onMetaData", meta)
        # ... "filesize" number(8) "duration" number(8) 00 00 09
        return body, len(body) - 3 - 8 - 11 - 8

    def finish(self) -> tuple[bytes, list]:
        if self.meta_at is None:
            return b"", []
        duration = (self.last - self.first) / 1000 if self.first is not None else 0.0
        return b"", [(self.meta_at, struct.pack(">d", float(self.offset))),
                     (self.meta_at + 19, struct.pack(">d", duration))]


class ProgressiveMp4Recorder:
    def __init__(self):
        self.mp4 = ProgressiveMp4(DVR_TIMESCALE)

    def header(self) -> bytes:
        return self.mp4.header()

    def write(self, msg, timestamp: int) -> bytes:
        return self.mp4.write(msg.copy(timestamp=timestamp))

    def finish(self) -> tuple[bytes, list]:
        return self.mp4.finish()


class FragmentedMp4Recorder:
    def __init__(self):
        self.tracks = Mp4Tracks()
        self.frag: Fragmenter | None = None

    def header(self) -> bytes:
        return b""  # the init segment waits for the first frame

    def write(self, msg, timestamp: int) -> bytes:
        got = self.tracks.on_message(msg.copy(timestamp=timestamp))
        if got is None:
            return b""
        track, sample = got
        if sample is None:
            written = self.frag.tracks.get(track.track_id) if self.frag else None
            if written is not None and (written.config != track.config or written.codec != track.codec):
                raise Mp4Error(f"mp4: track {track.track_id} codec configuration changed mid-file")
            return b""
        out = b""
        if self.frag is None:
            self.frag = Fragmenter(self.tracks.tracks, DVR_TIMESCALE)
            out = init_segment(self.tracks.tracks, DVR_TIMESCALE)
        if track.track_id not in self.frag.tracks:
            return out  # a track that appeared after the init segment is not recorded
        has_video = VIDE in (t.handler for t in self.frag.tracks.values())
        if not self.frag.empty and (
                (track.handler == VIDE and sample.key)
                or (not has_video and self.frag.pending_duration() >= AUDIO_FRAGMENT_MS)):
            out += self.frag.fragment(sample.dts)
        self.frag.add(track, sample)
        return out

    def finish(self) -> tuple[bytes, list]:
        return (self.frag.fragment() if self.frag else b""), []


def make_recorder(path: str, fragmented_mp4: bool = True):
    if is_mp4(path):
        return FragmentedMp4Recorder() if fragmented_mp4 else ProgressiveMp4Recorder()
    return FlvRecorder()
