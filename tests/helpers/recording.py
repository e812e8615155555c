"""A test double of the HTTP ResponseWriter that records status, headers and body."""

from __future__ import annotations

from srspy.http.message import HttpHeaders


class RecordingWriter:
    """Records what a handler writes; no socket."""

    def __init__(self):
        self.headers = HttpHeaders()
        self.status = None
        self.body = bytearray()
        self.header_sent = False
        self.finished = False

    def header(self):
        return self.headers

    def write_header(self, status):
        if self.status is None:
            self.status = status

    def write(self, data=b""):
        self.status = self.status or 200
        self.header_sent = True
        self.body += data

    def writev(self, bufs):
        self.write(b"".join(bufs))

    def final_request(self):
        self.status = self.status or 200
        self.header_sent = self.finished = True
