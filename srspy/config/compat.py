"""Port of srs_config_transform_vhost and of SRS's directive list: old syntax in, current syntax out.

Two jobs, both on the directive tree before it becomes a dict:

* :func:`transform` rewrites SRS1/SRS2 spellings into the SRS3+ ones, as SRS does when it
  loads a config (``conf/compatible.conf`` is SRS's own sample of the old syntax).
* :data:`UNSUPPORTED` lists the SRS directives srspy accepts but does not implement yet
  (WebRTC, SRT, transcoding...). The tree builder drops each of them with one
  warning, so any SRS config loads; they never reach the validated config.
"""

from __future__ import annotations

from .parser import Directive

# vhost-level directives that SRS3 moved into a block: old name -> (block, new name).
_MOVED = {
    **{n: ("play", n) for n in (
        "time_jitter", "mix_correct", "atc", "atc_auto", "mw_latency", "gop_cache",
        "gop_cache_max_frames", "queue_length", "send_min_interval", "reduce_sequence_header")},
    "publish_1stpkt_timeout": ("publish", "firstpkt_timeout"),
    "publish_normal_timeout": ("publish", "normal_timeout"),
    "refer": ("refer", "all"),
    "refer_publish": ("refer", "publish"),
    "refer_play": ("refer", "play"),
    "forward": ("forward", "destination"),
    **{n: ("cluster", n) for n in ("mode", "origin", "token_traverse", "vhost", "debug_srs_upnode")},
    **{n: ("rtc", n) for n in ("nack", "twcc")},
}
# Old blocks that SRS turned on by their mere presence: the new block also gets "enabled on".
_ENABLES = {"refer", "forward"}
_RENAMED_IN_VHOST = {"http": "http_static"}
_RENAMED_GLOBAL = {"http_stream": "http_server"}
# Later SRS writes the RTMP listener as "rtmp { listen; chunk_size; }"; srspy keeps them global.
_HOISTED_FROM_RTMP = {"listen", "chunk_size"}
_DROPPED_IN_HTTP_REMUX = {"hstrs"}

# Directives of SRS that srspy accepts with a warning and ignores; "*" stands for a vhost.
UNSUPPORTED = frozenset({
    # global
    "ff_log_dir", "ff_log_level", "auto_reload_for_docker", "tcmalloc_release_rate",
    "query_latest_version", "first_wait_for_qlv", "threads", "circuit_breaker",
    "tencentcloud_cls", "tencentcloud_apm", "is_full", "rtc_server", "srt_server",
    "stream_caster", "rtsp_server", "rtmps",
    # NGINX's own directives: SRS ships NGINX configs among its samples (nginx.proxy.conf,
    # hls.edge.conf), which srspy accepts with a warning and does not run.
    "worker_processes", "events", "http",
    # vhost
    "vhost.*.hds", "vhost.*.dash", "vhost.*.rtc", "vhost.*.srt",
    "vhost.*.transcode", "vhost.*.exec", "vhost.*.ingest", "vhost.*.http_static",
    "vhost.*.bandcheck", "vhost.*.rtsp",
})


def is_unsupported(spec_path: tuple[str, ...]) -> bool:
    """Whether the directive at ``spec_path`` (vhost names spelled ``*``) is SRS's but not srspy's."""
    return ".".join(spec_path) in UNSUPPORTED


def transform(root: Directive) -> None:
    """Port of srs_config_transform_vhost: rewrite old (and newer) spellings in place."""
    _hoist_rtmp(root)
    for d in root.children:
        d.name = _RENAMED_GLOBAL.get(d.name, d.name)
        if d.name == "vhost" and d.block:
            _transform_vhost(d)


def _hoist_rtmp(root: Directive) -> None:
    """``rtmp { listen 1935; chunk_size 60000; }`` -> the global ``listen`` and ``chunk_size``."""
    children: list[Directive] = []
    for d in root.children:
        if d.name == "rtmp" and d.block and not d.args:
            hoisted = [c.name in _HOISTED_FROM_RTMP and not c.block for c in d.children]
            children.extend(c for c, up in zip(d.children, hoisted) if up)
            d.children = [c for c, up in zip(d.children, hoisted) if not up]
            if not d.children:
                continue
        children.append(d)
    root.children = children


def _transform_vhost(vhost: Directive) -> None:
    kept: list[Directive] = []
    moved: list[tuple[str, Directive]] = []
    for d in vhost.children:
        d.name = _RENAMED_IN_VHOST.get(d.name, d.name)
        if d.name in _MOVED and not d.block:
            block, new_name = _MOVED[d.name]
            moved.append((block, Directive(new_name, d.args, d.line, d.file)))
        elif d.name == "mr" and d.block:
            moved.extend(_from_mr(d))
        else:
            if d.name == "http_remux":
                d.children = [c for c in d.children if c.name not in _DROPPED_IN_HTTP_REMUX]
            kept.append(d)
    vhost.children = kept
    for block_name, d in moved:
        _block(vhost, block_name, d, enable=block_name in _ENABLES).children.append(d)


def _from_mr(mr: Directive) -> list[tuple[str, Directive]]:
    """SRS2 ``mr { enabled; latency; }`` -> ``publish { mr; mr_latency; }``."""
    names = {"enabled": "mr", "latency": "mr_latency"}
    return [("publish", Directive(names[c.name], c.args, c.line, c.file)) for c in mr.children if c.name in names]


def _block(vhost: Directive, name: str, origin: Directive, enable: bool) -> Directive:
    """The vhost's first block ``name``, created (at ``origin``'s line) when missing."""
    block = next((c for c in vhost.children if c.name == name and c.block), None)
    if block is None:
        block = Directive(name, [], origin.line, origin.file, block=True)
        if enable:
            block.children.append(Directive("enabled", ["on"], origin.line, origin.file))
        vhost.children.append(block)
    return block
