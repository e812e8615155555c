"""Port of SrsRtmpServer: the server side of an RTMP session, at the command level.

handshake, connect_app, response_connect_app, identify_client (who is this: a player, an
FMLE/Flash/Haivision publisher), and the onStatus sequences of start_play and the
publish flavours, over an RtmpProtocol. No stream logic here: that is RtmpConn's.
"""

from __future__ import annotations

import os
import socket
import time

from .. import SERVER, SIGNATURE, __version__
from ..errors import ERROR_RTMP_REQ_CONNECT, ERROR_RTMP_REQ_TCURL, ClientClosed, RtmpProtocolError, Timeout
from ..request import Request, discover_tc_url
from ..kernel import amf0
from .handshake import ServerHandshake
from .message import CID_OVER_CONNECTION, CID_OVER_STREAM, UC_STREAM_BEGIN, UC_STREAM_EOF
from ..kernel.message import AMF0_COMMAND, AMF0_DATA, AMF3_COMMAND, MediaMessage
from .protocol import (
    RtmpProtocol, command_msg, decode_command, set_chunk_size_msg, set_peer_bandwidth_msg, user_control_msg,
    window_ack_size_msg,
)

C0C1_SIZE = 1537
C2_SIZE = 1536
FMS_VERSION = "3,5,3,888"
STATUS_CLIENT_ID = "ASAICiss"

# client types, as the API reports them
RTMP_PLAY = "rtmp-play"
FMLE_PUBLISH = "fmle-publish"
FLASH_PUBLISH = "flash-publish"
HAIVISION_PUBLISH = "haivision-publish"
PUBLISH_TYPES = (FMLE_PUBLISH, FLASH_PUBLISH, HAIVISION_PUBLISH)

IDENTIFY_DEPTH = 3


class Identified:
    """What identify_client found: the client type, the stream name and play arguments."""

    def __init__(self, type_: str, stream: str, duration: float = -1.0, start: float = -2.0):
        self.type = type_
        self.stream = stream
        self.duration = duration
        self.start = start


def read_exactly(sock, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout as e:
            raise Timeout("rtmp: handshake timeout") from e
        if not chunk:
            raise ClientClosed(f"rtmp: peer closed during handshake after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def quickack(sock):
    """Acknowledge at once: clients write C2 and connect back to back, and with Nagle on
    their side the connect waits for C2's ACK, which a delayed ACK holds for 40 ms."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    except (OSError, AttributeError):
        pass


def transaction_id(values: list) -> float:
    """A command's transaction id (0 when it has none)."""
    return values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0


def status_info(code: str, description: str, level: str = "status", **extra) -> dict:
    info = {"level": level, "code": code, "description": description}
    info.update(extra)
    return info


# Replies that are the same bytes for every client (the play onStatus sequence, the
# control messages before connect's _result, ...), encoded once per key and out chunk
# size. Bounded: cleared when full.
_REPLIES: dict = {}
_REPLIES_MAX = 256
# connect's _result up to its last value (srs_id, the connection's id), per transaction
# id, objectEncoding and server address
_RESULT_HEADS: dict = {}
_RESULT_TAIL = b"\x00\x00\x09\x00\x00\x09"  # ends the data array, then the info object


def _encoded(proto: RtmpProtocol, key: tuple, build) -> bytes:
    """The chunks of the messages ``build()`` makes, encoded at the protocol's out chunk
    size; kept under ``key`` for the next connection."""
    enc = proto.encoder
    key = key + (enc.chunk_size,)
    data = _REPLIES.get(key)
    if data is None:
        data = b"".join([enc.encode(m, m.cs_id or CID_OVER_CONNECTION) for m in build()])
        if len(_REPLIES) >= _REPLIES_MAX:
            _REPLIES.clear()
        _REPLIES[key] = data
    return data


class RtmpServer:
    """One client's RTMP session, server side."""

    def __init__(self, sock, max_message_size: int = 16 * 1024 * 1024, **limits):
        """``limits``: ``max_chunk_streams`` and ``max_pending_bytes`` of the ChunkDecoder."""
        self.sock = sock
        self.proto = RtmpProtocol(sock, max_message_size, **limits)
        self.handshake_complex = False
        self.stream_id = 1

    # -- handshake -----------------------------------------------------------------
    def handshake(self):
        c0c1 = read_exactly(self.sock, C0C1_SIZE)
        hs = ServerHandshake(random_bytes=os.urandom, now_ms=int(time.time() * 1000) & 0xFFFFFFFF)
        s0s1s2 = hs.process_c0c1(c0c1)
        self.handshake_complex = hs.is_complex
        self.sock.sendall(s0s1s2)
        quickack(self.sock)
        read_exactly(self.sock, C2_SIZE)
        quickack(self.sock)
        self.proto.recv_bytes += C0C1_SIZE + C2_SIZE
        self.proto.send_bytes += len(s0s1s2)

    # -- connect -------------------------------------------------------------------
    def expect_command(self, names: tuple) -> tuple:
        """Read messages until a command named in ``names``; return (name, values, msg)."""
        while True:
            msg = self.proto.recv_message()
            if msg.type not in (AMF0_COMMAND, AMF3_COMMAND):
                continue
            values = decode_command(msg)
            if values and values[0] in names:
                return values[0], values, msg

    def connect_app(self, req: Request) -> Request:
        """Wait for ``connect`` and fill the request from its command object (SRS connect_app)."""
        while True:
            msg = self.proto.recv_message()
            if msg.type not in (AMF0_COMMAND, AMF3_COMMAND):
                continue
            values = decode_command(msg)
            if not values:
                continue
            if values[0] != "connect":
                raise RtmpProtocolError(f"rtmp: expect connect, got {values[0]!r}", ERROR_RTMP_REQ_CONNECT)
            break
        obj = values[2] if len(values) > 2 and isinstance(values[2], dict) else None
        if obj is None:
            raise RtmpProtocolError("rtmp: connect has no command object", ERROR_RTMP_REQ_CONNECT)
        tc_url = obj.get("tcUrl")
        if not isinstance(tc_url, str) or not tc_url:
            raise RtmpProtocolError("rtmp: connect has no tcUrl", ERROR_RTMP_REQ_TCURL)
        req.tc_url = tc_url
        req.page_url = obj.get("pageUrl") if isinstance(obj.get("pageUrl"), str) else ""
        req.swf_url = obj.get("swfUrl") if isinstance(obj.get("swfUrl"), str) else ""
        enc = obj.get("objectEncoding")
        req.object_encoding = float(enc) if isinstance(enc, (int, float)) and not isinstance(enc, bool) else 0.0
        if len(values) > 3 and isinstance(values[3], dict):
            req.args = values[3]
        self.connect_tid = values[1] if len(values) > 1 and isinstance(values[1], float) else 1.0
        discover_tc_url(tc_url, "", req)
        return req

    def response_connect_app(self, req: Request, *, out_ack_size: int, in_ack_size: int, chunk_size: int,
                             server_ip: str = "", server_id: str = "", cid: str = ""):
        """SRS's reply to connect: window ack size, peer bandwidth, chunk size, _result, onBWDone."""
        p = self.proto
        with p.batch():
            self._response_connect_app(req, out_ack_size, in_ack_size, chunk_size, server_ip, cid)

    def _response_connect_app(self, req: Request, out_ack_size: int, in_ack_size: int, chunk_size: int,
                              server_ip: str, cid: str):
        p = self.proto
        if in_ack_size:
            p.in_ack_window = in_ack_size
        p.send_encoded(_encoded(p, ("connect", out_ack_size, chunk_size), lambda: (
            window_ack_size_msg(out_ack_size), set_peer_bandwidth_msg(out_ack_size, 2), set_chunk_size_msg(chunk_size))))
        p.chunk_size_sent(chunk_size)
        p.send_message(MediaMessage(AMF0_COMMAND, 0, 0, self._connect_result(req, server_ip, cid), CID_OVER_CONNECTION))
        p.send_encoded(_encoded(p, ("onBWDone",), lambda: (command_msg("onBWDone", 0.0, None),)))

    def _connect_result(self, req: Request, server_ip: str, cid: str) -> bytes:
        """The AMF0 of connect's ``_result``; all but the connection id is kept for the next one."""
        key = (self.connect_tid, req.object_encoding, server_ip)
        head = _RESULT_HEADS.get(key)
        if head is None:
            data = amf0.EcmaArray()
            data["version"] = FMS_VERSION
            data["srs_sig"] = SIGNATURE
            data["srs_server"] = SERVER
            data["srs_license"] = "MIT"
            data["srs_url"] = "https://github.com/srspy/srspy"
            data["srs_version"] = __version__
            data["srs_server_ip"] = server_ip
            data["srs_pid"] = float(os.getpid())
            data["srs_id"] = ""  # last: the part that differs per connection
            props = {"fmsVer": f"FMS/{FMS_VERSION}", "capabilities": 127.0, "mode": 1.0}
            info = status_info("NetConnection.Connect.Success", "Connection succeeded",
                               objectEncoding=req.object_encoding, data=data)
            full = amf0.encode_all("_result", float(self.connect_tid), props, info)
            head = full[: -len(amf0.encode("") + _RESULT_TAIL)]
            if len(_RESULT_HEADS) >= _REPLIES_MAX:
                _RESULT_HEADS.clear()
            _RESULT_HEADS[key] = head
        return head + amf0.encode_unique_string(cid) + _RESULT_TAIL  # ids would fill the cache

    def response_connect_reject(self, description: str):
        info = status_info("NetConnection.Connect.Rejected", description, level="error")
        try:
            self.proto.send_command("_error", getattr(self, "connect_tid", 1.0), None, info)
        except OSError:
            pass

    # -- identify ------------------------------------------------------------------
    def next_command(self) -> tuple[str, float, list]:
        """The next AMF0/AMF3 command: its name, transaction id and all its values."""
        while True:
            msg = self.proto.recv_message()
            if msg.type not in (AMF0_COMMAND, AMF3_COMMAND):
                continue
            values = decode_command(msg)
            if values and isinstance(values[0], str):
                return values[0], transaction_id(values), values

    def identify_client(self) -> Identified:
        """Port of SrsRtmpServer::identify_client."""
        while True:
            name, tid, values = self.next_command()
            if name == "createStream":
                self.proto.send_command("_result", tid, None, float(self.stream_id))
                return self._identify_create_stream_client(IDENTIFY_DEPTH)
            if name in ("releaseStream", "FCPublish", "FCUnpublish"):
                stream = values[3] if len(values) > 3 and isinstance(values[3], str) else ""
                self.proto.send_command("_result", tid, None, amf0.UNDEFINED)
                return Identified(FMLE_PUBLISH, stream)
            if name == "play":
                return self._identify_play(values)
            if name == "call" or tid > 0:
                # unknown calls (e.g. _checkbw) get a null result, as SRS does
                if tid > 0:
                    self.proto.send_command("_result", tid, None, None)

    def _identify_create_stream_client(self, depth: int) -> Identified:
        while True:
            name, tid, values = self.next_command()
            if name == "play":
                return self._identify_play(values)
            if name == "publish":
                stream = values[3] if len(values) > 3 and isinstance(values[3], str) else ""
                return Identified(FLASH_PUBLISH, stream)
            if name == "createStream":
                self.proto.send_command("_result", tid, None, float(self.stream_id))
                if depth > 0:
                    return self._identify_create_stream_client(depth - 1)
                raise RtmpProtocolError("rtmp: createStream nested too deep")
            if name == "FCPublish":
                stream = values[3] if len(values) > 3 and isinstance(values[3], str) else ""
                self.proto.send_command("_result", tid, None, amf0.UNDEFINED)
                return Identified(HAIVISION_PUBLISH, stream)
            if tid > 0:
                self.proto.send_command("_result", tid, None, None)

    @staticmethod
    def _identify_play(values: list) -> Identified:
        stream = values[3] if len(values) > 3 and isinstance(values[3], str) else ""
        start = values[4] if len(values) > 4 and isinstance(values[4], float) else -2.0
        duration = values[5] if len(values) > 5 and isinstance(values[5], float) else -1.0
        return Identified(RTMP_PLAY, stream, duration, start)

    # -- play / publish status -------------------------------------------------------
    def on_status(self, code: str, description: str, level: str = "status", **extra):
        self.proto.send_message(self._status_msg(code, description, level, **extra))

    def _status_msg(self, code: str, description: str, level: str = "status", **extra) -> MediaMessage:
        info = status_info(code, description, level, clientid=STATUS_CLIENT_ID, **extra)
        return command_msg("onStatus", 0.0, None, info, stream_id=self.stream_id, cs_id=CID_OVER_STREAM)

    def start_play(self):
        """StreamBegin, NetStream.Play.Reset, NetStream.Play.Start, |RtmpSampleAccess (SRS 3.8)."""
        self.proto.send_encoded(_encoded(self.proto, ("play", self.stream_id), self._play_replies))

    def _play_replies(self) -> tuple:
        sid = self.stream_id
        return (
            user_control_msg(UC_STREAM_BEGIN, sid),
            self._status_msg("NetStream.Play.Reset", "Playing and resetting stream.", details="stream"),
            self._status_msg("NetStream.Play.Start", "Started playing stream.", details="stream"),
            MediaMessage(AMF0_DATA, 0, sid, amf0.encode_all("|RtmpSampleAccess", True, True), CID_OVER_STREAM),
        )

    def on_play_pause(self, paused: bool):
        if paused:
            self.on_status("NetStream.Pause.Notify", "Paused stream.")
            self.proto.send_message(user_control_msg(UC_STREAM_EOF, self.stream_id))
        else:
            self.on_status("NetStream.Unpause.Notify", "Unpaused stream.")
            self.proto.send_message(user_control_msg(UC_STREAM_BEGIN, self.stream_id))

    def start_fmle_publish(self):
        """FMLE: FCPublish -> _result, createStream -> _result(1), publish -> onFCPublish."""
        while True:
            name, values, _ = self.expect_command(("FCPublish", "createStream", "publish", "releaseStream"))
            tid = transaction_id(values)
            if name in ("FCPublish", "releaseStream"):
                self.proto.send_command("_result", tid, None, amf0.UNDEFINED)
            elif name == "createStream":
                self.proto.send_command("_result", tid, None, float(self.stream_id))
            else:
                self.publish_values = values
                break
        self._on_fc_publish()

    def start_haivision_publish(self):
        name, values, _ = self.expect_command(("publish",))
        self.publish_values = values
        self._on_fc_publish()

    def _on_fc_publish(self):
        info = status_info("NetStream.Publish.Start", "Started publishing stream.")
        self.proto.send_message(command_msg("onFCPublish", 0.0, None, info, stream_id=self.stream_id, cs_id=CID_OVER_STREAM))

    def publish_started(self):
        """The final NetStream.Publish.Start, sent only once hooks passed and the stream is ours."""
        self.on_status("NetStream.Publish.Start", "Started publishing stream.")

    def fmle_unpublish(self, tid: float):
        """FCUnpublish while publishing: onFCUnpublish, _result, onStatus Unpublish.Success."""
        info = status_info("NetStream.Unpublish.Success", "Stop publishing stream.")
        self.proto.send_message(command_msg("onFCUnpublish", 0.0, None, info, stream_id=self.stream_id, cs_id=CID_OVER_STREAM))
        self.proto.send_command("_result", tid, None, amf0.UNDEFINED, cs_id=CID_OVER_CONNECTION)
        self.on_status("NetStream.Unpublish.Success", "Stream is now unpublished")
