"""kernel/codec.py's ingest flags for enhanced RTMP tags: track 0 decides, ModEx is looked
through, and a FourCC nobody knows passes as plain video or audio."""

from srspy.kernel.codec import F_AUDIO, F_KEYFRAME, F_SEQUENCE_HEADER, F_VIDEO, audio_flags, video_flags

HVC1_SH = b"\x90hvc1" + bytes(23)
HVC1_KEY = b"\x91hvc1" + bytes(3) + b"\x00\x00\x00\x02\x26\x01"


def test_known_fourcc_sets_keyframe_and_sequence_header():
    assert video_flags(HVC1_SH) == F_VIDEO | F_SEQUENCE_HEADER | F_KEYFRAME
    assert video_flags(HVC1_KEY) == F_VIDEO | F_KEYFRAME
    assert audio_flags(b"\x90Opus" + b"OpusHead" + bytes(11)) == F_AUDIO | F_SEQUENCE_HEADER


def test_unknown_fourcc_is_plain_media():
    assert video_flags(b"\x90zzzz" + bytes(16)) == F_VIDEO
    assert video_flags(b"\x91zzzz" + bytes(16)) == F_VIDEO
    assert audio_flags(b"\x90zzzz" + bytes(16)) == F_AUDIO


def test_modex_is_looked_through():
    wrapped = bytes([0x97, 2, 0, 0x03, 0xE8, 0x01]) + HVC1_KEY[1:]  # TimestampOffsetNano around CodedFrames
    assert video_flags(wrapped) == F_VIDEO | F_KEYFRAME


def test_track_zero_decides():
    body = HVC1_KEY[5:]
    both = b"\x96\x11hvc1" + b"\x01" + len(body).to_bytes(3, "big") + body + b"\x00" + len(body).to_bytes(3, "big") + body
    assert video_flags(both) == F_VIDEO | F_KEYFRAME
    track1 = b"\x96\x01hvc1\x01" + body  # OneTrack, track 1 only
    assert video_flags(track1) == F_VIDEO
    sh1 = b"\x96\x00hvc1\x01" + bytes(23)
    assert video_flags(sh1) == F_VIDEO
