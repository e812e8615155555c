"""What an HLS error does to the publish: ``hls_on_error`` (SRS ``SrsOriginHub::on_audio``
/ ``on_video`` with ``srs_hls_can_continue``, app/srs_app_source.cpp).

* ``ignore``: HLS stops for this publish (one error line); the publish goes on.
* ``continue`` (the default): a message HLS cannot decode is skipped when it is as large as
  the stream's latest sequence header of its kind (an encoder that sends its sequence
  header again flagged as a frame); any other error disconnects the publisher.
* ``disconnect``: any error disconnects the publisher.

HLS errors are the messages :class:`FrameCheck` refuses and the failures of HLS's own
file work (a full disk, an unwritable ``hls_path``). DVR's errors only ever stop DVR.
"""

from __future__ import annotations

from ..errors import HlsDecodeError
from ..kernel import codec
from ..kernel.message import AUDIO, VIDEO
from ..kernel.ts import nalus_ok

STOP = "stop"  # HLS ends for this publish; the publish goes on
SKIP = "skip"  # the message is left out; HLS goes on
KICK = "kick"  # the publisher is disconnected

# what HLS decodes: the tag parser and the codecs, by message type
_KINDS = {VIDEO: (codec.parse_video_tag, ("H264", "H265")), AUDIO: (codec.parse_audio_tag, ("AAC", "MP3"))}


def on_error(mode: str, err: BaseException) -> str:
    """STOP, SKIP or KICK for an HLS error under ``hls_on_error`` ``mode``."""
    if mode == "ignore":
        return STOP
    if mode == "continue" and isinstance(err, HlsDecodeError) and err.like_sequence_header:
        return SKIP
    return KICK


class FrameCheck:
    """``check(msg)`` raises HlsDecodeError for a media message HLS cannot decode: an
    AAC/MP3/H.264/HEVC tag whose headers end early, or an H.264/HEVC frame whose NAL units
    are neither length-prefixed (the sequence header's length size) nor Annex-B. Other
    codecs are not HLS's to decode: HLS leaves them out, as SRS. It keeps the size of the
    latest sequence header of each kind, and the NAL length size of the video's."""

    __slots__ = ("sh_size", "length_size")

    def __init__(self):
        self.sh_size = {AUDIO: -1, VIDEO: -1}
        self.length_size = 4

    def check(self, msg) -> None:
        kind = _KINDS.get(msg.type)
        if kind is None:
            return
        parse, codecs = kind
        payload = msg.payload
        tag = parse(payload)
        if tag.codec not in codecs or tag.track_id != 0:
            return
        if tag.malformed:
            self._refuse(msg, f"{tag.codec} tag of {len(payload)} bytes ends in its headers")
        if tag.is_sequence_header:
            self.sh_size[msg.type] = len(payload)
            if msg.type == VIDEO:
                self._length_size(tag.codec, payload[tag.offset:tag.end])
        elif msg.type == VIDEO and tag.is_frame:
            data = payload[tag.offset:tag.end]
            if data and not nalus_ok(data, self.length_size):
                self._refuse(msg, f"{tag.codec} frame of {len(payload)} bytes is neither "
                                  f"{self.length_size}-byte length-prefixed NAL units nor Annex-B")

    def _length_size(self, name: str, record) -> None:
        try:
            size = codec.parse_avcc(record)[0] if name == "H264" else codec.parse_hvcc(record)[0]
        except (ValueError, IndexError):
            return  # the TS muxer keeps the previous configuration too
        self.length_size = 4 if size == 3 else size  # 3 is not allowed (ISO/IEC 14496-15); as kernel/ts.py

    def _refuse(self, msg, what: str) -> None:
        like = len(msg.payload) == self.sh_size[msg.type]
        raise HlsDecodeError(what + (", as large as the sequence header" if like else ""), like)
