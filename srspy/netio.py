"""Socket helpers shared by the RTMP and HTTP connections (gevent sockets)."""

from __future__ import annotations

import os
from socket import MSG_DONTWAIT

from gevent.ssl import SSLSocket

IOV_MAX = 1024


def sendmsg_all(sock, bufs: list, size: int = -1) -> int:
    """Send every buffer in ``bufs`` with as few ``sendmsg`` calls as the kernel allows.

    ``sendmsg`` may send part of the data: advance past what went out (whole buffers,
    then a memoryview into the first unfinished one) and go on. ``size``, when the
    caller knows it, spares summing the lengths. Returns the byte count.
    """
    total = 0
    i = 0
    n = len(bufs)
    if n <= IOV_MAX:
        sent = sock.sendmsg(bufs)
        total = sent
        # fast path: everything went out in one call
        if size < 0:
            size = sum(map(len, bufs))
        if sent == size:
            return total
        views = bufs
    else:
        views = bufs
        sent = 0
    # slow path: partial send or too many iovecs
    views = [memoryview(b) for b in views]
    while True:
        while i < n and sent >= len(views[i]):
            sent -= len(views[i])
            i += 1
        if i >= n:
            return total
        if sent:
            views[i] = views[i][sent:]
        sent = sock.sendmsg(views[i : i + IOV_MAX])
        total += sent


def send_nowait(sock, bufs: list, size: int, backlog: list | None = None) -> tuple:
    """ONE ``sendmsg`` that never waits, for a caller that must not yield (the hub
    writing for a parked player). Returns ``(sent, rest)``: ``rest`` is None when all
    ``size`` bytes went out, else what is left as one copied buffer (the callers' headers
    live in buffers they reuse for their next batch). With a ``backlog`` (what an earlier
    call left, not sent yet) nothing is sent: ``bufs`` is copied behind it, in order.
    Errors are not raised here: the owner's next blocking send of ``rest`` meets them
    again, in the owner's greenlet."""
    if backlog is not None:
        backlog.append(b"".join(bufs))
        return 0, backlog
    if len(bufs) > IOV_MAX:
        return 0, [b"".join(bufs)]
    try:
        total = sent = sock.sendmsg(bufs, (), MSG_DONTWAIT)
    except OSError:  # EAGAIN, or an error the owner's next send raises again
        return 0, [b"".join(bufs)]
    if sent == size:
        return sent, None
    rest = []
    for i, b in enumerate(bufs):
        n = len(b)
        if sent >= n:
            sent -= n
            continue
        rest.append(memoryview(b)[sent:] if sent else b)
        rest.extend(bufs[i + 1:])
        break
    return total, [b"".join(rest)]


def sendfile_all(sock, file, offset: int, count: int) -> int:
    """Send ``count`` bytes of ``file`` (a file object or a descriptor) from ``offset`` with ``os.sendfile``: zero-copy, and
    cooperative: on EAGAIN the greenlet waits for the socket to be writable (bounded by the
    socket's timeout, which raises ``socket.timeout`` as any of its sends would). Returns
    the bytes sent, fewer than ``count`` only when the file ended first.

    gevent's own ``socket.sendfile`` never calls ``os.sendfile`` (it could block): it reads
    8 KiB at a time into Python and sends that, about 70 reads and sends per 570 kB HLS
    segment. A socket that is not a plain gevent socket (TLS, or one without gevent's wait)
    goes that way still.
    """
    wait = getattr(sock, "_wait", None)
    event = getattr(sock, "_write_event", None)
    if wait is None or event is None or isinstance(sock, SSLSocket):
        if isinstance(file, int):
            file = open(file, "rb", buffering=0, closefd=False)  # noqa: SIM115 - the caller closes the descriptor
        return sock.sendfile(file, offset, count) if count else 0
    out, src = sock.fileno(), (file if isinstance(file, int) else file.fileno())
    total = 0
    while count > 0:
        try:
            n = os.sendfile(out, src, offset, count)
        except BlockingIOError:
            wait(event)
            continue
        except InterruptedError:
            continue
        if not n:
            break  # the file is shorter than it was
        total += n
        offset += n
        count -= n
    return total
