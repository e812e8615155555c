"""Command-line tools: ``srspy-push FILE.flv rtmp://...`` and ``srspy-pull URL -o out.flv``.

srspy-push reads an FLV file and publishes it, paced in real time by its timestamps
(``--no-pace`` sends as fast as the server takes it, ``--speed`` scales the pace,
``--loop`` starts over with continuing timestamps). srspy-pull plays an RTMP or HTTP-FLV
URL into an FLV file until the stream ends, ``--duration`` passes, or SIGINT/SIGTERM;
the file is valid whenever it stops. Both print progress with the bitrate when stderr
is a terminal.

Also runnable as ``python -m srspy.client.tools push|pull ...``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import gevent
from loguru import logger

from .. import __version__
from ..errors import SrsError
from ..kernel.flv import FLV_TAG_AUDIO, FLV_TAG_VIDEO
from . import open_pull
from .flvfile import FlvFileWriter, FlvTag, read_flv_file
from .rtmp import RtmpPushSession
from .session import ERROR
from .url import UrlError, parse_url

PROGRESS_INTERVAL = 1.0
FLUSH_INTERVAL = 0.5
DEFAULT_FRAME_MS = 40


def push_file(session, path, *, pace: bool = True, speed: float = 1.0, loop: bool = False, should_stop=None,
              on_progress=None) -> int:
    """Publish the tags of an FLV file through a started push session; the number of tags sent.

    With ``pace``, each audio/video tag leaves when its timestamp is due (``speed`` times
    real time). With ``loop``, the file starts over, timestamps going on from where the
    previous pass ended. ``should_stop()`` is checked between tags.
    """
    sent = 0
    offset = 0
    wall0 = None
    ts0 = 0
    while True:
        last_ts = None
        first_ts = None
        frame_ms = DEFAULT_FRAME_MS
        for tag in read_flv_file(path):
            if should_stop is not None and should_stop():
                return sent
            ts = tag.timestamp + offset
            if tag.type in (FLV_TAG_AUDIO, FLV_TAG_VIDEO):
                if first_ts is None:
                    first_ts = tag.timestamp
                if tag.type == FLV_TAG_VIDEO and last_ts is not None and 0 < tag.timestamp - last_ts < 1000:
                    frame_ms = tag.timestamp - last_ts
                if tag.type == FLV_TAG_VIDEO:
                    last_ts = tag.timestamp
                if pace:
                    if wall0 is None:
                        wall0, ts0 = time.monotonic(), ts
                    delay = wall0 + (ts - ts0) / 1000.0 / speed - time.monotonic()
                    if delay > 0:
                        session.flush()
                        gevent.sleep(delay)
                        if should_stop is not None and should_stop():
                            return sent
            session.write_flv_tag(FlvTag(tag.type, ts, tag.payload))
            sent += 1
            if on_progress is not None:
                on_progress(ts)
        session.flush()
        if not loop or first_ts is None:
            return sent
        end = last_ts if last_ts is not None else first_ts
        offset += end - first_ts + frame_ms


class Progress:
    """One status line on a terminal, rewritten at most once a second."""

    def __init__(self, label: str, session, enabled: bool):
        self.label = label
        self.session = session
        self.enabled = enabled
        self.start = time.monotonic()
        self.last = self.start
        self.last_bytes = 0
        self.ts = 0
        self.printed = False

    def _bytes(self) -> int:
        s = self.session
        return s.send_bytes if self.label == "push" else s.recv_bytes

    def tick(self, ts: int = -1, force: bool = False):
        if ts >= 0:
            self.ts = ts
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_INTERVAL:
            return
        b = self._bytes()
        kbps = int((b - self.last_bytes) * 8 / 1000 / max(now - self.last, 1e-3))
        self.last, self.last_bytes = now, b
        ts_s = self.ts / 1000.0
        line = (f"\r{self.label}: {now - self.start:7.1f}s  {b / 1e6:8.2f} MB  {kbps:6d} kbit/s  "
                f"stream time {int(ts_s // 60):02d}:{ts_s % 60:05.2f}")
        sys.stderr.write(line)
        sys.stderr.flush()
        self.printed = True

    def done(self):
        """End the line with the totals: bytes and the average bitrate."""
        if not self.printed:
            return
        now = time.monotonic()
        b = self._bytes()
        kbps = int(b * 8 / 1000 / max(now - self.start, 1e-3))
        ts_s = self.ts / 1000.0
        sys.stderr.write(f"\r{self.label}: {now - self.start:7.1f}s  {b / 1e6:8.2f} MB  {kbps:6d} kbit/s  "
                         f"stream time {int(ts_s // 60):02d}:{ts_s % 60:05.2f} (average)\n")
        sys.stderr.flush()


def _setup_logging(verbose: bool):
    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if verbose else "ERROR", format="{time:HH:mm:ss.SSS} {level} {message}")


def _install_stop(on_stop):
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, on_stop)


def _common_args(ap: argparse.ArgumentParser):
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to connect and start (default 10)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    ap.add_argument("-v", "--verbose", action="store_true", help="log the sessions' debug lines")
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


def push_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="srspy-push", description="Publish an FLV file to an RTMP server.")
    ap.add_argument("file", help="FLV file to publish")
    ap.add_argument("url", help="rtmp://host[:port]/app/stream[?query]")
    ap.add_argument("--loop", action="store_true", help="start over at the end of the file, forever")
    ap.add_argument("--no-pace", dest="pace", action="store_false", help="send as fast as possible")
    ap.add_argument("--speed", type=float, default=1.0, help="pace at this many times real time (default 1)")
    ap.add_argument("--write-timeout", type=float, default=30.0, help="seconds one write may block (default 30)")
    ap.add_argument("--complex-handshake", action="store_true", help="use the complex (digest) handshake")
    ap.add_argument("--flash", dest="fmle", action="store_false", help="publish Flash style (no releaseStream/FCPublish)")
    _common_args(ap)
    args = ap.parse_args(argv)
    _setup_logging(args.verbose)
    if not os.path.isfile(args.file):
        print(f"srspy-push: {args.file}: no such file", file=sys.stderr)
        return 2
    try:
        session = RtmpPushSession(args.url, start_timeout=args.timeout, write_timeout=args.write_timeout,
                                  complex_handshake=args.complex_handshake, fmle=args.fmle,
                                  write_buffer=0 if args.pace else 64 * 1024)
    except UrlError as e:
        print(f"srspy-push: {e}", file=sys.stderr)
        return 2
    stopped = []

    def stop():
        stopped.append(True)

    _install_stop(stop)
    progress = Progress("push", session, sys.stderr.isatty() and not args.quiet)
    try:
        session.start()
        n = push_file(session, args.file, pace=args.pace, speed=args.speed, loop=args.loop,
                      should_stop=lambda: bool(stopped), on_progress=progress.tick)
    except (SrsError, OSError, ValueError) as e:
        progress.done()
        print(f"srspy-push: {e}", file=sys.stderr)
        session.dispose()
        return 1
    progress.done()
    session.dispose()
    if not args.quiet:
        print(f"srspy-push: {n} tags sent to {args.url}{' (interrupted)' if stopped else ''}", file=sys.stderr)
    return 0


def pull_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="srspy-pull", description="Play an RTMP or HTTP-FLV stream into an FLV file.")
    ap.add_argument("url", help="rtmp://host/app/stream or http(s)://host/app/stream.flv")
    ap.add_argument("-o", "--output", help="output FLV file, '-' for stdout (default: STREAM.flv)")
    ap.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: until the end)")
    ap.add_argument("--read-timeout", type=float, default=None, help="fail when no data comes for this many seconds")
    ap.add_argument("--complex-handshake", action="store_true", help="RTMP: use the complex (digest) handshake")
    ap.add_argument("--insecure", action="store_true", help="https: accept any certificate")
    _common_args(ap)
    args = ap.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        parsed = parse_url(args.url)
        kw = {"start_timeout": args.timeout, "read_timeout": args.read_timeout}
        if parsed.scheme in ("http", "https"):
            kw["verify"] = not args.insecure
        else:
            kw["complex_handshake"] = args.complex_handshake
        session = open_pull(args.url, **kw)
    except UrlError as e:
        print(f"srspy-pull: {e}", file=sys.stderr)
        return 2
    output = args.output or f"{parsed.stream}.flv"
    out = FlvFileWriter(sys.stdout.buffer if output == "-" else output)
    stopped = []

    def stop():
        stopped.append(True)
        session.dispose()

    _install_stop(stop)
    progress = Progress("pull", session, sys.stderr.isatty() and not args.quiet and output != "-")
    try:
        try:
            session.start()
        except (SrsError, OSError) as e:
            if stopped:
                return 0
            print(f"srspy-pull: {e}", file=sys.stderr)
            return 1
        if args.duration > 0:
            gevent.spawn_later(args.duration, stop)
        last_flush = time.monotonic()
        for msg in session:
            if not out.header_written:
                flags = getattr(session, "flv_header", None) or (True, True)
                out.write_header(*flags)
            out.write_message(msg)
            progress.tick(msg.timestamp)
            now = time.monotonic()
            if now - last_flush >= FLUSH_INTERVAL:  # whoever reads the file as it grows sees whole tags
                last_flush = now
                out.flush()
        end = session.wait()
    finally:
        out.close()
        progress.done()
    if end is not None and end.reason == ERROR and not stopped:
        print(f"srspy-pull: {end.error}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"srspy-pull: {out.tags} tags written to {output}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("push", "pull"):
        print("usage: python -m srspy.client.tools push|pull ...", file=sys.stderr)
        return 2
    return push_main(argv[1:]) if argv[0] == "push" else pull_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
