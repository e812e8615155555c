"""The MPEG-TS muxer (srspy/kernel/ts.py) on real FLVs made by ffmpeg, checked with
ffprobe/ffmpeg, SRS's PAT/PMT bytes and a packet-level reader; and the ADTS/MP3 outputs."""

from __future__ import annotations

import pytest

from helpers.media import make_enhanced_flv, make_flv
from helpers.tsparse import (continuity_errors, continuity_log, decode_errors, ffprobe_json, packets, pes_dts,
                             section)
from srspy.errors import CodecError
from srspy.kernel import codec
from srspy.kernel.flv import FlvDecoder
from srspy.kernel.message import AUDIO, VIDEO, MediaMessage
from srspy.kernel.ts import (MP3_ID3V2_HEADER, AdtsBuilder, AdtsConverter, TsMuxer, _Pid, mp3_frames, pat_section,
                             pmt_section, starts_with_psi)

# SRS's PAT and A+V PMT (AAC + H.264) sections, CRC included: outputs.md 2.1, what
# kernel/srs_kernel_ts.cpp writes.
SRS_PAT = bytes.fromhex("00b00d0001c100000001f001" "2e701905")
SRS_PMT_AV = bytes.fromhex("02b0170001c10000e100f0000fe101f0001be100f000" "f2d91563")
SRS_PMT_VIDEO = bytes.fromhex("02b0120001c10000e100f0001be100f000" "15bd4d56")
# A hand-made AVC sequence header (4-byte SPS and PPS stand-ins) and an IDR frame.
AVC_SH = bytes([0x17, 0, 0, 0, 0]) + bytes.fromhex("0164001effe10004" "6764001e" "010004" "68ebecb2")
AVC_KEY = bytes([0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88])
AVC_INTER = bytes([0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9A])
AAC_SH = bytes([0xAF, 0, 0x12, 0x10])


def read_messages(path) -> list:
    with open(path, "rb") as f:
        return FlvDecoder().feed(f.read())


def mux_all(msgs, **kw) -> list[bytes]:
    """The TS bytes of every message, as the stream's one muxer makes them."""
    m = TsMuxer(**kw)
    return [m.mux(x) for x in msgs]


def write(tmp_path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


@pytest.fixture(scope="module")
def av_ts(av_flv):
    msgs = read_messages(av_flv)
    return msgs, mux_all(msgs)


def test_sections_equal_srs_bytes():
    assert pat_section() == SRS_PAT
    assert pmt_section([(0x0F, 0x101), (0x1B, 0x100)], 0x100) == SRS_PMT_AV
    assert pmt_section([(0x1B, 0x100)], 0x100) == SRS_PMT_VIDEO


def test_av_stream_structure_and_bytes(av_ts, tmp_path):
    msgs, outs = av_ts
    data = b"".join(outs)
    pkts = packets(data)
    # PAT then PMT open the stream, byte for byte as SRS (the counter nibble aside)
    assert data[:3] == b"\x47\x40\x00" and data[3] & 0xF0 == 0x10
    assert data[4:188] == b"\x00" + SRS_PAT + b"\xff" * (183 - len(SRS_PAT))
    assert data[188:191] == b"\x47\x50\x01" and data[191] & 0xF0 == 0x10
    assert data[192:376] == b"\x00" + SRS_PMT_AV + b"\xff" * (183 - len(SRS_PMT_AV))
    # every PAT/PMT of the stream is the same section (the codecs never change)
    assert {section(p) for p in pkts if p.pid == 0} == {SRS_PAT}
    assert {section(p) for p in pkts if p.pid == 0x1001} == {SRS_PMT_AV}
    assert continuity_errors(pkts) == []

    path = write(tmp_path, "av.ts", data)
    info = ffprobe_json(path, "-show_programs", "-show_streams")
    (prog,) = info["programs"]
    assert prog["program_num"] == 1 and prog["pmt_pid"] == 4097 and prog["pcr_pid"] == 0x100
    by_id = {s["id"]: s for s in info["streams"]}
    assert by_id["0x100"]["codec_name"] == "h264" and by_id["0x100"]["codec_tag"] == "0x001b"
    assert by_id["0x100"]["width"] == 640 and by_id["0x100"]["height"] == 360
    assert by_id["0x101"]["codec_name"] == "aac" and by_id["0x101"]["codec_tag"] == "0x000f"
    assert by_id["0x101"]["sample_rate"] == "44100" and by_id["0x101"]["channels"] == 2
    assert continuity_log(path) == []
    assert decode_errors(path) == ""

    # timestamps: DTS = FLV ms x 90, PTS - DTS = composition time x 90; keyframes where the FLV has them
    vpk = ffprobe_json(path, "-select_streams", "v", "-show_packets", "-show_entries", "packet=pts,dts,flags")["packets"]
    frames = [(m.timestamp, codec.parse_video_tag(m.payload)) for m in msgs if m.type == VIDEO]
    frames = [(ts, t) for ts, t in frames if t.is_frame]
    assert len(vpk) == len(frames)
    assert vpk[0]["flags"].startswith("K")
    for p, (ts, t) in zip(vpk, frames):
        assert int(p["dts"]) == ts * 90 and int(p["pts"]) == (ts + t.cts) * 90
        assert p["flags"].startswith("K") == t.is_keyframe


def test_psi_pcr_and_random_access_rules(av_ts):
    msgs, outs = av_ts
    pkts = packets(b"".join(outs))
    last_pat = None
    last_pcr = None
    pat_gaps, pcr_gaps = [], []
    keyframes = 0
    prev = None
    for p in pkts:
        if p.pcr is not None:
            if last_pcr is not None:
                pcr_gaps.append(p.pcr - last_pcr)
            last_pcr = p.pcr
        if p.pusi and p.pid in (0x100, 0x101):
            t = pes_dts(p.payload)
            if last_pat is not None:
                pat_gaps.append(t - last_pat)
            if p.rai:
                keyframes += 1
                # a keyframe's PES comes right after PAT+PMT
                assert prev is not None and prev.pid == 0x1001 and pkts[prev.index - 1].pid == 0
        if p.pid == 0:
            last_pat = None
            # the time of the PES that follows this PAT
            for q in pkts[p.index:]:
                if q.pusi and q.pid in (0x100, 0x101):
                    last_pat = pes_dts(q.payload)
                    break
        prev = p
    assert keyframes == sum(1 for m in msgs if m.type == VIDEO and codec.parse_video_tag(m.payload).is_keyframe) == 10
    assert max(pat_gaps) <= 500 * 90
    assert 0 <= min(pcr_gaps) and max(pcr_gaps) <= 100 * 90
    # PCR sits on the video PID (the PMT's PCR_PID), also in PCR-only packets
    assert {p.pid for p in pkts if p.pcr is not None} == {0x100}


def test_player_joining_mid_gop_gets_one_continuous_stream(av_ts, tmp_path):
    """A player that joins mid-GOP is sent the GOP from its keyframe (cached bytes) and then
    the live bytes: one valid TS whose first video packet is a keyframe."""
    msgs, outs = av_ts
    keys = [i for i, m in enumerate(msgs) if m.type == VIDEO and codec.parse_video_tag(m.payload).is_keyframe]
    assert len(keys) >= 3
    join = keys[2] + 7  # mid-GOP: the catch-up starts at the GOP's keyframe
    start = max(k for k in keys if k <= join)
    assert starts_with_psi(outs[start])
    assert not starts_with_psi(outs[start + 1])
    player = b"".join(outs[start:])
    path = write(tmp_path, "joined.ts", player)
    assert continuity_errors(packets(player)) == []
    assert continuity_log(path) == []
    assert decode_errors(path) == ""
    vpk = ffprobe_json(path, "-select_streams", "v", "-show_packets", "-show_entries", "packet=dts,flags")["packets"]
    assert vpk[0]["flags"].startswith("K") and int(vpk[0]["dts"]) == msgs[start].timestamp * 90
    # the muxer is deterministic: a second one makes the same bytes, so players can share them
    assert mux_all(msgs) == outs


def test_audio_only(audio_flv, tmp_path):
    msgs = read_messages(audio_flv)
    outs = mux_all(msgs)
    pkts = packets(b"".join(outs))
    pmts = {section(p) for p in pkts if p.pid == 0x1001}
    assert pmts == {pmt_section([(0x0F, 0x101)], 0x101)}
    # PCR on the audio PID, on every audio PES
    starts = [p for p in pkts if p.pusi and p.pid == 0x101]
    assert starts and all(p.pcr is not None for p in starts)
    path = write(tmp_path, "audio.ts", b"".join(outs))
    info = ffprobe_json(path, "-show_programs", "-show_streams")
    assert info["programs"][0]["pcr_pid"] == 0x101
    assert [(s["id"], s["codec_name"]) for s in info["streams"]] == [("0x101", "aac")]
    assert continuity_log(path) == [] and decode_errors(path) == ""
    # an audio-only player starts at the next message that carries PAT/PMT (every 500 ms)
    later = [i for i, o in enumerate(outs) if starts_with_psi(o) and i > len(outs) // 2]
    assert later
    part = b"".join(outs[later[0]:])
    path = write(tmp_path, "audio-joined.ts", part)
    assert continuity_errors(packets(part)) == [] and continuity_log(path) == [] and decode_errors(path) == ""


def test_video_only(video_flv, tmp_path):
    msgs = read_messages(video_flv)
    data = b"".join(mux_all(msgs))
    pkts = packets(data)
    assert {section(p) for p in pkts if p.pid == 0x1001} == {SRS_PMT_VIDEO}
    path = write(tmp_path, "video.ts", data)
    info = ffprobe_json(path, "-show_streams")
    assert [(s["id"], s["codec_name"]) for s in info["streams"]] == [("0x100", "h264")]
    assert continuity_log(path) == [] and decode_errors(path) == ""


def test_has_audio_off_leaves_audio_out(av_ts):
    msgs, _ = av_ts
    data = b"".join(mux_all(msgs, has_audio=False))
    assert {section(p) for p in packets(data) if p.pid == 0x1001} == {SRS_PMT_VIDEO}


@pytest.fixture(scope="module")
def mp3_flv(media_dir):
    return make_flv(media_dir / "mp3.flv", 6, video=True, audio=True, acodec="mp3")


def test_mp3_in_ts(mp3_flv, tmp_path):
    msgs = read_messages(mp3_flv)
    data = b"".join(mux_all(msgs))
    pmts = [section(p) for p in packets(data) if p.pid == 0x1001]
    # MP3 has no sequence header: known from its first frame, which comes before any PES
    # here (test_pmt_version_and_counters_on_codec_change covers a late one)
    assert set(pmts) == {pmt_section([(0x03, 0x102), (0x1B, 0x100)], 0x100)}
    path = write(tmp_path, "mp3.ts", data)
    by_id = {s["id"]: s for s in ffprobe_json(path, "-show_streams")["streams"]}
    assert by_id["0x102"]["codec_name"] == "mp3" and by_id["0x102"]["codec_tag"] == "0x0003"
    assert by_id["0x100"]["codec_name"] == "h264"
    assert continuity_log(path) == [] and decode_errors(path) == ""


def test_mp3_output(mp3_flv, tmp_path):
    msgs = read_messages(mp3_flv)
    body = MP3_ID3V2_HEADER + b"".join(mp3_frames(m.payload) for m in msgs if m.type == AUDIO)
    assert MP3_ID3V2_HEADER == bytes.fromhex("4944330300000000000a") + bytes(10)
    path = write(tmp_path, "out.mp3", body)
    info = ffprobe_json(path, "-show_streams", "-show_format")
    assert info["format"]["format_name"] == "mp3"
    assert [(s["codec_name"], s["sample_rate"], s["channels"]) for s in info["streams"]] == [("mp3", "44100", 2)]
    assert decode_errors(path) == ""
    with pytest.raises(CodecError, match="AAC"):
        mp3_frames(bytes([0xAF, 0x01, 1, 2]))


def test_aac_output(av_flv, tmp_path):
    conv = AdtsConverter()
    msgs = read_messages(av_flv)
    frames = [conv.feed(m.payload) for m in msgs if m.type == AUDIO]
    assert frames[0] == b""  # the sequence header only configures
    body = b"".join(frames)
    assert body[:4] == bytes([0xFF, 0xF1, 0x50, 0x80])  # MPEG-4 ADTS, LC, 44.1 kHz, stereo
    path = write(tmp_path, "out.aac", body)
    info = ffprobe_json(path, "-show_streams", "-show_format")
    assert info["format"]["format_name"] == "aac"
    assert [(s["codec_name"], s["profile"], s["sample_rate"], s["channels"]) for s in info["streams"]] == [("aac", "LC", "44100", 2)]
    assert decode_errors(path) == ""
    with pytest.raises(CodecError, match="MP3"):
        conv.feed(bytes([0x2F, 0xFF, 0xFB]))
    # raw frames before any AudioSpecificConfig are skipped, not an error
    assert AdtsConverter().feed(bytes([0xAF, 0x01, 1, 2, 3])) == b""


def test_adts_header_is_srs_example():
    # outputs.md 2.3: AAC-LC 44.1 kHz stereo, frame_length 369 -> FF F9 50 80 2E 3F FC
    asc = bytes([0x12, 0x10])
    assert AdtsBuilder(asc, mpeg2=True).header(369 - 7) == bytes.fromhex("fff950802e3ffc")
    # HE-AAC (object type 5) is signalled as LC
    assert AdtsBuilder(bytes([0x2B, 0x92, 0x08, 0x00]), mpeg2=True).header(100)[2] >> 6 == 1
    with pytest.raises(CodecError):
        AdtsBuilder(asc).header(0x2000)


def test_packetization_stuffing_and_roundtrip():
    """Every PES size, with and without an adaptation field in the first packet: whole
    188-byte packets, payload intact, counters continuous, a 1-byte gap stuffed with an
    adaptation field of length 0 (not an extra packet)."""
    for af in (b"", b"\x40", b"\x50" + bytes(6)):
        for n in list(range(1, 400)) + [184 * 5 - 1, 184 * 5, 184 * 5 + 1]:
            pid = _Pid(0x100)
            data = bytes((i * 7) & 0xFF for i in range(n))
            out = []
            pid.packets(data, af, out)
            ts = b"".join(out)
            pkts = packets(ts)
            room = 184 - (1 + len(af) if af else 0)
            assert len(pkts) == 1 + max(0, -(-(n - room) // 184)), (af, n)
            assert b"".join(p.payload for p in pkts) == data
            assert [p.cc for p in pkts] == list(range(len(pkts)))
            assert pkts[0].pusi and not any(p.pusi for p in pkts[1:])
            assert all(p.af_length >= 0 for p in pkts if p.afc == 3)
            if af:
                assert pkts[0].af[:len(af)] == af
            for p in pkts:
                if p.af_length == 0:
                    assert len(p.payload) == 183
    # the 1-byte case explicitly: 184 + 183 bytes -> the second packet has AF length 0
    pid = _Pid(0x101)
    out = []
    pid.packets(bytes(184 + 183), b"", out)
    pkts = packets(b"".join(out))
    assert len(pkts) == 2 and pkts[1].af_length == 0 and len(pkts[1].payload) == 183


def test_pcr_only_packets_keep_pcr_gaps_short(tmp_path):
    """Video at 2 fps with audio: PCR-only packets on the video PID fill the gaps."""
    m = TsMuxer()
    out = [m.mux(MediaMessage(VIDEO, 0, 1, AVC_SH)), m.mux(MediaMessage(AUDIO, 0, 1, AAC_SH))]
    for i in range(20):
        t = i * 500
        out.append(m.mux(MediaMessage(VIDEO, t, 1, AVC_KEY if i % 4 == 0 else AVC_INTER)))
        for a in range(t, t + 500, 23):
            out.append(m.mux(MediaMessage(AUDIO, a, 1, bytes([0xAF, 1]) + bytes(20))))
    pkts = packets(b"".join(out))
    pcrs = [p.pcr for p in pkts if p.pcr is not None]
    assert {p.pid for p in pkts if p.pcr is not None} == {0x100}
    assert all(0 <= b - a <= 100 * 90 for a, b in zip(pcrs, pcrs[1:]))
    assert any(p.afc == 2 for p in pkts if p.pid == 0x100)  # PCR-only packets exist
    assert continuity_errors(pkts) == []


def test_pmt_version_and_counters_on_codec_change():
    m = TsMuxer()
    data = m.mux(MediaMessage(VIDEO, 0, 1, AVC_SH)) + m.mux(MediaMessage(VIDEO, 0, 1, AVC_KEY))
    data += m.mux(MediaMessage(AUDIO, 10, 1, bytes([0x2F, 0xFF, 0xFB, 0x90, 0x64])))  # MP3 appears
    data += m.mux(MediaMessage(AUDIO, 20, 1, AAC_SH))  # then AAC
    data += m.mux(MediaMessage(AUDIO, 30, 1, bytes([0xAF, 1, 1, 2, 3])))
    pkts = packets(data)
    pmts = [(p.cc, section(p)) for p in pkts if p.pid == 0x1001]
    assert [cc for cc, _ in pmts] == [0, 1, 2]
    assert [s[5] >> 1 & 0x1F for _, s in pmts] == [0, 1, 2]
    assert pmts[0][1] == SRS_PMT_VIDEO
    assert pmts[2][1] == pmt_section([(0x0F, 0x101), (0x1B, 0x100)], 0x100, version=2)
    assert [p.cc for p in pkts if p.pid == 0] == [0, 1, 2]
    # the keyframe's access unit: AUD, then SPS and PPS from the sequence header, then the IDR
    pes = next(p for p in pkts if p.pid == 0x100 and p.pusi).payload
    es = pes[9 + pes[8]:]
    assert es == bytes.fromhex("0000000109f0" "000000016764001e" "0000000168ebecb2" "000000016588")


def test_hevc_in_ts(media_dir, tmp_path):
    flv = make_enhanced_flv(media_dir / "hevc-aac.flv", 3, video="hevc", audio="aac")
    msgs = read_messages(flv)
    assert codec.parse_video_tag(next(m.payload for m in msgs if m.type == VIDEO)).fourcc == b"hvc1"
    outs = mux_all(msgs)
    data = b"".join(outs)
    pkts = packets(data)
    assert {section(p) for p in pkts if p.pid == 0x1001} == {pmt_section([(0x0F, 0x101), (0x24, 0x100)], 0x100)}
    first = next(p for p in pkts if p.pid == 0x100 and p.pusi).payload
    es = first[9 + first[8]:]
    # AUD (type 35) then VPS, SPS, PPS before the IRAP picture
    assert es[:7] == bytes.fromhex("00000001460150")
    nal_types = [(es[i + 4] >> 1) & 0x3F for i in range(len(es) - 4) if es[i:i + 4] == b"\x00\x00\x00\x01"][:5]
    assert nal_types[:4] == [35, 32, 33, 34] and 16 <= nal_types[4] <= 21
    path = write(tmp_path, "hevc.ts", data)
    by_id = {s["id"]: s for s in ffprobe_json(path, "-show_streams")["streams"]}
    assert by_id["0x100"]["codec_name"] == "hevc" and by_id["0x100"]["codec_tag"] == "0x0024"
    assert (by_id["0x100"]["width"], by_id["0x100"]["height"]) == (320, 240)
    assert by_id["0x101"]["codec_name"] == "aac"
    assert continuity_log(path) == [] and decode_errors(path) == ""
    vpk = ffprobe_json(path, "-select_streams", "v", "-show_packets", "-show_entries", "packet=flags")["packets"]
    assert vpk[0]["flags"].startswith("K") and sum(p["flags"].startswith("K") for p in vpk) == 3
    # and joining at the second keyframe
    keys = [i for i, m in enumerate(msgs) if m.type == VIDEO and codec.parse_video_tag(m.payload).is_keyframe]
    part = b"".join(outs[keys[1]:])
    path = write(tmp_path, "hevc-joined.ts", part)
    assert starts_with_psi(outs[keys[1]]) and continuity_log(path) == [] and decode_errors(path) == ""


def test_unsupported_codecs_give_nothing(media_dir):
    """AV1 and Opus have no TS mapping here: the muxer skips them without error."""
    flv = make_enhanced_flv(media_dir / "av1-opus.flv", 1, video="av1", audio="opus")
    m = TsMuxer()
    assert all(m.mux(x) == b"" for x in read_messages(flv))
    for junk in (b"", b"\x17", b"\x17\x01\x00", b"\xaf", b"\x9f", b"\x97\x00"):
        assert m.mux(MediaMessage(VIDEO, 0, 1, junk)) == b"" and m.mux(MediaMessage(AUDIO, 0, 1, junk)) == b""
