"""What HLS carries of a stream's tracks (SRS's ``hls_acodec`` / ``hls_vcodec``).

``an`` / ``vn`` leave audio / video out of the segments: no PID in the PMT, no PES, no
track in an fMP4 init segment. The stream's frames of that kind still take part in where
segments are cut, so ``hls_vcodec vn`` gives audio-only segments cut at the video's
keyframes, as SRS (2.0 to 4.0.268: the TS writer drops a disabled stream's packets).

``aac`` / ``mp3`` / ``h264`` / ``h265`` name the codec the PMT lists for a track the
stream carries before the track reveals its codec; a track counts as carried once the
stream's onMetaData announces it (``audiocodecid`` / ``videocodecid``), and only the first
segment of a publish lists a track on that word alone: from the second one, a track that
never showed is left out (srspy never lists a PID the stream does not have). AAC and
H.264/HEVC reveal their codec by a sequence header before their first frame, so the
setting shows only for MP3 audio (no sequence header) whose first frame comes after the
first segment opened, or for a track whose first frame comes late.
"""

from __future__ import annotations

from ..errors import Amf0Error
from ..kernel import amf0

ACODECS = {"aac": "AAC", "mp3": "MP3", "an": None}
VCODECS = {"h264": "H264", "h265": "H265", "vn": None}


def announced_tracks(payload) -> tuple[bool, bool]:
    """(audio, video): whether an onMetaData data message announces each track, by an
    ``audiocodecid`` / ``videocodecid`` that is neither 0 nor empty; (False, False) for
    another data message or AMF0 that does not decode."""
    try:
        values = amf0.decode_all(payload)
    except Amf0Error:
        return False, False
    if values and values[0] == "@setDataFrame":
        values = values[1:]
    if len(values) < 2 or values[0] != "onMetaData" or not isinstance(values[1], dict):
        return False, False
    meta = values[1]
    return bool(meta.get("audiocodecid")), bool(meta.get("videocodecid"))
