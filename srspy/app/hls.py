"""HLS with MPEG-TS segments, a per-source output (SrsHls / SrsHlsController / SrsHlsMuxer).

``vhost x { hls { enabled on; } }``: every stream published there is cut into segments by
srspy/hls/segmenter.py (``hls_fragment``, ``hls_td_ratio``, ``hls_aof_ratio``,
``hls_wait_keyframe``), muxed by its own kernel/ts.py TsMuxer (each segment starts with
PAT/PMT), and written under ``hls_path`` as ``hls_ts_file`` and ``hls_m3u8_file`` (SRS's
defaults ``[app]/[stream]-[seq].ts`` and ``[app]/[stream].m3u8``). Every file is written
as ``<name>.tmp`` and renamed when complete, so the playlist is replaced atomically and a
listed segment is always whole. File work runs in gevent's threadpool (the hub never
blocks on a disk). The playlist (srspy/hls/playlist.py) keeps ``hls_window`` seconds, has
EXT-X-VERSION 3 and a target duration fixed for the stream; ``hls_cleanup`` deletes the
segments that leave it.

A stream's HLS state (sequence numbers, the playlist, its files) outlives the publish in
``HlsOutputs.streams``: a republish within ``hls_dispose`` seconds continues the sequence
with a discontinuity; after that the m3u8 and the segments are deleted and the next
publish starts again at 0 (``hls_dispose 0``: never deleted, always continued).

``hls_use_fmp4 on``: the segments are fragmented MP4 instead (``hls_fmp4_file``, one
``moof``+``mdat`` each, 90 kHz like TS) after an init segment (``hls_init_file``, written
at the stream's first frame, listed as EXT-X-MAP; EXT-X-VERSION 6). The init segment is
not rewritten when a sequence header changes mid-publish (a republish writes it again).

``hls_low_latency on``: fMP4 whatever ``hls_use_fmp4`` says; every ``hls_part_duration``
the open segment's samples become one fragment (a part), kept in memory and listed as
EXT-X-PART with an EXT-X-PRELOAD-HINT for the next one, segments carry
EXT-X-PROGRAM-DATE-TIME; app/llhls.py answers the playlist (with blocking reload and,
with ``hls_ctx on``, the same play sessions as app/hls_play.py) and the parts from memory
at the playlist's URL. A segment on disk is its parts one after the other.

An app or stream name that cannot be a path (``..``, ``/`` in the stream, NUL) gets no
HLS: one error is logged and the publish goes on.

Serving: ``hls_path`` defaults to ``http_server.dir``'s default, whose file server answers
``.m3u8``/``.ts``. When a vhost's ``hls_path`` is another directory, the factory mounts a
file server of ``hls_path`` at ``/<app>/`` in the HTTP server's static mux (first publish
of that app) -- enough for the default ``[app]/...`` templates; other templates must
keep their files under ``http_server.dir`` or be served by another web server. The
playlist's URL itself is answered by a handler in the stream mux while the stream's HLS
state lives: play sessions with ``hls_ctx on``, with it off the bytes last written to the
file, from memory (app/hls_play.py).
"""

from __future__ import annotations

import os
import time

import gevent
from loguru import logger

from ..errors import HlsDecodeError, SrsError
from ..hls.crypto import encrypt_segment, key_starts, new_key
from ..hls.onerror import KICK, SKIP, FrameCheck, on_error
from ..hls.playlist import Playlist, Segment, entry_uri, fill_duration, segment_name, target_duration
from ..hls.segmenter import FLOOR_REAP_PERCENT, Media, PartClose, SegmentClose, SegmentOpen, Segmenter, SequenceHeader
from ..hls.timing import AudioDtsCounter
from ..hls.tracks import ACODECS, VCODECS, announced_tracks
from ..http.static import FileServer
from ..kernel.message import AUDIO, VIDEO
from ..kernel.mp4 import HLS_TIMESCALE, Fragmenter, Mp4Tracks, init_segment
from ..kernel.ts import TsMuxer, starts_with_psi
from .file_output import FileOutput, run_blocking
from .hls_play import HlsPlaylist, HlsSessions, MemoryPlaylist, playlist_path
from .llhls import PART_SEGMENTS, LowLatency
from ..pathvars import UnsafeNameError, check_name, expand_stream

FLUSH_BYTES = 256 * 1024  # a segment's bytes go to its .tmp file in chunks of about this size


# ---------------------------------------------------------------- file work (threadpool)

def _open_tmp(path: str):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return open(path + ".tmp", "wb")


def _write_bytes(path: str, data: bytes) -> None:
    """``path`` replaced atomically: written as ``path.tmp``, then renamed."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def _finish_segment(f, tmp: str, final: str | None) -> None:
    f.close()
    if final is None:
        os.unlink(tmp)
    else:
        os.replace(tmp, final)


def _unlink_all(paths: list) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


# ---------------------------------------------------------------- per-stream state

class HlsStream:
    """What outlives a publish: the next sequence number, the playlist, the dispose timer."""

    __slots__ = ("url", "m3u8", "playlist", "sequence", "output", "timer", "dispose_files", "play", "ll",
                 "m3u8_bytes")

    def __init__(self, url: str, m3u8: str, playlist: Playlist):
        self.url = url
        self.m3u8 = m3u8
        self.playlist = playlist
        self.sequence = 0
        self.output = None  # the HlsOutput writing it now, or the last one
        self.timer = None  # the dispose timer while unpublished
        self.dispose_files: dict = {}  # segment URI -> path, of the listed segments
        self.play: HlsPlaylist | MemoryPlaylist | None = None  # the handler of its playlist URL
        self.m3u8_bytes: bytes | None = None  # the playlist file's bytes, as last written
        self.ll: LowLatency | None = None  # hls_low_latency: its parts and playlist, served from memory


class HlsOutput(FileOutput):
    """Segments one publish of a stream into TS files and its playlist."""

    kind = "hls"

    def __init__(self, factory, source, conf: dict, state: HlsStream, continued: bool):
        super().__init__(factory.server, source)
        self.factory = factory
        self.conf = conf
        self.state = state
        self.continued = continued
        self.root = conf["hls_path"]
        # hls_low_latency: fMP4 parts of hls_part_duration, kept in memory (app/llhls.py)
        self.ll = state.ll if conf["hls_low_latency"] else None
        # hls_acodec / hls_vcodec (hls/tracks.py): the kinds carried, the codecs the PMT lists
        # for a track onMetaData announces before it shows (first segment only)
        self.carry = {AUDIO: conf["hls_acodec"] != "an", VIDEO: conf["hls_vcodec"] != "vn"}
        self.expected = (ACODECS[conf["hls_acodec"]], VCODECS[conf["hls_vcodec"]])
        self.segmenter = Segmenter(conf["hls_fragment"], conf["hls_td_ratio"], conf["hls_aof_ratio"],
                                   conf["hls_wait_keyframe"],
                                   part_duration=conf["hls_part_duration"] if self.ll else 0.0,
                                   sequence=state.sequence, ts_floor=conf["hls_ts_floor"],
                                   carry_audio=self.carry[AUDIO], carry_video=self.carry[VIDEO])
        if continued:
            self.segmenter.discontinuity()
        # hls_dts_directly off: AAC decode times counted from samples (TS only, hls/timing.py)
        audio_dts = None if conf["hls_dts_directly"] else AudioDtsCounter()
        self.muxer = TsMuxer(has_audio=self.carry[AUDIO], has_video=self.carry[VIDEO], audio_dts=audio_dts)
        self.opened = 0  # segments opened in this publish
        self.empty_logged = False
        # hls_on_error (hls/onerror.py): the messages HLS cannot decode, those skipped
        self.check = FrameCheck()
        self.skipped = 0
        # fMP4 (hls_use_fmp4): the tracks, and the fragment of the open segment
        self.fmp4 = bool(conf["hls_use_fmp4"]) or self.ll is not None
        self.tracks = Mp4Tracks()
        self.frag: Fragmenter | None = None
        self.seg_start = 0
        self.part_start = 0
        self.seg_date = 0.0  # wall clock of the open segment's start (EXT-X-PROGRAM-DATE-TIME)
        # hls_keys (TS only): the key in force, and whether the open segment starts it
        self.keys = bool(conf["hls_keys"]) and not self.fmp4
        self.key: tuple[bytes, bytes] | None = None  # (key, iv)
        self.key_uri = ""
        self.key_new = False
        # the open segment
        self.file = None
        self.tmp_path = ""
        self.rel_name = ""
        self.discontinuity = False
        self.buf = bytearray()
        self.need_psi = False

    def __repr__(self) -> str:
        return f"HlsOutput({self.state.url})"

    def start(self, source=None) -> None:
        logger.info("hls: {} to {} (fragment {:g}s, window {:g}s)", self.source.url,
                    os.path.join(self.root, self.state.m3u8), self.conf["hls_fragment"], self.conf["hls_window"])
        super().start(source)

    def _discontinuity(self) -> None:
        self.segmenter.discontinuity()

    def _end(self) -> None:
        self._events(self.segmenter.close())

    def _ended(self) -> None:
        self.factory.on_output_end(self)

    def _feed(self, msgs: list) -> None:
        now = time.time()
        for m in msgs:
            if m.is_metadata:
                if self.opened < 2:
                    audio, video = announced_tracks(m.payload)
                    self.muxer.expect(self.expected[0] if audio else None, self.expected[1] if video else None)
                continue
            if self.carry.get(m.type):
                try:
                    self.check.check(m)
                except HlsDecodeError as e:
                    if on_error(self.conf["hls_on_error"], e) != SKIP:
                        raise
                    self._skip(e)
                    continue
            self._events(self.segmenter.feed(m, now))
        if len(self.buf) >= FLUSH_BYTES and self.file is not None and not self.keys:
            data, self.buf = bytes(self.buf), bytearray()
            run_blocking(self.file.write, data)

    def _skip(self, e: HlsDecodeError) -> None:
        """hls_on_error continue: a frame as large as the sequence header that does not
        decode is left out (logged the first time)."""
        self.skipped += 1
        if self.skipped == 1:
            logger.warning("hls: {} {}: taken for a sequence header, skipped (hls_on_error continue)",
                           self.source.url, e)

    def _fail(self, e: BaseException) -> None:
        """An HLS error: hls_on_error ``ignore`` stops HLS for this publish (so does any
        error once the publish is over); ``continue`` and ``disconnect`` disconnect the
        publisher (hls/onerror.py). The open segment is listed when a frame failed to
        decode (as SRS's unpublish of HLS), dropped when the disk failed."""
        mode = self.conf["hls_on_error"]
        publisher = self.source.publisher if self.source.publishing and self.source.epoch == self.epoch else None
        kick = publisher is not None and on_error(mode, e) == KICK
        if kick:
            logger.error("hls: {} failed, the publisher is disconnected (hls_on_error {}): {}", self.source.url, mode, e)
        else:
            logger.error("hls: {} stopped, the publish goes on (hls_on_error {}): {}", self.source.url, mode, e)
        if isinstance(e, HlsDecodeError):
            try:
                self._end()
            except (OSError, SrsError):
                self._abort_quietly()
        else:
            self._abort_quietly()
        expire = getattr(publisher, "expire", None) if kick else None
        if expire is not None:
            expire()

    def _events(self, events: list) -> None:
        for ev in events:
            if isinstance(ev, Media) and self.fmp4:
                if self.carry[ev.msg.type]:
                    self._sample(ev.msg)
            elif isinstance(ev, Media):
                data = self.muxer.mux(ev.msg)
                if data:
                    if self.need_psi:
                        self.need_psi = False
                        if not starts_with_psi(data):
                            self.buf += self.muxer.psi()
                    self.buf += data
            elif isinstance(ev, PartClose):
                self._part(ev)
            elif isinstance(ev, SegmentOpen):
                self._open(ev)
            elif isinstance(ev, SegmentClose):
                self._close(ev)
            elif isinstance(ev, SequenceHeader):
                if self.fmp4:
                    if self.carry[ev.msg.type]:
                        self.tracks.on_message(ev.msg)
                else:
                    self.muxer.mux(ev.msg)  # the codec configuration; no bytes of its own

    def _sample(self, msg) -> None:
        """fMP4: a frame joins the open segment's fragment; the first one writes the init
        segment (the tracks the stream has by then)."""
        got = self.tracks.on_message(msg)
        if got is None or got[1] is None:
            return
        track, sample = got
        if self.frag is None:
            self._write_init()
        if track.track_id in self.frag.tracks:
            self.frag.add(track, sample)

    def _part(self, ev: PartClose) -> None:
        """Low latency: the part's samples become one fragment, kept in memory and listed;
        the segment on disk is its parts one after the other."""
        end = self.part_start + ev.duration
        self.part_start = end
        if self.frag is None or self.file is None:
            return
        # Each track's last sample lasts as long as the one before it, not until the part's
        # end: a frame cut short there makes the next part look like a gap to a browser's
        # Media Source (a decode-time jump of more than twice the last frame's duration),
        # which then drops every frame up to the next keyframe.
        data = self.frag.fragment(None)
        if not data:
            return
        self.buf += data
        self.ll.add_part(ev.seq, ev.index, data, ev.duration, ev.independent or not self.carry[VIDEO])

    def _write_init(self) -> None:
        req = self.req
        rel = expand_stream(self.conf["hls_init_file"], req.vhost, req.app, req.stream)
        path = os.path.join(self.root, rel)
        self.factory.check_inside(self.root, path)
        tracks = self.tracks.tracks
        run_blocking(_write_bytes, path, init_segment(tracks, HLS_TIMESCALE))
        self.frag = Fragmenter(tracks, HLS_TIMESCALE)
        st = self.state
        uri = entry_uri(rel, st.m3u8, self.conf["hls_entry_prefix"])
        st.playlist.map_uri = uri
        st.dispose_files[uri] = path

    # -- segments ---------------------------------------------------------------------------
    def _open(self, ev: SegmentOpen) -> None:
        req = self.req
        template = self.conf["hls_fmp4_file"] if self.fmp4 else self.conf["hls_ts_file"]
        self.rel_name = segment_name(template, req.vhost, req.app, req.stream, ev.seq, ev.at, self.utc, ev.floor)
        floor = self.segmenter.floor
        if floor is not None and floor.jumped:
            logger.warning("hls: {} floor index set back to the clock: {}", self.source.url, ev.floor)
        self.tmp_path = os.path.join(self.root, self.rel_name)
        self.factory.check_inside(self.root, self.tmp_path)
        self.file = run_blocking(_open_tmp, self.tmp_path)
        self.discontinuity = ev.discontinuity
        self.buf = bytearray()
        self.need_psi = True
        self.opened += 1
        if self.opened == 2:
            self.muxer.expect(None, None)  # a track onMetaData announced that never showed: left out
        self.seg_start = self.part_start = ev.dts
        self.seg_date = ev.at
        self.key_new = False
        if self.keys and (self.key is None or key_starts(ev.seq, self.conf["hls_fragments_per_key"])):
            self._new_key(ev.seq)

    def _new_key(self, seq: int) -> None:
        """A key file of 16 random bytes (hls_key_file under hls_key_file_path); its URI is
        hls_key_url + the file name as SRS, or relative to the playlist when hls_key_url is
        empty (SRS would join hls_path, a file path, as the URL)."""
        req, conf = self.req, self.conf
        rel = segment_name(conf["hls_key_file"], req.vhost, req.app, req.stream, seq, time.time(), self.utc)
        kroot = conf["hls_key_file_path"] or self.root
        path = os.path.join(kroot, rel)
        self.factory.check_inside(kroot, path)
        key, iv = new_key()
        run_blocking(_write_bytes, path, key)
        self.key = (key, iv)
        self.key_uri = conf["hls_key_url"] + rel if conf["hls_key_url"] else entry_uri(rel, self.state.m3u8)
        self.key_new = True
        self.state.dispose_files["key:" + path] = path

    def _close(self, ev: SegmentClose) -> None:
        f, self.file = self.file, None
        if f is None:
            return
        if self.frag is not None:
            self.buf += self.frag.fragment(self.seg_start + ev.duration)  # fMP4: one moof+mdat
        data, self.buf = bytes(self.buf), bytearray()
        if self.keys and self.key is not None:
            data = encrypt_segment(data, *self.key)
        if data:
            run_blocking(f.write, data)
        tmp = self.tmp_path + ".tmp"
        if not ev.keep:
            if not ev.carried and not self.empty_logged:
                self.empty_logged = True
                logger.warning("hls: {} has nothing HLS carries (hls_acodec {}, hls_vcodec {}): no segment listed",
                               self.source.url, self.conf["hls_acodec"], self.conf["hls_vcodec"])
            run_blocking(_finish_segment, f, tmp, None)
            if self.ll is not None:
                self.ll.segment_dropped(ev.seq)
            return
        rel = fill_duration(self.rel_name, ev.duration)
        final = os.path.join(self.root, rel)
        run_blocking(_finish_segment, f, tmp, final)
        st = self.state
        pl = st.playlist
        if pl.td is None:
            pl.td = target_duration(self.conf["hls_fragment"], self.conf["hls_td_ratio"], self.segmenter.gop_ms,
                                    ev.duration, FLOOR_REAP_PERCENT if self.conf["hls_ts_floor"] else 0.0)
        uri = entry_uri(rel, st.m3u8, self.conf["hls_entry_prefix"])
        st.dispose_files[uri] = final
        key = (self.key_uri, self.key[1]) if self.keys and self.key_new else None
        if self.ll is not None:
            seg = Segment(ev.seq, ev.duration, uri, self.discontinuity, key, self.seg_date, list(pl.open_parts))
        else:
            seg = Segment(ev.seq, ev.duration, uri, self.discontinuity, key)
        removed = pl.add(seg)
        st.sequence = ev.seq + 1
        if self.ll is not None:
            self.ll.segment_listed(ev.seq)
        data = pl.text().encode()
        run_blocking(_write_bytes, os.path.join(self.root, st.m3u8), data)
        st.m3u8_bytes = data
        gone = [st.dispose_files.pop(s.uri) for s in removed if s.uri in st.dispose_files]
        if gone and self.conf["hls_cleanup"]:
            run_blocking(_unlink_all, gone)
        self.factory.on_segment(self, ev, final, uri)

    def _abort(self) -> None:
        f, self.file = self.file, None
        if f is not None:
            try:
                run_blocking(_finish_segment, f, self.tmp_path + ".tmp", None)
            except OSError:
                pass


class HlsOutputs:
    """The factory of a server's HLS outputs, ``HlsOutputs(server)(source) -> [HlsOutput]``,
    and the registry of the streams' HLS state (``streams``, by stream URL)."""

    def __init__(self, server):
        self.server = server
        self.streams: dict[str, HlsStream] = {}
        self.mounted: set = set()

    def __call__(self, source) -> list:
        found = self.server.config.resolve_vhost(source.req.vhost)
        if not found or not found[1]["hls"]["enabled"]:
            return []
        conf = found[1]["hls"]
        req = source.req
        try:
            check_name("app", req.app)
            check_name("stream", req.stream)
            m3u8 = expand_stream(conf["hls_m3u8_file"], req.vhost, req.app, req.stream)
            self.check_inside(conf["hls_path"], os.path.join(conf["hls_path"], m3u8))
        except UnsafeNameError as e:
            logger.error("hls: {} gets no HLS: {}", source.url, e)
            return []
        url = source.url
        st = self.streams.get(url)
        continued = st is not None
        if st is not None and st.m3u8 != m3u8:
            self._unmount_playlist(st)
        if st is not None and bool(st.ll) != bool(conf["hls_low_latency"]):
            self._unmount_playlist(st)  # a reload switched low latency: a fresh playlist
            st = None
        if st is None or st.m3u8 != m3u8:
            part_target = conf["hls_part_duration"] if conf["hls_low_latency"] else 0.0
            st = self.streams[url] = HlsStream(url, m3u8, Playlist(conf["hls_window"], part_target=part_target,
                                                                    part_segments=PART_SEGMENTS))
            continued = False
        if st.timer is not None:
            st.timer.kill(block=False)
            st.timer = None
        old = st.output
        if old is not None and not old.stopped:
            old.stop()
            old.join(5.0)  # its last segment is listed before the new publish goes on
        if conf["hls_low_latency"] and st.ll is None:
            self._mount_low_latency(st, conf)
        out = HlsOutput(self, source, conf, st, continued)
        st.output = out
        self._mount(req.app, conf["hls_path"])
        if st.play is not None and isinstance(st.play, HlsPlaylist) != bool(conf["hls_ctx"]):
            self._unmount_playlist(st)  # a reload switched hls_ctx
        if not conf["hls_low_latency"] and st.play is None:
            self._mount_playlist(st, conf)
        return [out]

    @staticmethod
    def check_inside(root: str, path: str) -> None:
        base = os.path.realpath(root)
        full = os.path.realpath(path)
        if not full.startswith(base.rstrip(os.sep) + os.sep):
            raise UnsafeNameError(f"hls: file {path} is outside hls_path {root}")

    def _mount(self, app: str, hls_path: str) -> None:
        """Serve ``hls_path`` at ``/<app>/`` when it is not ``http_server.dir``."""
        http = getattr(self.server, "http", None)
        if http is None or not http.dir:
            return
        if os.path.realpath(hls_path) == os.path.realpath(http.dir):
            return
        pattern = f"/{app}/"
        if pattern in self.mounted:
            return
        try:
            http.handle(pattern, FileServer(hls_path))
        except SrsError as e:
            logger.warning("hls: cannot serve {} at {}: {}", hls_path, pattern, e)
            return
        self.mounted.add(pattern)

    def _mount_playlist(self, st: HlsStream, conf: dict) -> None:
        """The playlist's URL: with ``hls_ctx on`` answered with play sessions, off from the
        bytes in memory (app/hls_play.py)."""
        http = getattr(self.server, "http", None)
        if http is None:
            return
        if conf["hls_ctx"]:
            play = HlsPlaylist(self.server, playlist_path(st.m3u8), os.path.join(conf["hls_path"], st.m3u8), conf)
        else:
            play = MemoryPlaylist(playlist_path(st.m3u8), st, http.serve_static)
        try:
            http.stream_mux.handle(play.path, play)
        except SrsError as e:
            logger.warning("hls: no play sessions at {}: {}", play.path, e)
            return
        st.play = play

    def _mount_low_latency(self, st: HlsStream, conf: dict) -> None:
        """``hls_low_latency on``: the playlist and the parts are answered from memory
        (app/llhls.py), with play sessions when ``hls_ctx on``."""
        path = playlist_path(st.m3u8)
        sessions = HlsSessions(self.server, path, conf) if conf["hls_ctx"] else None
        ll = LowLatency(path, st.playlist, conf["hls_fragment"], sessions)
        st.ll = ll
        http = getattr(self.server, "http", None)
        if http is None:
            return
        try:
            http.stream_mux.handle(ll.path, ll)
            http.stream_mux.handle(ll.prefix, ll)
        except SrsError as e:
            logger.warning("hls: low-latency playlist and parts not served at {}: {}", ll.path, e)

    def _unmount_playlist(self, st: HlsStream) -> None:
        play, st.play = st.play, None
        if play is not None:
            self.server.http.stream_mux.unhandle(play.path)
            play.close()
        ll, st.ll = st.ll, None
        if ll is not None and getattr(self.server, "http", None) is not None:
            for pattern in (ll.path, ll.prefix):
                if pattern in self.server.http.stream_mux.entries:
                    self.server.http.stream_mux.unhandle(pattern)
        if ll is not None and ll.sessions is not None:
            ll.sessions.close()

    # -- from the outputs ------------------------------------------------------------------------
    def on_segment(self, out: HlsOutput, ev: SegmentClose, final: str, uri: str) -> None:
        """A segment was listed: the on_hls hook (its own greenlet, never waited for)."""
        hooks = getattr(self.server, "hooks", None)
        if hooks is None:
            return
        m3u8_url = out.state.m3u8
        url = uri
        if not uri.startswith(("http://", "https://")):
            base = os.path.dirname(m3u8_url)
            url = f"{base}/{uri}" if base else uri
        hooks.on_hls(out.req, out.cid, round(ev.duration / 1000, 3), final, url, os.path.join(out.root, m3u8_url),
                     m3u8_url, ev.seq)
        hooks.on_hls_notify(out.req, url, out.conf["hls_nb_notify"])

    def on_output_end(self, out: HlsOutput) -> None:
        """A publish's HLS ended: arm the stream's dispose timer."""
        st = out.state
        if st.output is not out or self.streams.get(st.url) is not st:
            return
        dispose = out.conf["hls_dispose"]
        if dispose > 0:
            st.timer = gevent.spawn_later(dispose, self._dispose, st, out.root)

    def _dispose(self, st: HlsStream, root: str) -> None:
        if self.streams.get(st.url) is not st or (st.output is not None and not st.output.stopped):
            return
        del self.streams[st.url]
        st.timer = None
        self._unmount_playlist(st)
        files = list(st.dispose_files.values()) + [os.path.join(root, st.m3u8)]
        logger.info("hls: {} disposed, {} files deleted", st.url, len(files))
        try:
            run_blocking(_unlink_all, files)
        except OSError as e:
            logger.warning("hls: dispose of {} failed: {}", st.url, e)

    def close(self) -> None:
        """Server quit: cancel the dispose timers (the files stay, as SRS leaves them)."""
        for st in self.streams.values():
            if st.timer is not None:
                st.timer.kill(block=False)
                st.timer = None


__all__ = ["HlsOutput", "HlsOutputs", "HlsStream"]
