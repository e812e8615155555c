"""Port of srs_kernel_error: one exception tree carrying SRS's numeric error codes.

Raise at the source with the code and what went wrong; wrap with ``raise X(...) from e``
to add context, which gives the same chain as SRS's ``srs_error_wrap``. Only a
connection's top level turns an exception into a log line, a response or a close.
"""

from __future__ import annotations

import errno

# Codes as in SRS (srs_kernel_error.hpp); only the ones srspy raises.
ERROR_SOCKET_TIMEOUT = 1011
ERROR_SOCKET_READ = 1007
ERROR_SOCKET_WRITE = 1009
ERROR_SYSTEM_STREAM_BUSY = 1028
ERROR_SYSTEM_CONFIG_INVALID = 1023
ERROR_SYSTEM_CONNECTION_LIMIT = 1074
ERROR_SYSTEM_STREAM_DISPOSING = 1098
ERROR_RTMP_PLAIN_REQUIRED = 2001
ERROR_RTMP_CHUNK_START = 2002
ERROR_RTMP_MSG_INVALID_SIZE = 2003
ERROR_RTMP_AMF0_DECODE = 2004
ERROR_RTMP_REQ_TCURL = 2005
ERROR_RTMP_MESSAGE_DECODE = 2006
ERROR_RTMP_AMF0_INVALID = 2007
ERROR_RTMP_TRY_SIMPLE_HS = 2008
ERROR_RTMP_CHUNK_SIZE = 2010
ERROR_RTMP_REQ_CONNECT = 2011
ERROR_RTMP_HANDSHAKE = 2013
ERROR_RTMP_NO_VHOST = 2014  # SRS: ERROR_RTMP_VHOST_NOT_FOUND
ERROR_RTMP_CLIENT_NOT_FOUND = 2049
ERROR_RTMP_STREAM_NOT_FOUND = 2048
ERROR_RTMP_STREAM_NAME_EMPTY = 2051
ERROR_HTTP_STREAM_EOF = 4040
ERROR_AAC_DECODE_ERROR = 4007  # SRS 7 numbering (4007 is ERROR_HTTP_PARSE_HEADER in older SRS)
ERROR_MP3_DECODE_ERROR = 4009
ERROR_SYSTEM_SECURITY_DENY = 1053
ERROR_SYSTEM_SECURITY = 1052
ERROR_HTTP_HOOK_REJECT = 1040  # srspy: a hook refused the action
ERROR_RTMP_ACCESS_DENIED = 2017
ERROR_HTTP_PATTERN_EMPTY = 4002
ERROR_HTTP_PATTERN_DUPLICATED = 4003
ERROR_HTTP_URL_NOT_CLEAN = 4004
ERROR_HTTP_CONTENT_LENGTH = 4005
ERROR_HTTP_PARSE_HEADER = 4007
ERROR_HTTP_REQUEST_EOF = 4013
ERROR_HLS_DECODE_ERROR = 3001
ERROR_CONTROL_RTMP_CLOSE = 3003
ERROR_CONTROL_REPUBLISH = 3004
ERROR_RTMP_CLIENT_KICKOFF = 3012  # srspy: kicked by API / shutdown (SRS: ERROR_SOCKET_CLOSED on expire)


class SrsError(Exception):
    """Base of every srspy error; ``code`` is SRS's numeric error code."""

    code = 1000

    def __init__(self, message: str = "", code: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        base = super().__str__()
        if self.__cause__ is not None and not isinstance(self.__cause__, SrsError):
            return f"{base}: {self.__cause__!r}"
        if isinstance(self.__cause__, SrsError):
            return f"{base}: {self.__cause__}"
        return base


class ConfigError(SrsError):
    """A config file (or env override) is invalid; the message names file, line and directive."""

    code = ERROR_SYSTEM_CONFIG_INVALID


class ProtocolError(SrsError):
    """The peer sent bytes that break the protocol (RTMP, AMF0, HTTP)."""


class RtmpProtocolError(ProtocolError):
    code = ERROR_RTMP_MESSAGE_DECODE


class HandshakeError(RtmpProtocolError):
    code = ERROR_RTMP_HANDSHAKE


class Amf0Error(RtmpProtocolError):
    code = ERROR_RTMP_AMF0_DECODE


class ChunkSizeError(RtmpProtocolError):
    code = ERROR_RTMP_CHUNK_SIZE


class MessageSizeError(RtmpProtocolError):
    code = ERROR_RTMP_MSG_INVALID_SIZE


class CodecError(SrsError):
    """Media a muxer cannot carry (a non-AAC frame in an .aac stream, ...)."""

    code = ERROR_AAC_DECODE_ERROR


class HlsDecodeError(CodecError):
    """A media message HLS cannot decode (SRS ERROR_HLS_DECODE_ERROR). ``like_sequence_header``:
    it is as large as the stream's latest sequence header of its kind, which
    ``hls_on_error continue`` takes for a sequence header sent as a frame and skips."""

    code = ERROR_HLS_DECODE_ERROR

    def __init__(self, message: str = "", like_sequence_header: bool = False):
        super().__init__(message)
        self.like_sequence_header = like_sequence_header


class StreamBusyError(SrsError):
    code = ERROR_SYSTEM_STREAM_BUSY


class AccessDenied(SrsError):
    """Refused by security, refer or a hook."""

    code = ERROR_SYSTEM_SECURITY_DENY


class ClientClosed(SrsError):
    """The peer closed its connection, or it was kicked: not worth a warning."""

    code = ERROR_SOCKET_READ


class StreamEof(ClientClosed):
    """The stream a player reads from was unpublished (SRS ERROR_HTTP_STREAM_EOF)."""

    code = ERROR_HTTP_STREAM_EOF


class Timeout(SrsError):
    code = ERROR_SOCKET_TIMEOUT


class HttpError(SrsError):
    """Raised by HTTP handlers: the connection answers ``status`` with ``message``."""

    def __init__(self, status: int, message: str = "", code: int | None = None):
        super().__init__(message or str(status), code)
        self.status = status


_GRACEFUL_ERRNOS = {errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNABORTED, errno.ESHUTDOWN}


def is_client_gracefully_close(e: BaseException) -> bool:
    """Port of srs_is_client_gracefully_close: disconnects are logged at info, not as errors."""
    while e is not None:
        if isinstance(e, (ClientClosed, EOFError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return True
        if isinstance(e, OSError) and e.errno in _GRACEFUL_ERRNOS:
            return True
        e = e.__cause__
    return False
