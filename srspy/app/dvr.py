"""DVR, a per-source output (SrsDvr / SrsDvrSessionPlan / SrsDvrSegmentPlan).

``vhost x { dvr { enabled on; dvr_apply all; dvr_plan session; dvr_path ...; } }``: every
stream published there that ``dvr_apply`` names (``all`` or ``app/stream`` items) is
recorded. srspy/dvr/plan.py decides when files open and close (``session``: one per
publish; ``segment``: a new file every ``dvr_duration`` seconds, at a keyframe with
``dvr_wait_keyframe on``; and, for MP4, at a sequence header that changes) and the file
timestamps (``time_jitter``); srspy/dvr/file.py writes ``<path>.tmp`` through a recorder
(FLV with its duration patched at close, or MP4: fragmented by default, see
``dvr_mp4_fragmented``) and renames it when the file is complete, never over an existing
file (a later file of the publish whose name is taken gets a number). All file work runs in gevent's threadpool, one
call per batch of messages. After the rename the ``on_dvr`` hook is posted.

A failure (a full disk, an unwritable ``dvr_path``, a file that exists) stops the
recording with one error line, the ``.tmp`` left as it is; the publish goes on. A crash
leaves the ``.tmp`` too: a fragmented MP4 or an FLV plays up to where it ends.
"""

from __future__ import annotations

import os
import time
from functools import partial

from loguru import logger

from ..dvr.file import DvrFile
from ..dvr.plan import Close, DvrPlan, Open, Write, applies, dvr_path, is_mp4
from ..pathvars import UnsafeNameError, check_name
from .file_output import FileOutput, run_blocking


def _write_all(f: DvrFile, items: list) -> None:
    for msg, ts in items:
        f.write(msg, ts)


def _close_file(f: DvrFile) -> str | None:
    """Finish and rename ``f``; a file that got no bytes (a segment opened by the stream's
    very last keyframe, whose MP4 fragment never formed) is deleted instead: None."""
    final = f.close()
    if os.path.getsize(final) == 0:
        os.unlink(final)
        return None
    return final


class DvrOutput(FileOutput):
    """Records one publish of a stream."""

    kind = "dvr"

    def __init__(self, server, source, conf: dict):
        super().__init__(server, source)
        self.conf = conf
        self.plan = DvrPlan(conf["dvr_plan"], conf["dvr_duration"], conf["dvr_wait_keyframe"], conf["time_jitter"],
                            split_on_change=is_mp4(conf["dvr_path"]))
        self.file: DvrFile | None = None
        self.pending: list = []
        self.files: list[str] = []  # the files completed, in order

    def __repr__(self) -> str:
        return f"DvrOutput({self.source.url})"

    def start(self, source=None) -> None:
        logger.info("dvr: {} recording, plan {}, path {}", self.source.url, self.conf["dvr_plan"], self.conf["dvr_path"])
        super().start(source)

    def _feed(self, msgs: list) -> None:
        for m in msgs:
            for ev in self.plan.feed(m):
                if isinstance(ev, Write):
                    self.pending.append((ev.msg, ev.timestamp))
                elif isinstance(ev, Open):
                    self._open(ev.reopen)
                elif isinstance(ev, Close):
                    self._close()
        self._flush()

    def _flush(self) -> None:
        if self.pending and self.file is not None:
            items, self.pending = self.pending, []
            run_blocking(_write_all, self.file, items)

    def _open(self, reopen: bool) -> None:
        self._flush()
        req = self.req
        path = dvr_path(self.conf["dvr_path"], req.vhost, req.app, req.stream, time.time(), self.utc)
        # The publish's first file refuses a taken name (as SRS); a later one takes a number.
        self.file = run_blocking(partial(DvrFile, path, self.conf["dvr_mp4_fragmented"], number=reopen))
        logger.info("dvr: {} opened {}", self.source.url, self.file.tmp)

    def _close(self) -> None:
        self._flush()
        f, self.file = self.file, None
        if f is None:
            return
        final = run_blocking(_close_file, f)
        if final is None:
            logger.info("dvr: {} dropped {}: empty", self.source.url, f.path)
            return
        self.files.append(final)
        logger.info("dvr: {} closed {}", self.source.url, final)
        hooks = getattr(self.server, "hooks", None)
        if hooks is not None:
            hooks.on_dvr(self.req, self.cid, final)

    def _end(self) -> None:
        for ev in self.plan.close():
            if isinstance(ev, Close):
                self._close()

    def _abort(self) -> None:
        self.pending = []
        f, self.file = self.file, None
        if f is not None:
            run_blocking(f.abort)


class DvrOutputs:
    """The factory of a server's recordings: ``DvrOutputs(server)(source) -> [DvrOutput]``."""

    def __init__(self, server):
        self.server = server
        self.outputs: dict[str, DvrOutput] = {}  # the last recording of each stream URL

    def __call__(self, source) -> list:
        found = self.server.config.resolve_vhost(source.req.vhost)
        if not found or not found[1]["dvr"]["enabled"]:
            return []
        conf = found[1]["dvr"]
        req = source.req
        if not applies(conf["dvr_apply"], req.app, req.stream):
            return []
        try:
            check_name("app", req.app)
            check_name("stream", req.stream)
        except UnsafeNameError as e:
            logger.error("dvr: {} not recorded: {}", source.url, e)
            return []
        out = DvrOutput(self.server, source, conf)
        self.outputs[source.url] = out
        return [out]


__all__ = ["DvrOutput", "DvrOutputs"]
