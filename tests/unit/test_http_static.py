"""FileServer's pure parts: byte ranges, content types, path resolution under the root."""

import os

import pytest

from srspy.http.static import FileServer, content_type, parse_range


@pytest.mark.parametrize("value, size, want", [
    (None, 100, None),
    ("bytes=0-9", 100, (0, 9)),
    ("bytes=90-", 100, (90, 99)),
    ("bytes=90-200", 100, (90, 99)),
    ("bytes=-10", 100, (90, 99)),
    ("bytes=-200", 100, (0, 99)),
    ("BYTES = 5-5", 100, None),  # malformed: ignored, whole file
    ("bytes=5-3", 100, None),
    ("bytes=0-1,5-6", 100, None),  # several ranges: whole file
    ("bytes=-", 100, None),
    ("items=0-1", 100, None),
    ("bytes=100-", 100, False),  # unsatisfiable
    ("bytes=-0", 100, False),
    ("bytes=0-", 0, False),
])
def test_parse_range(value, size, want):
    assert parse_range(value, size) == want


@pytest.mark.parametrize("name, ctype", [
    ("a.flv", "video/x-flv"),
    ("a.m3u8", "application/vnd.apple.mpegurl"),
    ("a.ts", "video/MP2T"),
    ("a.MP4", "video/mp4"),
    ("a.js", "text/javascript; charset=utf-8"),
    ("a.css", "text/css; charset=utf-8"),
    ("a.html", "text/html; charset=utf-8"),
    ("a.wasm", "application/wasm"),
    ("noext", "application/octet-stream"),
])
def test_content_type(name, ctype):
    assert content_type(name) == ctype


def test_resolve_stays_under_root(tmp_path):
    root = tmp_path / "html"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("i")
    (root / "sub" / "index.html").write_text("s")
    (root / "a.txt").write_text("a")
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", root / "out")
    os.symlink(tmp_path, root / "outdir")
    fs = FileServer(str(root))
    real = os.path.realpath
    assert fs.resolve("/a.txt") == real(root / "a.txt")
    assert fs.resolve("/") == real(root / "index.html")
    assert fs.resolve("/sub") == fs.resolve("/sub/") == real(root / "sub" / "index.html")
    for bad in ("/../secret", "/sub/../../secret", "/out", "/outdir/secret", "/missing", "/a.txt\x00.flv"):
        assert fs.resolve(bad) is None, bad
    prefixed = FileServer(str(root), prefix="/static/")
    assert prefixed.resolve("/static/a.txt") == real(root / "a.txt")


def test_resolve_plain_names_and_links_inside_the_root(tmp_path):
    """Plain names take the short way (lstat per component under the root); a link, a
    dot component, an empty one or a directory the long way (realpath); both agree."""
    html = tmp_path / "html"
    (html / "live").mkdir(parents=True)
    (html / "live" / "s-1.ts").write_bytes(b"G")
    (html / "live" / "index.html").write_text("i")
    os.symlink(html / "live" / "s-1.ts", html / "live" / "alias.ts")
    os.symlink(html / "live", html / "linked")
    os.symlink(html, tmp_path / "root-link")
    os.mkfifo(html / "live" / "pipe")
    real = os.path.realpath
    for root in (html, tmp_path / "root-link"):  # a root given through a link is resolved once
        fs = FileServer(str(root))
        seg = real(html / "live" / "s-1.ts")
        for path in ("/live/s-1.ts", "/live/alias.ts", "/linked/s-1.ts", "/live//s-1.ts", "/live/./s-1.ts",
                     "//live/s-1.ts"):
            assert fs.resolve(path) == seg, path
        assert fs.resolve("/live") == fs.resolve("/linked/") == real(html / "live" / "index.html")
        for missing in ("/live/s-2.ts", "/live/s-1.ts/x", "/live/pipe", "/nothing/s-1.ts"):
            assert fs.resolve(missing) is None, missing
