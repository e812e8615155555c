"""srspy as a client library: RTMP push/pull and HTTP-FLV pull sessions, FLV files, tools.

    from srspy.client import RtmpPushSession, RtmpPullSession, HttpFlvPullSession, open_pull
"""

from __future__ import annotations

from .flvfile import FlvFileWriter, FlvTag, read_flv_file
from .httpflv import HttpFlvError, HttpFlvPullSession, HttpStatusError, TooManyRedirects, make_ssl_context
from .rtmp import RtmpClientError, RtmpPullSession, RtmpPushSession
from .url import parse_url


def open_pull(url: str, on_message=None, **kw):
    """An RTMP or HTTP-FLV pull session for ``url``, by its scheme (not started).

    Options that only one protocol has (``complex_handshake``; ``verify``,
    ``max_redirects``, ``headers``) are dropped for the other.
    """
    scheme = parse_url(url).scheme
    if scheme in ("http", "https"):
        kw.pop("complex_handshake", None)
        return HttpFlvPullSession(url, on_message, **kw)
    for k in ("verify", "max_redirects", "headers"):
        kw.pop(k, None)
    return RtmpPullSession(url, on_message, **kw)


__all__ = ["open_pull", "RtmpPushSession", "RtmpPullSession", "RtmpClientError", "HttpFlvPullSession",
           "HttpFlvError", "HttpStatusError", "TooManyRedirects", "make_ssl_context", "FlvTag", "FlvFileWriter",
           "read_flv_file"]
