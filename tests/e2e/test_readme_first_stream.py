"""The README's "A first stream" runs as written (on free ports instead of 1935/8080/1985)."""

import os
import re
import sys
from pathlib import Path

import pytest
from gevent import subprocess
from helpers.media import ffprobe, streams_by_type
from helpers.net import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]


def first_stream_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## A first stream"):]
    section = section[:section.index("\n## ", 4)]
    block = [line[4:] for line in section.splitlines() if line.startswith("    ")]
    lines, cur = [], ""
    for line in block:  # join the continued lines
        cur += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            lines.append(cur)
            cur = ""
    return lines


def test_first_stream_as_written(tmp_path):
    lines = first_stream_lines()
    assert lines[0].startswith("srspy &") and any("testsrc2" in ln for ln in lines)
    assert not any("input.flv" in ln for ln in lines)
    rtmp, http, api = free_port(), free_port(), free_port()
    script = ["set -e", "trap 'kill $(jobs -p) 2>/dev/null' EXIT"]
    for line in lines:
        if line.startswith("ffplay "):
            continue  # needs a desktop; the ffprobe and ffmpeg lines play the same URL without one
        line = re.sub(r"^srspy\b", f"{sys.executable} -m srspy", line)
        line = line.replace("rtmp://127.0.0.1/", f"rtmp://127.0.0.1:{rtmp}/").replace(":8080/", f":{http}/")
        script.append(line)
    env = dict(os.environ, PYTHONPATH=str(ROOT), SRS_LISTEN=str(rtmp), SRS_HTTP_SERVER_LISTEN=str(http),
               SRS_HTTP_API_LISTEN=str(api), SRS_PID=str(tmp_path / "srspy.pid"))
    run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    probed = run.stdout.decode()
    assert "codec_name=h264" in probed and "codec_name=aac" in probed, probed
    st = streams_by_type(ffprobe(str(tmp_path / "ten-seconds.flv")))
    assert (st["video"]["width"], st["video"]["height"]) == (1280, 720)
    assert float(ffprobe(str(tmp_path / "ten-seconds.flv"))["format"]["duration"]) >= 9
