"""srspy as a client library: RTMP push/pull and HTTP-FLV pull sessions, FLV files, tools.

    from srspy.client import RtmpPushSession, RtmpPullSession, HttpFlvPullSession, open_pull
"""

from __future__ import annotations


def open_pull(url: str, on_message=None, **kw):
    """An RTMP or HTTP-FLV pull session for ``url``, by its scheme (not started).

    Options that only one protocol has (``complex_handshake``; ``verify``,
    ``max_redirects``, ``headers``) are dropped for the other.
    """
    from .url import parse_url

    scheme = parse_url(url).scheme
    if scheme in ("http", "https"):
        from .httpflv import HttpFlvPullSession

        kw.pop("complex_handshake", None)
        return HttpFlvPullSession(url, on_message, **kw)
    from .rtmp import RtmpPullSession

    for k in ("verify", "max_redirects", "headers"):
        kw.pop(k, None)
    return RtmpPullSession(url, on_message, **kw)


def __getattr__(name):
    if name in ("RtmpPushSession", "RtmpPullSession", "RtmpClientError"):
        from . import rtmp

        return getattr(rtmp, name)
    if name in ("HttpFlvPullSession", "HttpFlvError", "HttpStatusError", "TooManyRedirects", "make_ssl_context"):
        from . import httpflv

        return getattr(httpflv, name)
    if name in ("FlvTag", "FlvFileWriter", "read_flv_file"):
        from . import flvfile

        return getattr(flvfile, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["open_pull", "RtmpPushSession", "RtmpPullSession", "RtmpClientError", "HttpFlvPullSession",
           "HttpFlvError", "HttpStatusError", "TooManyRedirects", "make_ssl_context", "FlvTag", "FlvFileWriter",
           "read_flv_file"]
