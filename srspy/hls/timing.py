"""Audio decode times for ``hls_dts_directly off`` (SRS ``SrsHls::on_audio``, as the
repository's outputs notes describe it): instead of the FLV timestamp, DTS counts the
samples sent so far. The samples of each frame are guessed from the timestamp delta and
the FLV sound rate (<960 -> 960, <1536 -> 1024, <3072 -> 2048, else 4096); the count
restarts when the timestamp goes backwards. ``hls_dts_directly on`` (the default) uses
the FLV timestamp x 90 and needs none of this.
"""

from __future__ import annotations

FLV_RATES = (5512, 11025, 22050, 44100)


class AudioDtsCounter:
    __slots__ = ("samples", "last_ts", "base_ts")

    def __init__(self):
        self.samples = 0
        self.last_ts: int | None = None
        self.base_ts = 0

    def dts(self, timestamp: int, flv_header_byte: int) -> int:
        """The 90 kHz DTS of an audio frame with this FLV timestamp (ms) and first byte."""
        rate = FLV_RATES[(flv_header_byte >> 2) & 0x03]
        if self.last_ts is None or timestamp < self.last_ts:
            self.samples = 0
            self.base_ts = timestamp
            self.last_ts = timestamp
            return timestamp * 90
        delta = timestamp - self.last_ts
        self.last_ts = timestamp
        guess = delta * rate // 1000
        self.samples += 960 if guess < 960 else 1024 if guess < 1536 else 2048 if guess < 3072 else 4096
        return self.base_ts * 90 + 90000 * self.samples // rate
