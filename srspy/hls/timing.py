"""Audio decode times for ``hls_dts_directly off`` (SRS ``SrsHlsController::write_audio``):
instead of the FLV timestamp, an AAC frame's DTS counts the samples sent before it. Each
frame's samples are guessed from the timestamp step and the sample rate (a step worth
fewer than 960 samples -> 960, fewer than 1536 -> 1024, fewer than 3072 -> 2048, else
4096; a step of 0 ms -> none), so FLV's millisecond timestamps, rounded and often jittery
(23, 23, 24, 23 ms for 1024 samples at 44.1 kHz), become the exact sample grid. The count
restarts when the timestamp goes backwards. ``hls_dts_directly on`` (the default) uses the
FLV timestamp x 90 and needs none of this.

Where srspy differs from SRS, on purpose:

* the count starts at the first frame's timestamp, and again at the timestamp that went
  backwards; SRS counts from 0 both times, so a stream whose timestamps do not start at 0
  (a republish on a running encoder, an edge) gets its audio seconds away from its video,
  whose DTS stays the FLV timestamp;
* the rate is the AudioSpecificConfig's; SRS takes it from there only for 11025, 22050
  and 44100 Hz, else from the FLV header, which says 44100 for any AAC (FLV spec), so a
  48 kHz stream's audio DTS would run 8.8% fast.
"""

from __future__ import annotations


def samples_per_frame(guess: int) -> int:
    """SRS's guess of an AAC frame's samples from the samples its timestamp step is worth."""
    if guess <= 0:
        return 0
    return 960 if guess < 960 else 1024 if guess < 1536 else 2048 if guess < 3072 else 4096


class AudioDtsCounter:
    __slots__ = ("samples", "last_ts", "base_ts")

    def __init__(self):
        self.samples = 0
        self.last_ts: int | None = None
        self.base_ts = 0

    def dts(self, timestamp: int, rate: int) -> int:
        """The 90 kHz DTS of an AAC frame with this FLV timestamp (ms), at ``rate`` Hz."""
        if self.last_ts is None or timestamp < self.last_ts:
            self.samples = 0
            self.base_ts = timestamp
            self.last_ts = timestamp
            return timestamp * 90
        delta = timestamp - self.last_ts
        self.last_ts = timestamp
        self.samples += samples_per_frame(delta * rate // 1000)
        return self.base_ts * 90 + 90000 * self.samples // rate
