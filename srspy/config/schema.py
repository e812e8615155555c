"""What configspec.ini says about the shape of the config, for the steps before validation.

Port of the knowledge SrsConfig keeps in its getters and check_normal_config: which
directives are blocks, which take a list of values and which take exactly one. The tree
builder and the env overrides ask this; validation itself is configobj's.

Paths are tuples of names; inside ``vhost`` the vhost's name is spelled ``*``, as in
``("vhost", "*", "play", "mw_latency")``.
"""

from __future__ import annotations

import functools
import os

from configobj import ConfigObj, Section

SPEC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configspec.ini")

SECTION, LIST, SCALAR = "section", "list", "scalar"
ANY = "*"
_MANY = "__many__"


class Schema:
    """The spec as a tree of kinds: ``{name: SECTION-subtree | LIST | SCALAR}``."""

    def __init__(self, spec_text: str):
        self.text = spec_text
        self.tree = _kinds(self.configspec())

    def configspec(self) -> ConfigObj:
        """A fresh parsed spec for one validation (configobj annotates what it validates)."""
        return ConfigObj(self.text.splitlines(), _inspec=True, list_values=False, interpolation=False)

    def node(self, path: tuple[str, ...]):
        """The subtree or kind at ``path`` (names, or ``*`` for a vhost), or None if unknown."""
        node = self.tree
        for name in path:
            if not isinstance(node, dict) or name not in node:
                return None
            node = node[name]
        return node

    def kind(self, path: tuple[str, ...]) -> str | None:
        node = self.node(path)
        return SECTION if isinstance(node, dict) else node

    def is_named(self, path: tuple[str, ...]) -> bool:
        """Whether ``path`` holds named blocks (``vhost NAME { }``)."""
        node = self.node(path)
        return isinstance(node, dict) and ANY in node


@functools.cache
def schema() -> Schema:
    """The schema of configspec.ini, read once."""
    with open(SPEC_PATH, encoding="utf-8") as f:
        return Schema(f.read())


def _kinds(section: Section) -> dict:
    out: dict = {}
    for name in section.scalars:
        check = str(section[name])
        fun = check.split("(", 1)[0].strip()
        out[name] = LIST if fun.endswith("_list") or fun in ("list", "force_list") else SCALAR
    for name in section.sections:
        out[ANY if name == _MANY else name] = _kinds(section[name])
    return out
