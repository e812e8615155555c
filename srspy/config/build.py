"""Port of SrsConfig's directive lookups, done once: the directive tree becomes a nested dict.

The dict is what configobj validates::

    listen 1935 1936;            -> {"listen": ["1935", "1936"]}
    daemon off;                  -> {"daemon": "off"}
    vhost v { play { ... } }     -> {"vhost": {"v": {"play": {...}}}}
    security { allow play all; } -> {"security": {"rules": ["allow play all"]}}

The spec's kinds decide the shape: a list directive keeps all its arguments, a scalar one
takes exactly one, a block becomes a dict. A directive the spec does not know goes into the
dict as well, so that configobj's ``get_extra_values`` reports it; an SRS directive srspy
does not implement (compat.UNSUPPORTED) is dropped with a warning. When a directive is
repeated, the first one counts, as with SrsConfDirective::get, and the others are warned
about; security's ``allow``/``deny`` rules are the exception: all of them count, in order.

Every value's origin is kept in :attr:`Built.origins` (path -> :class:`Origin`), so errors
found later, by validation, can name the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .compat import is_unsupported
from .parser import Directive
from .schema import ANY, LIST, SCALAR, SECTION, Schema

RULE_NAMES = ("allow", "deny")
RULES = "rules"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value came from: ``where`` is ``FILE:LINE`` or ``env NAME``; ``order`` sorts errors."""

    where: str
    order: int
    label: str = ""  # the directive's name in messages when not the value's own path (env)


@dataclass
class Built:
    data: dict = field(default_factory=dict)
    origins: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)  # (order, message)
    warnings: list = field(default_factory=list)

    def origin(self, path: tuple, where: str, label: str = "") -> Origin:
        o = Origin(where, len(self.origins), label)
        self.origins[path] = o
        return o

    def error(self, origin: Origin, message: str) -> None:
        self.errors.append((origin.order, f"{origin.where}: {message}"))


def dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def build(root: Directive, schema: Schema) -> Built:
    """Turn the (transformed) tree into the dict to validate."""
    out = Built()
    _section(out, schema, root, (), (), out.data)
    return out


def _section(out: Built, schema: Schema, block: Directive, path: tuple, spec: tuple, into: dict) -> None:
    is_security = spec[-1:] == ("security",) and spec[:1] == ("vhost",)
    for d in block.children:
        p, sp = path + (d.name,), spec + (d.name,)
        if is_unsupported(sp):
            out.warnings.append(f'{d.where}: directive "{dotted(p)}" is not supported by srspy yet, ignored')
        elif is_security and d.name in RULE_NAMES and not d.block:
            _rule(out, d, path, into)
        elif is_security and d.name == RULES:
            out.error(out.origin(p, d.where), f'unknown directive "{dotted(p)}"')
        elif schema.is_named(sp):
            _named(out, schema, d, p, sp, into)
        elif d.name in into:
            _duplicate(out, d, p, known=schema.kind(sp) is not None)
        else:
            _directive(out, schema, d, p, sp, into)


def _directive(out: Built, schema: Schema, d: Directive, p: tuple, sp: tuple, into: dict) -> None:
    kind = schema.kind(sp)
    origin = out.origin(p, d.where)
    if kind == SECTION:
        if not d.block or d.args:
            out.error(origin, f'directive "{dotted(p)}" must be a block "{d.name} {{ ... }}" without arguments')
            return
        into[d.name] = {}
        _section(out, schema, d, p, sp, into[d.name])
    elif kind in (LIST, SCALAR):
        if d.block:
            out.error(origin, f'directive "{dotted(p)}" cannot have a block')
        elif kind == SCALAR and len(d.args) != 1:
            out.error(origin, f'directive "{dotted(p)}" takes one value, got {len(d.args)}')
        else:
            into[d.name] = list(d.args) if kind == LIST else d.args[0]
    else:  # unknown: kept for get_extra_values to report
        into[d.name] = _unknown_value(d)


def _named(out: Built, schema: Schema, d: Directive, p: tuple, sp: tuple, into: dict) -> None:
    """``vhost NAME { }``: one dict per name under ``into[d.name]``."""
    group = into.setdefault(d.name, {})
    if not d.block or len(d.args) != 1:
        out.error(out.origin(p + (len(group),), d.where),
                  f'directive "{dotted(p)}" must be "{d.name} NAME {{ ... }}" with one name')
        return
    name = d.args[0]
    if name in group:
        first = out.origins[p + (name,)].where
        out.warnings.append(f'{d.where}: duplicate "{d.name} {name}" ignored, the one at {first} is used')
        return
    out.origin(p + (name,), d.where)
    group[name] = {}
    _section(out, schema, d, p + (name,), sp + (ANY,), group[name])


def _rule(out: Built, d: Directive, path: tuple, into: dict) -> None:
    rules = into.setdefault(RULES, [])
    if not rules:
        out.origin(path + (RULES,), d.where)
    out.origin(path + (RULES, len(rules)), d.where)
    rules.append(" ".join([d.name, *d.args]))


def _duplicate(out: Built, d: Directive, p: tuple, known: bool) -> None:
    if known:
        first = out.origins[p].where
        out.warnings.append(f'{d.where}: duplicate directive "{dotted(p)}" ignored, the one at {first} is used')


def _unknown_value(d: Directive):
    if d.block:
        return {}
    return d.args[0] if len(d.args) == 1 else list(d.args)
