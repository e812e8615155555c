"""tools/fuzz.py's server target, briefly: mutated RTMP sessions and HTTP requests over
loopback sockets; the server keeps serving and logs no error."""

import importlib.util
import os

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "fuzz.py")


def test_server_fuzz_smoke():
    spec = importlib.util.spec_from_file_location("srspy_fuzz_tool", _PATH)
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    r = fuzz.run_server(100, 60.0, seed=20261206, out=None, quiet=True)
    assert r["inputs"] == 100
    assert r["findings"] == 0, r["first_finding"]
