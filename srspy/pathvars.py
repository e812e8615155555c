"""SRS's path variables, shared by the outputs that write files (HLS, DVR): ``[vhost]``,
``[app]``, ``[stream]`` (SRS ``srs_path_build_stream``) and the time variables
(``srs_path_build_timestamp``), with a safety check on the names that go into a path.
"""

from __future__ import annotations

import time as _time

from .errors import SrsError

MAX_NAME = 255


class UnsafeNameError(SrsError):
    """An app or stream name that cannot go into a file path."""


def check_name(kind: str, value: str) -> str:
    """An app or stream name that is safe inside a file path, or UnsafeNameError naming why."""
    if not value:
        raise UnsafeNameError(f"path: empty {kind} name")
    if len(value) > MAX_NAME:
        raise UnsafeNameError(f"path: {kind} name of {len(value)} characters exceeds {MAX_NAME}")
    if "\0" in value:
        raise UnsafeNameError(f"path: {kind} name {value!r} contains a NUL byte")
    if ".." in value:
        raise UnsafeNameError(f"path: {kind} name {value!r} contains '..'")
    if kind == "stream" and ("/" in value or "\\" in value):
        raise UnsafeNameError(f"path: stream name {value!r} contains a path separator")
    if value.startswith("/") or "\\" in value:
        raise UnsafeNameError(f"path: {kind} name {value!r} is not a relative path")
    return value


def expand_stream(template: str, vhost: str, app: str, stream: str) -> str:
    """``[vhost]``, ``[app]``, ``[stream]`` (SRS ``srs_path_build_stream``); names are checked."""
    check_name("app", app)
    check_name("stream", stream)
    return template.replace("[vhost]", vhost).replace("[app]", app).replace("[stream]", stream)


def expand_time(template: str, now: float, utc: bool = False) -> str:
    """SRS ``srs_path_build_timestamp``: ``[2006]`` year, ``[01]`` month, ``[02]`` day,
    ``[15]`` hour, ``[04]`` minute, ``[05]`` second, ``[999]`` milliseconds,
    ``[timestamp]`` wall-clock ms; local time unless ``utc`` (global ``utc_time``)."""
    if "[" not in template:
        return template
    t = _time.gmtime(now) if utc else _time.localtime(now)
    ms = int(now * 1000)
    for var, value in (("[2006]", f"{t.tm_year:04d}"), ("[01]", f"{t.tm_mon:02d}"), ("[02]", f"{t.tm_mday:02d}"),
                       ("[15]", f"{t.tm_hour:02d}"), ("[04]", f"{t.tm_min:02d}"), ("[05]", f"{t.tm_sec:02d}"),
                       ("[999]", f"{ms % 1000:03d}"), ("[timestamp]", str(ms))):
        template = template.replace(var, value)
    return template


