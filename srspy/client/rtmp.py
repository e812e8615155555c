"""RTMP client sessions: push (publish to a server) and pull (play from a server).

Synchronous style on gevent::

    push = RtmpPushSession("rtmp://127.0.0.1/live/s").start()   # blocks until Publish.Start
    for tag in read_flv_file("in.flv"):
        push.write_flv_tag(tag)
    push.dispose()

    pull = RtmpPullSession("rtmp://127.0.0.1/live/s").start()   # blocks until Play.Start
    for msg in pull:                                           # MediaMessage: audio, video, metadata
        ...
    print(pull.wait())                                         # how it ended

Sequence (lal's client session, FFmpeg's command objects): TCP (or TLS for rtmps) ->
C0C1 / S0S1S2 / C2 (simple by default, complex on request, falling back to simple when
the server answers simple) -> Set Chunk Size -> connect -> createStream (push: FMLE's
releaseStream and FCPublish first) -> publish or play -> wait for NetStream.Publish.Start
or NetStream.Play.Start. The protocol layer (RtmpProtocol) answers pings, applies the
peer's chunk size and acknowledges by the window the server asked for.
"""

from __future__ import annotations

import time
from collections import deque

import gevent
from gevent import ssl as gssl
from gevent.lock import Semaphore

from .. import __version__
from ..errors import ClientClosed, SrsError, Timeout
from ..kernel import amf0
from ..kernel.flv import split_aggregate
from ..rtmp.handshake import S0S1S2_SIZE, ClientHandshake
from ..rtmp.message import CID_OVER_STREAM2, UC_SET_BUFFER_LENGTH
from ..kernel.message import AGGREGATE, AMF0_COMMAND, AMF0_DATA, AMF3_COMMAND, AMF3_DATA, AUDIO, VIDEO, MediaMessage
from ..rtmp.protocol import (
    DEFAULT_MAX_MESSAGE, RtmpProtocol, command_msg, decode_command, set_chunk_size_msg, user_control_msg,
)
from ..rtmp.server import read_exactly
from ..session import PULL, PUSH, RTMP
from .session import DEFAULT_START_TIMEOUT, ClientSession, PullSession
from .url import parse_rtmp_url

DEFAULT_CHUNK_SIZE = 4096  # lal: smaller chunk sizes break peers that expect one-chunk commands
DEFAULT_BUFFER_LENGTH_MS = 3000
PUSH_FLASH_VER = f"FMLE/3.0 (compatible; srspy/{__version__})"
PULL_FLASH_VER = "LNX 9,0,124,2"  # what FFmpeg sends; some servers look at it

_ON_METADATA = amf0.encode("onMetaData")
_SET_DATA_FRAME = amf0.encode("@setDataFrame")


class RtmpClientError(SrsError):
    """The server refused or answered badly: ``_error``, an error onStatus, a missing reply."""

    def __init__(self, message: str, info: dict | None = None):
        super().__init__(message)
        self.info = info or {}

    @property
    def status_code(self) -> str:
        return str(self.info.get("code", ""))


class _ClientProtocol(RtmpProtocol):
    """RtmpProtocol with its writes serialised: a pong or an acknowledgement sent by the
    reading greenlet must never land in the middle of a media batch."""

    def __init__(self, sock, max_message_size: int):
        super().__init__(sock, max_message_size)
        self.wlock = Semaphore()

    def send_message(self, msg, cs_id=None):
        with self.wlock:
            super().send_message(msg, cs_id)

    def send_media(self, msgs, base, stream_id=1):
        with self.wlock:
            super().send_media(msgs, base, stream_id)


def ensure_set_data_frame(msg: MediaMessage) -> MediaMessage:
    """``onMetaData`` sent by a publisher goes as ``@setDataFrame onMetaData`` (FFmpeg, lal)."""
    if msg.type == AMF0_DATA and msg.payload.startswith(_ON_METADATA):
        return MediaMessage(AMF0_DATA, msg.timestamp, msg.stream_id, _SET_DATA_FRAME + msg.payload, msg.cs_id)
    return msg


def _info_of(values: list) -> dict:
    for v in values[2:]:
        if isinstance(v, dict):
            return v
    return {}


def _describe(info: dict) -> str:
    code = info.get("code", "")
    desc = info.get("description", "")
    return f"{code} {desc}".strip() or "(no description)"


class RtmpClientSession(ClientSession):
    """What push and pull share: connect, handshake, connect/createStream commands.

    Options (seconds for times):

    * ``start_timeout`` (10): dial through Publish.Start / Play.Start;
    * ``read_timeout`` (None): pull only, longest wait for data once playing;
    * ``write_timeout`` (None): push only, longest blocking write;
    * ``complex_handshake`` (False); ``chunk_size`` (4096) we send with;
    * ``ssl_context``: for rtmps (a ``gevent.ssl`` context; a verifying default otherwise);
    * ``tc_url``: override the tcUrl derived from the URL (``rtmp://host:port/app``);
    * ``connect_args``: extra properties merged into the connect command object.
    """

    protocol = RTMP
    flash_ver = PULL_FLASH_VER

    def __init__(self, url: str, *, start_timeout: float | None = DEFAULT_START_TIMEOUT,
                 read_timeout: float | None = None, write_timeout: float | None = None,
                 complex_handshake: bool = False, chunk_size: int = DEFAULT_CHUNK_SIZE, ssl_context=None,
                 tc_url: str | None = None, connect_args: dict | None = None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE):
        super().__init__(url, parse_rtmp_url(url), start_timeout, read_timeout)
        self.write_timeout = write_timeout
        self.complex_handshake = complex_handshake
        self.handshake_complex = False
        self.chunk_size = chunk_size
        self.ssl_context = ssl_context
        self.tc_url = tc_url or self.parsed.tc_url
        self.connect_args = connect_args or {}
        self.max_message_size = max_message_size
        self.proto: _ClientProtocol | None = None
        self.stream_id = 0
        self.server_info: dict = {}
        self.statuses: list = []  # every onStatus info received, in order
        self._tid = 0.0
        self._early: deque = deque()  # media that came before the start finished

    # -- counters ------------------------------------------------------------------
    @property
    def recv_bytes(self) -> int:
        return self._recv_bytes + (self.proto.recv_bytes if self.proto is not None else 0)

    @property
    def send_bytes(self) -> int:
        return self._send_bytes + (self.proto.send_bytes if self.proto is not None else 0)

    # -- start ---------------------------------------------------------------------
    def _start(self):
        p = self.parsed
        ctx = self.ssl_context
        if p.secure and ctx is None:
            ctx = gssl.create_default_context()
        sock = self._connect(p.host, p.port, ctx if p.secure else None)
        self._handshake(sock)
        self.proto = _ClientProtocol(sock, self.max_message_size)
        self.proto.send_message(set_chunk_size_msg(self.chunk_size))
        self._connect_app()
        self._start_stream()

    def _handshake(self, sock):
        hs = ClientHandshake(complex=self.complex_handshake, now_ms=int(time.monotonic() * 1000) & 0xFFFFFFFF)
        c0c1 = hs.c0c1()
        sock.sendall(c0c1)
        s0s1s2 = read_exactly(sock, S0S1S2_SIZE)
        c2 = hs.process_s0s1s2(s0s1s2)
        sock.sendall(c2)
        self.handshake_complex = hs.is_complex
        self._send_bytes += len(c0c1) + len(c2)
        self._recv_bytes += len(s0s1s2)

    def _next_tid(self) -> float:
        self._tid += 1.0
        return self._tid

    def _connect_app(self):
        obj = self._connect_object()
        obj.update(self.connect_args)
        tid = self._next_tid()
        self.proto.send_command("connect", tid, obj)
        values = self._await_result(tid, "connect")
        info = _info_of(values)
        code = info.get("code", "")
        if code and code != "NetConnection.Connect.Success":
            raise RtmpClientError(f"{self.unique_key}: connect refused: {_describe(info)}", info)
        self.server_info = info

    def _connect_object(self) -> dict:
        return {"app": self.parsed.app, "flashVer": self.flash_ver, "tcUrl": self.tc_url}

    def _create_stream(self) -> int:
        tid = self._next_tid()
        self.proto.send_command("createStream", tid, None)
        values = self._await_result(tid, "createStream")
        sid = values[3] if len(values) > 3 and isinstance(values[3], (int, float)) and not isinstance(values[3], bool) else 1
        self.stream_id = int(sid)
        return self.stream_id

    def _start_stream(self):
        raise NotImplementedError

    # -- reading commands during the start ----------------------------------------------
    def _next_values(self) -> list:
        """The next command's values; media and data met on the way are kept for later."""
        while True:
            msg = self.proto.recv_message()
            t = msg.type
            if t == AMF0_COMMAND or t == AMF3_COMMAND:
                values = decode_command(msg)
                if values and isinstance(values[0], str):
                    return values
            else:
                self._early.append(msg)

    def _await_result(self, tid: float, what: str) -> list:
        """Wait for ``_result``/``_error`` of transaction ``tid``; onStatus errors fail too."""
        while True:
            values = self._next_values()
            name = values[0]
            if name in ("_result", "_error") and len(values) > 1 and values[1] == tid:
                if name == "_error":
                    info = _info_of(values)
                    raise RtmpClientError(f"{self.unique_key}: {what} failed: {_describe(info)}", info)
                return values
            if name == "onStatus":
                self._on_status(values, during_start=True)

    def _await_status(self, code: str, what: str):
        while True:
            values = self._next_values()
            name = values[0]
            if name == "onStatus":
                info = self._on_status(values, during_start=True)
                if info.get("code") == code:
                    return info
            elif name == "_error":
                info = _info_of(values)
                raise RtmpClientError(f"{self.unique_key}: {what} failed: {_describe(info)}", info)

    def _on_status(self, values: list, during_start: bool = False) -> dict:
        info = _info_of(values)
        self.statuses.append(info)
        if str(info.get("level", "")).lower() == "error":
            err = RtmpClientError(f"{self.unique_key}: {self.url}: {_describe(info)}", info)
            if during_start:
                raise err
            self._fail(err)
        self.on_status(info)
        return info

    def on_status(self, info: dict):
        """Hook (or pass ``on_status=`` to pull sessions): every onStatus the server sends."""

    # -- writing helpers -------------------------------------------------------------
    def _check_open(self):
        end = self._end
        if end is not None:
            if end.error is not None:
                raise ClientClosed(f"{self.unique_key}: session ended ({end.reason})") from end.error
            raise ClientClosed(f"{self.unique_key}: session ended ({end.reason})")


class RtmpPushSession(RtmpClientSession):
    """Publish a stream to an RTMP server.

    ``fmle`` (default True) sends releaseStream and FCPublish before createStream, as
    FMLE, OBS and FFmpeg do; False publishes the Flash way. ``write_buffer`` (bytes,
    default 0): when set, ``write`` batches messages until that many payload bytes are
    queued and ``flush`` sends the rest; with 0 each write is sent at once.
    """

    role = PUSH
    flash_ver = PUSH_FLASH_VER

    def __init__(self, url: str, *, fmle: bool = True, publish_type: str = "live", write_buffer: int = 0, **kw):
        super().__init__(url, **kw)
        self.fmle = fmle
        self.publish_type = publish_type
        self.write_buffer = write_buffer
        self._batch: list = []
        self._batch_bytes = 0

    def _connect_object(self) -> dict:
        return {"app": self.parsed.app, "type": "nonprivate", "flashVer": self.flash_ver, "tcUrl": self.tc_url}

    def _start_stream(self):
        p = self.proto
        name = self.parsed.stream_with_query
        if self.fmle:
            p.send_command("releaseStream", self._next_tid(), None, name)
            p.send_command("FCPublish", self._next_tid(), None, name)
        self._create_stream()
        p.send_message(command_msg("publish", self._next_tid(), None, name, self.publish_type,
                                   stream_id=self.stream_id, cs_id=CID_OVER_STREAM2))
        self._await_status("NetStream.Publish.Start", "publish")

    def _after_start(self):
        self.sock.settimeout(self.write_timeout)
        self._early.clear()
        g = gevent.spawn(self._recv_loop)
        self._greenlets.append(g)

    def _recv_loop(self):
        """Read what the server sends while we publish: pings, acks, status, close."""
        proto = self.proto
        try:
            while self._end is None:
                try:
                    msgs = proto.read_some()
                except Timeout:
                    continue  # the socket timeout is the write timeout; reading may idle
                for m in msgs:
                    if m.type == AMF0_COMMAND or m.type == AMF3_COMMAND:
                        values = decode_command(m)
                        if values and values[0] == "onStatus":
                            self._on_status(values)
        except Exception as e:  # noqa: BLE001 - the end of the session
            self._fail(e)

    # -- writing -------------------------------------------------------------------
    def write(self, msg: MediaMessage):
        """Send one audio, video or data message (its timestamp as is)."""
        self._check_open()
        if msg.type == AMF0_DATA:
            msg = ensure_set_data_frame(msg)
        self._batch.append(msg)
        self._batch_bytes += len(msg.payload)
        if self._batch_bytes >= self.write_buffer:
            self.flush()

    def write_flv_tag(self, tag):
        """Send one FLV tag: an ``FlvTag``/``(tag_type, timestamp, payload)`` or the tag's bytes."""
        if isinstance(tag, (bytes, bytearray, memoryview)):
            b = bytes(tag)
            if len(b) < 11:
                raise ValueError(f"flv tag of {len(b)} bytes is shorter than its header")
            size = int.from_bytes(b[1:4], "big")
            ts = int.from_bytes(b[4:7], "big") | (b[7] << 24)
            tt, payload = b[0] & 0x1F, b[11:11 + size]
        else:
            tt, ts, payload = tag[0], tag[1], tag[2]
        mtype = AUDIO if tt == 8 else VIDEO if tt == 9 else AMF0_DATA
        self.write(MediaMessage(mtype, ts, self.stream_id, bytes(payload)))

    def write_batch(self, msgs: list, base: int = 0):
        """Send shared messages as they are, A/V timestamps minus ``base`` (the relay path)."""
        self._check_open()
        if self._batch:
            self.flush()
        for i, m in enumerate(msgs):
            if m.type == AMF0_DATA and m.payload.startswith(_ON_METADATA):
                msgs = list(msgs)
                msgs[i] = ensure_set_data_frame(m)
        self._send(msgs, base)

    def flush(self):
        """Send what ``write`` has queued."""
        if not self._batch:
            return
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._check_open()
        self._send(batch, 0)

    def _send(self, msgs: list, base: int):
        try:
            self.proto.send_media(msgs, base, self.stream_id)
        except Exception as e:
            err = e
            if isinstance(e, TimeoutError):
                err = Timeout(f"{self.unique_key}: write timeout after {self.write_timeout}s")
                err.__cause__ = e
            self._fail(err)
            self._check_open()  # raises ClientClosed with how the session ended
            raise


class RtmpPullSession(PullSession, RtmpClientSession):
    """Play a stream from an RTMP server.

    Messages (audio, video and metadata as ``MediaMessage``; aggregates split, the
    server's ``|RtmpSampleAccess`` and data-channel onStatus left out) go to
    ``on_message(msg)`` from a greenlet of the session when given, else to whoever
    iterates the session (``for msg in session`` or ``session.read()``).
    ``on_status(info)`` sees the server's onStatus objects (e.g. UnpublishNotify).
    """

    role = PULL

    def __init__(self, url: str, on_message=None, *, on_status=None, buffer_length_ms: int = DEFAULT_BUFFER_LENGTH_MS,
                 **kw):
        RtmpClientSession.__init__(self, url, **kw)
        self.on_message = on_message
        self._status_cb = on_status
        self.buffer_length_ms = buffer_length_ms
        self._queue: deque = deque()

    def _connect_object(self) -> dict:
        return {"app": self.parsed.app, "flashVer": self.flash_ver, "tcUrl": self.tc_url, "fpad": False,
                "capabilities": 15.0, "audioCodecs": 4071.0, "videoCodecs": 252.0, "videoFunction": 1.0}

    def _start_stream(self):
        p = self.proto
        self._create_stream()
        p.send_message(command_msg("play", 0.0, None, self.parsed.stream_with_query, -1000.0,
                                   stream_id=self.stream_id, cs_id=CID_OVER_STREAM2))
        p.send_message(user_control_msg(UC_SET_BUFFER_LENGTH, self.stream_id, self.buffer_length_ms))
        self._await_status("NetStream.Play.Start", "play")

    def on_status(self, info: dict):
        if self._status_cb is not None:
            self._status_cb(info)

    def _after_start(self):
        self.sock.settimeout(self.read_timeout)
        early, self._early = self._early, deque()
        pending = self.proto.pending  # read with the Play.Start status, not yet handed out
        early.extend(pending)
        pending.clear()
        for m in early:
            self._on_message(m)
        self._start_delivery()

    def _pump(self):
        for m in self.proto.read_some():
            self._on_message(m)

    def _on_message(self, m: MediaMessage):
        t = m.type
        if t == AUDIO or t == VIDEO:
            self._queue.append(m)
        elif t == AMF0_DATA or t == AMF3_DATA:
            if t == AMF3_DATA:
                m = MediaMessage(AMF0_DATA, m.timestamp, m.stream_id, m.payload[1:] if m.payload[:1] == b"\x00" else m.payload)
            p = m.payload
            if p.startswith(_SET_DATA_FRAME):
                m = MediaMessage(AMF0_DATA, m.timestamp, m.stream_id, p[len(_SET_DATA_FRAME):])
                p = m.payload
            try:
                name, _ = amf0.decode(p)
            except Exception:  # noqa: BLE001 - undecodable data: hand it over as is
                name = None
            if name == "|RtmpSampleAccess":
                return
            if name == "onStatus":
                try:
                    self._on_status(amf0.decode_all(p))
                except Exception:  # noqa: BLE001
                    pass
                return
            self._queue.append(m)
        elif t == AGGREGATE:
            for sub in split_aggregate(m):
                self._on_message(sub)
        elif t == AMF0_COMMAND or t == AMF3_COMMAND:
            values = decode_command(m)
            if values and values[0] == "onStatus":
                self._on_status(values)


__all__ = ["RtmpPushSession", "RtmpPullSession", "RtmpClientSession", "RtmpClientError", "ensure_set_data_frame",
           "DEFAULT_CHUNK_SIZE"]
