"""The session model: unique keys, the stat record, liveness; FLV files of the tools."""

from srspy.client.flvfile import FlvFileWriter, FlvTag, read_flv_file
from srspy.session import FLV, PULL, PUSH, RTMP, SUB, Session, StatTracker, unique_key


class _Counting(Session):
    protocol = RTMP
    role = PUSH

    def __init__(self):
        super().__init__("rtmp://h/live/s", "live", "s", "", now=100.0)
        self.r = 0
        self.w = 0

    @property
    def recv_bytes(self):
        return self.r

    @property
    def send_bytes(self):
        return self.w


def test_unique_keys_count_per_prefix():
    a = unique_key("RTMP", "PUSH")
    b = unique_key("RTMP", "PUSH")
    c = unique_key("FLV", "PULL")
    assert a.startswith("RTMPPUSH") and b.startswith("RTMPPUSH") and c.startswith("FLVPULL")
    assert int(b[len("RTMPPUSH"):]) == int(a[len("RTMPPUSH"):]) + 1


def test_session_keys_and_types():
    s = _Counting()
    assert s.unique_key.startswith("RTMPPUSH") and s.session_type == "RTMPPUSH"

    class Sub(Session):
        protocol = FLV
        role = SUB

    assert Sub().unique_key.startswith("FLVSUB")


def test_bitrates_from_byte_deltas():
    s = _Counting()
    s.update_stat(5)
    s.r, s.w = 10_000, 625_000  # 5 s: 16 kbit/s read, 1000 kbit/s written
    s.update_stat(5)
    st = s.get_stat()
    assert (st.read_bytes, st.wrote_bytes) == (10_000, 625_000)
    assert (st.read_bitrate_kbits, st.write_bitrate_kbits) == (16, 1000)
    assert st.bitrate_kbits == 1000  # a push is measured by what it writes
    assert st.start_time == 100.0 and st.session_id == s.unique_key
    assert st.as_dict()["session_type"] == "RTMPPUSH"
    s.update_stat(5)  # nothing moved
    assert s.get_stat().write_bitrate_kbits == 0


def test_pull_bitrate_is_the_read_rate():
    class P(_Counting):
        role = PULL

    s = P()
    s.r = 50_000
    s.update_stat(1)
    assert s.get_stat().bitrate_kbits == 400


def test_is_alive_compares_with_the_previous_check():
    s = _Counting()
    assert s.is_alive() == (False, False)
    s.r = 1
    assert s.is_alive() == (True, False)
    s.w = 1
    assert s.is_alive() == (False, True)
    assert s.is_alive() == (False, False)


def test_stat_tracker_ignores_zero_interval():
    t = StatTracker()
    t.update(100, 100, 0)
    assert (t.read_kbits, t.write_kbits) == (0, 0)


def test_flv_file_round_trip(tmp_path):
    path = tmp_path / "x.flv"
    w = FlvFileWriter(path, has_audio=True, has_video=False)
    w.write_tag(18, 0, b"\x02\x00\x0aonMetaData\x05")
    w.write_tag(8, 0, b"\xaf\x00\x12\x10")
    w.write_tag(8, 0x1234567, b"\xaf\x01abc")  # needs the extended timestamp byte
    w.close()
    data = path.read_bytes()
    assert data[:5] == b"FLV\x01\x04"
    header = []
    tags = list(read_flv_file(path, header))
    assert header == [(True, False)]
    assert tags == [FlvTag(18, 0, b"\x02\x00\x0aonMetaData\x05"), FlvTag(8, 0, b"\xaf\x00\x12\x10"),
                    FlvTag(8, 0x1234567, b"\xaf\x01abc")]
    # a truncated last tag is left out
    path.write_bytes(data[:-3])
    assert len(list(read_flv_file(path))) == 2


def test_empty_writer_still_writes_a_header(tmp_path):
    w = FlvFileWriter(tmp_path / "e.flv")
    w.close()
    assert (tmp_path / "e.flv").read_bytes()[:3] == b"FLV"
