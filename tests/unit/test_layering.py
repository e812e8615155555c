"""The package's layers (docs/architecture.md): every import of srspy's own modules points
down, rtmp/ and http/ never import each other, kernel/ imports nothing of ours but errors,
and nothing of ours is imported inside a function (cli.py's main aside: gevent is patched
before anything else is imported there)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "srspy"

# Bottom first. A module may import its own layer and the layers below.
LAYERS = [
    ("base", ["srspy", "srspy.errors", "srspy.log", "srspy.netio", "srspy.request", "srspy.session",
              "srspy.listener", "srspy.config"]),
    ("kernel", ["srspy.kernel", "srspy.hls"]),  # pure: codecs, the HLS segmenter and playlists
    ("protocols", ["srspy.rtmp", "srspy.http"]),
    ("live", ["srspy.live", "srspy.dvr"]),
    ("client", ["srspy.client"]),
    ("ops", ["srspy.stat", "srspy.hooks", "srspy.security"]),
    ("app", ["srspy.app", "srspy.plugins"]),
    ("top", ["srspy.server", "srspy.cli", "srspy.__main__"]),
]
LAZY_OK = {"srspy.cli", "srspy.__main__"}


def _module_name(path: Path, pkg: Path) -> str:
    rel = path.relative_to(pkg.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> tuple[int, str]:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > len(best[1])):
                best = (i, p)
    if best is None:
        raise AssertionError(f"{module}: in no layer of docs/architecture.md")
    return best


def _imports(path: Path, module: str):
    """(imported srspy module, line, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    in_func = {id(n) for f in funcs for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == "srspy" or name.startswith("srspy."):
                yield name, node.lineno, id(node) in in_func


def _real(name: str, pkg: Path) -> str | None:
    """``name`` if it is one of our modules or packages, else None (an attribute imported)."""
    rel = name.split(".")[1:]
    p = pkg.joinpath(*rel) if rel else pkg
    return name if (p.with_suffix(".py").exists() or (p / "__init__.py").exists()) else None


def _violations(pkg: Path = PKG):
    out = []
    for path in sorted(pkg.rglob("*.py")):
        module = _module_name(path, pkg)
        layer, prefix = _layer(module)
        for name, line, lazy in _imports(path, module):
            target = _real(name, pkg)
            if target is None:
                continue
            where = f"{path.relative_to(pkg.parent)}:{line}"
            if lazy and module not in LAZY_OK:
                out.append(f"{where}: {target} imported inside a function")
            tlayer, tprefix = _layer(target)
            if tlayer > layer:
                out.append(f"{where}: {module} ({LAYERS[layer][0]}) imports {target} ({LAYERS[tlayer][0]}): up")
            if {prefix, tprefix} == {"srspy.rtmp", "srspy.http"}:
                out.append(f"{where}: {module} imports {target}: rtmp/ and http/ never import each other")
            if prefix == "srspy.kernel" and tprefix != "srspy.kernel" and target != "srspy.errors":
                out.append(f"{where}: kernel/ imports {target}: only srspy.errors is allowed")
    return out


def test_imports_point_down():
    assert _violations() == []


@pytest.mark.parametrize("source, expected", [
    ("from ..app import edge\n", "imports srspy.app.edge (app): up"),
    ("from ..http import mux\n", "rtmp/ and http/ never import each other"),
    ("def f():\n    from .. import errors\n", "imported inside a function"),
    ("from ..live import hub\n", "imports srspy.live.hub (live): up"),
])
def test_the_check_sees_a_wrong_arrow(tmp_path, source, expected):
    """The walker itself, on a small tree shaped like the package: a module in rtmp/ with
    a wrong import is reported; the same tree without it is clean."""
    pkg = tmp_path / "srspy"
    for mod in ("__init__", "errors", "rtmp/__init__", "http/__init__", "http/mux", "live/__init__", "live/hub",
                "app/__init__", "app/edge"):
        (pkg / mod).with_suffix(".py").parent.mkdir(parents=True, exist_ok=True)
        (pkg / mod).with_suffix(".py").write_text("")
    assert _violations(pkg) == []
    (pkg / "rtmp" / "probe.py").write_text(source)
    assert any(expected in v for v in _violations(pkg))
