"""Port of SRS_OVERWRITE_BY_ENV_*: ``SRS_*`` environment variables override the config.

The directive ``srs.a.b_c`` is overridden by ``SRS_A_B_C``: upper case, dots and
underscores alike become ``_``. Reading that back is ambiguous (is ``HTTP_SERVER_LISTEN``
``http.server_listen`` or ``http_server.listen``?), so names are resolved against the
spec: at each level the longest known directive name wins, falling back to shorter ones.
As in SRS, ``SRS_LOG_TANK`` also means ``srs_log_tank`` (``SRS_SRS_LOG_TANK``).

Vhost directives carry no vhost name (``SRS_VHOST_PLAY_MW_LATENCY``) and apply to every
vhost. Values are strings, validated like the file's; a list directive splits on spaces
(security rules on ``;`` or ``,``). Variables that name nothing srspy knows are ignored
with a warning, except the few ``SRS_*`` that are not directives at all.
"""

from __future__ import annotations

import re
from typing import Mapping

from .build import RULES, Built
from .schema import ANY, LIST, Schema

PREFIX = "SRS_"
ENV_ONLY = "SRS_ENV_ONLY"
# SRS_* variables that are switches of the program, not directives.
NOT_DIRECTIVES = frozenset({ENV_ONLY, "SRS_CONFIG_FILE", "SRS_DAEMON_CHILD"})


def overrides(env: Mapping[str, str], schema: Schema) -> tuple[list[tuple[tuple, str, str]], list[str]]:
    """``[(spec path, value, variable)]`` for the ``SRS_*`` variables, and warnings for the rest."""
    found, warnings = [], []
    for name in sorted(env):
        if not name.startswith(PREFIX) or name in NOT_DIRECTIVES:
            continue
        path = resolve(name, schema)
        if path is None:
            warnings.append(f"env {name}: no directive srspy supports has this name, ignored")
        else:
            found.append((path, env[name], name))
    return found, warnings


def resolve(name: str, schema: Schema) -> tuple[str, ...] | None:
    """The spec path ``SRS_...`` names (vhosts as ``*``), or None."""
    tokens = name[len(PREFIX):].lower().split("_")
    return _walk(schema.tree, tokens) or _walk(schema.tree, ["srs", *tokens])


def _walk(node: dict, tokens: list[str]) -> tuple[str, ...] | None:
    for n in range(len(tokens), 0, -1):
        key, rest = "_".join(tokens[:n]), tokens[n:]
        child = node.get(key)
        if child is None:
            continue
        if not isinstance(child, dict):
            if not rest:
                return (key,)
            continue
        prefix = (key,)
        if ANY in child:
            child, prefix = child[ANY], (key, ANY)
        if rest and (found := _walk(child, rest)):
            return prefix + found
    return None


def apply(out: Built, found: list[tuple[tuple, str, str]], schema: Schema, vhosts_only: bool = False) -> None:
    """Set each override into ``out.data`` (every vhost for ``*``), recording its origin."""
    for spec_path, value, var in found:
        if vhosts_only and spec_path[:2] != ("vhost", ANY):
            continue
        typed = _split(spec_path, value) if schema.kind(spec_path) == LIST else value
        for path in _expand(out.data, spec_path):
            _set(out.data, path, typed)
            out.origin(path, f"env {var}", label=".".join(spec_path))


def _split(spec_path: tuple, value: str) -> list[str]:
    if spec_path[-1] == RULES:
        return [r.strip() for r in re.split(r"[;,]", value) if r.strip()]
    return value.split()


def _expand(data: dict, spec_path: tuple) -> list[tuple]:
    """Concrete paths for a spec path: ``*`` becomes each configured vhost."""
    if ANY not in spec_path:
        return [spec_path]
    i = spec_path.index(ANY)
    group = data.get(spec_path[i - 1])
    names = list(group) if isinstance(group, dict) else []
    return [spec_path[:i] + (n,) + spec_path[i + 1:] for n in names]


def _set(data: dict, path: tuple, value) -> None:
    node = data
    for name in path[:-1]:
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        node = child
    node[path[-1]] = list(value) if isinstance(value, list) else value
