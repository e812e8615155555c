"""Socket helpers shared by the RTMP and HTTP connections (gevent sockets)."""

from __future__ import annotations

from socket import MSG_DONTWAIT

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
