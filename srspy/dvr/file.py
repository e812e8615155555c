"""A DVR file on disk: a thin shell over a recorder (srspy/dvr/recorder.py).

Written as ``<path>.tmp`` and renamed when closed, as SRS; an existing file is never
overwritten: opening fails when the final path exists ("can't append", as SRS), and the
rename is a hard link plus unlink, which fails instead of replacing a file that appeared
meanwhile. Plain blocking calls: the caller runs them off the hub (gevent's threadpool).
"""

from __future__ import annotations

import os

from .plan import DvrError
from .recorder import make_recorder


class DvrFile:
    def __init__(self, path: str, fragmented_mp4: bool = True, buffer_size: int = 64 * 1024):
        if os.path.exists(path):
            raise DvrError(f"dvr: {path} exists, can't append")
        self.path = path
        self.tmp = path + ".tmp"
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self.recorder = make_recorder(path, fragmented_mp4)
        self.file = open(self.tmp, "wb", buffering=buffer_size)
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
