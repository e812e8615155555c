"""A small MPEG-TS reader for tests: packets, PSI sections, PES timestamps, and the checks
a broadcast analyzer makes (continuity per PID, PAT/PMT and PCR intervals)."""

from __future__ import annotations

import json
from typing import NamedTuple

from gevent import subprocess


class TsPacket(NamedTuple):
    index: int
    pid: int
    pusi: bool
    afc: int  # 1 payload, 2 AF only, 3 AF + payload
    cc: int
    af: bytes  # the adaptation field after its length byte (b"" when none or length 0)
    af_length: int  # -1 when there is no adaptation field
    payload: bytes

    @property
    def rai(self) -> bool:
        return bool(self.af and self.af[0] & 0x40)

    @property
    def pcr(self) -> int | None:
        """The PCR in 90 kHz units (base; the extension is 0 here), or None."""
        if self.af and self.af[0] & 0x10:
            return int.from_bytes(self.af[1:7], "big") >> 15
        return None


def packets(data: bytes) -> list[TsPacket]:
    assert len(data) % 188 == 0, f"{len(data)} bytes is not a whole number of TS packets"
    out = []
    for i in range(0, len(data), 188):
        p = data[i:i + 188]
        assert p[0] == 0x47, f"packet {i // 188}: sync byte {p[0]:#x}"
        pid = ((p[1] & 0x1F) << 8) | p[2]
        afc = (p[3] >> 4) & 3
        pos = 4
        af, af_len = b"", -1
        if afc & 2:
            af_len = p[4]
            af = p[5:5 + af_len]
            pos = 5 + af_len
            assert pos <= 188, f"packet {i // 188}: adaptation field of {af_len} bytes"
        out.append(TsPacket(i // 188, pid, bool(p[1] & 0x40), afc, p[3] & 0x0F, af, af_len, p[pos:] if afc & 1 else b""))
    return out


def section(pkt: TsPacket) -> bytes:
    """The PSI section a PUSI packet starts (after the pointer field), CRC included."""
    body = pkt.payload[1 + pkt.payload[0]:]
    length = ((body[1] & 0x0F) << 8) | body[2]
    return body[:3 + length]


def continuity_errors(pkts: list[TsPacket]) -> list[str]:
    """Counter faults per PID as 13818-1 2.4.3.3 defines them (the first packet of a PID
    may carry any value; packets without payload repeat the counter)."""
    last = {}
    errors = []
    for p in pkts:
        prev = last.get(p.pid)
        if prev is not None:
            expected = (prev + 1) & 0x0F if p.afc & 1 else prev
            if p.cc != expected:
                errors.append(f"packet {p.index} pid {p.pid:#x}: cc {p.cc}, expected {expected}")
        last[p.pid] = p.cc
    return errors


def pes_dts(payload: bytes) -> int | None:
    """DTS (or PTS when alone) of a PES header, in 90 kHz units."""
    if payload[:3] != b"\x00\x00\x01":
        return None
    flags = payload[7] >> 6
    b = payload[14:19] if flags == 3 else payload[9:14]
    return (((b[0] >> 1) & 7) << 30) | (b[1] << 22) | ((b[2] >> 1) << 15) | (b[3] << 7) | (b[4] >> 1)


def ffprobe_json(path: str, *args: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", *args, "-of", "json", path], check=True, capture_output=True, timeout=60)
    return json.loads(out.stdout)


def continuity_log(path: str) -> list[str]:
    """What ffprobe at debug level says about counters and corrupt packets."""
    out = subprocess.run(["ffprobe", "-v", "debug", "-show_packets", "-of", "csv", path], capture_output=True, timeout=60)
    text = out.stderr.decode(errors="replace")
    return [line for line in text.splitlines() if "Continuity check failed" in line or "corrupt" in line.lower()]


def decode_errors(path: str, fmt: str | None = None) -> str:
    """ffmpeg's complaints when decoding the whole file (empty when clean)."""
    args = ["ffmpeg", "-nostdin", "-v", "error"] + (["-f", fmt] if fmt else []) + ["-i", path, "-f", "null", "-"]
    out = subprocess.run(args, capture_output=True, timeout=120)
    text = out.stderr.decode(errors="replace").strip()
    return text if text or out.returncode == 0 else f"ffmpeg exit {out.returncode}"
