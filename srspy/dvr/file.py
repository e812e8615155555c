"""A DVR file on disk: a thin shell over a recorder (srspy/dvr/recorder.py).

Written as ``<path>.tmp`` and renamed when closed, as SRS; an existing file is never
overwritten. A publish's first file fails to open when its path exists ("can't append",
as SRS) or its ``.tmp`` does (a crashed recording's); a later file of the same publish (a
segment, or the file after a sequence header change) whose name is taken gets a number
instead, ``s.mp4`` -> ``s-1.mp4``, ``s-2.mp4``..., so a template that names two files
alike loses nothing. The ``.tmp`` is created exclusively and the rename is a hard link
plus unlink: both fail instead of replacing a file that appeared meanwhile. Plain
blocking calls: the caller runs them off the hub (gevent's threadpool).
"""

from __future__ import annotations

import os

from .plan import DvrError
from .recorder import make_recorder

MAX_NUMBER = 999


def _taken(path: str) -> bool:
    return os.path.lexists(path) or os.path.lexists(path + ".tmp")


def free_path(path: str) -> str:
    """``path`` if neither it nor its ``.tmp`` exists, else the first free ``<stem>-N<ext>``."""
    if not _taken(path):
        return path
    stem, ext = os.path.splitext(path)
    for n in range(1, MAX_NUMBER + 1):
        numbered = f"{stem}-{n}{ext}"
        if not _taken(numbered):
            return numbered
    raise DvrError(f"dvr: {path} and its {MAX_NUMBER} numbered names exist")


class DvrFile:
    """``number``: a taken path gets a number (:func:`free_path`) instead of failing."""

    def __init__(self, path: str, fragmented_mp4: bool = True, buffer_size: int = 64 * 1024, number: bool = False):
        if number:
            path = free_path(path)
        elif _taken(path):
            raise DvrError(f"dvr: {path} exists, can't append")
        self.path = path
        self.tmp = path + ".tmp"
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self.recorder = make_recorder(path, fragmented_mp4)
        try:
            self.file = open(self.tmp, "xb", buffering=buffer_size)
        except FileExistsError as e:
            raise DvrError(f"dvr: {self.tmp} appeared, can't append") from e
        self.file.write(self.recorder.header())
        self.closed = False

    def write(self, msg, timestamp: int) -> None:
        data = self.recorder.write(msg, timestamp)
        if data:
            self.file.write(data)

    def close(self) -> str:
        """Finish the file (tail, in-place patches), rename it; returns the final path."""
        if self.closed:
            return self.path
        self.closed = True
        try:
            tail, patches = self.recorder.finish()
            self.file.write(tail)
            for offset, data in patches:
                self.file.seek(offset)
                self.file.write(data)
        finally:
            self.file.close()
        try:
            os.link(self.tmp, self.path)
        except FileExistsError as e:
            raise DvrError(f"dvr: {self.path} appeared while recording; kept {self.tmp}") from e
        os.unlink(self.tmp)
        return self.path

    def abort(self) -> None:
        """Stop without a rename (the .tmp stays, as after a crash)."""
        if not self.closed:
            self.closed = True
            try:
                self.file.close()
            except OSError:
                pass  # the write that failed fails again flushing: the recording stops either way
