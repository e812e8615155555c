"""RTMP's own constants: protocol control message types, chunk stream ids, user control
events. The message itself (and the media type ids) live in srspy/kernel/message.py."""

from __future__ import annotations

# Protocol control message type ids (RTMP spec 5.4).
SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6

# Preferred chunk stream ids for what we send (as SRS: RTMP_CID_*).
CID_PROTOCOL_CONTROL = 2
CID_OVER_CONNECTION = 3
CID_OVER_CONNECTION2 = 4
CID_OVER_STREAM = 5
CID_VIDEO = 6
CID_AUDIO = 7
CID_OVER_STREAM2 = 8

# User control event types.
UC_STREAM_BEGIN = 0
UC_STREAM_EOF = 1
UC_STREAM_DRY = 2
UC_SET_BUFFER_LENGTH = 3
UC_STREAM_IS_RECORDED = 4
UC_PING_REQUEST = 6
UC_PING_RESPONSE = 7
