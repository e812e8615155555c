"""Port of srs_kernel_log / SrsContextId: loguru sinks, connection context ids, pithy prints.

Every connection greenlet runs inside ``logger.contextualize(cid=..., ip=...)``; lines
logged outside a connection carry the server's own context id. Greenlets do not inherit
loguru's context: helper greenlets bind again (``spawn_with_context``).

Client-controlled strings (tcUrl, app and stream names, URLs, AMF0 strings that were not
UTF-8) reach log lines through one place, the patcher ``_patch``: a record's message
has every control character (newlines included) and every lone surrogate (a byte that
was not UTF-8, decoded with ``surrogateescape``) written as an escape, so a peer can
neither forge a log line nor make a record vanish in an encoding error. ``setup`` adds
one sink and later removes only that one, never the sinks of an embedding application.
"""

from __future__ import annotations

import os
import random
import re
import string
import sys

import gevent
from loguru import logger

_ALPHABET = string.ascii_lowercase + string.digits
_LEVELS = {"verbose": "TRACE", "info": "DEBUG", "trace": "INFO", "warn": "WARNING", "error": "ERROR"}
FORMAT = "[{time:YYYY-MM-DD HH:mm:ss.SSS}][{level.name:<5}][{process}][{extra[cid]}] {extra[ipp]}{message}"

_state = {"sink": None, "path": None, "level": "INFO", "tank": "console", "server_cid": "", "default_removed": False}


def new_cid() -> str:
    """An 8-character context id, as SRS prints them."""
    return "".join(random.choices(_ALPHABET, k=8))


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")  # controls, line separators, lone surrogates


def _escape_char(m) -> str:
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{c - 0xDC00:02x}"
    if c <= 0xFF:
        return {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}.get(c) or f"\\x{c:02x}"
    return f"\\u{c:04x}"


def safe(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped (``\\n``, ``\\x1b``,
    ``\\xff`` for a byte that was not UTF-8): fit for one log line, encodable as UTF-8."""
    if text.isprintable():
        return text
    return _UNSAFE.sub(_escape_char, text)


def _patch(record):
    record["message"] = safe(record["message"])
    extra = record["extra"]
    if "cid" not in extra:
        extra["cid"] = _state["server_cid"]
    ip = extra.get("ip")
    extra["ipp"] = f"{ip} " if ip else ""


def _stderr(message):
    """Console sink: looks sys.stderr up on every line, so a replaced stderr is followed."""
    sys.stderr.write(message)


def srs_level(name: str) -> str:
    """SRS's level names (verbose/info/trace/warn/error) as loguru levels."""
    return _LEVELS.get(name, name.upper())


def setup(tank: str = "console", level: str = "trace", path: str | None = None, server_cid: str | None = None):
    """(Re)configure the one sink: ``srs_log_tank console|file``, ``srs_log_level``, ``srs_log_file``."""
    _state.update(tank=tank, level=srs_level(level), path=path)
    if server_cid:
        _state["server_cid"] = server_cid
    elif not _state["server_cid"]:
        _state["server_cid"] = new_cid()
    logger.configure(patcher=_patch)
    if not _state["default_removed"]:
        _state["default_removed"] = True
        try:
            logger.remove(0)  # loguru's own stderr sink, added at its import; srspy's replaces it
        except ValueError:
            pass
    _add_sink()


def _add_sink():
    if _state["sink"] is not None:
        try:
            logger.remove(_state["sink"])  # ours only: an embedding application keeps its sinks
        except ValueError:
            pass  # already removed by the application
        _state["sink"] = None
    if _state["tank"] == "file" and _state["path"]:
        d = os.path.dirname(os.path.abspath(_state["path"]))
        os.makedirs(d, exist_ok=True)
        _state["sink"] = logger.add(_state["path"], level=_state["level"], format=FORMAT, enqueue=False, catch=True)
    else:
        _state["sink"] = logger.add(_stderr, level=_state["level"], format=FORMAT, enqueue=False, catch=True, colorize=False)


def set_level(level: str):
    if srs_level(level) != _state["level"]:
        _state["level"] = srs_level(level)
        _add_sink()


def reopen():
    """SIGUSR1 (logrotate): close and reopen the log file."""
    if _state["tank"] == "file":
        _add_sink()
        logger.info("log file {} reopened", _state["path"])


def server_cid() -> str:
    return _state["server_cid"]


def spawn_with_context(fn, *args, cid: str, ip: str = "", **kwargs):
    """Spawn a helper greenlet that logs with the same context id as its owner."""
    def run():
        with logger.contextualize(cid=cid, ip=ip):
            return fn(*args, **kwargs)

    return gevent.spawn(run)
