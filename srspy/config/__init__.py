"""Port of SrsConfig: load an SRS-syntax config, apply ``SRS_*`` env overrides, validate it.

    cfg = load_config("conf/srs.conf")
    cfg.listens()                           # ["1935"]
    cfg.get("http_server.listen")           # "8080"
    cfg.vhost_get("live.example.com", "play.mw_latency")   # 350, a default for any vhost

The steps, each in its own module:

1. parser: SRS syntax -> directive tree, ``include`` inlined (pure).
2. compat: SRS1/2 spellings rewritten; SRS features srspy lacks are warned about and dropped.
3. build: tree -> nested dict, with a side table path -> file:line.
4. env: ``SRS_*`` overrides set into the dict.
5. configobj + validate against configspec.ini: types, ranges, and every default.
   All errors (bad values, unknown directives) are reported at once, one per line,
   each naming its file and line, in one ConfigError.

Accessors are one-line lookups into :attr:`Config.root`, a plain nested dict of
bool/int/float/str/list values. Load once, read often; nothing here is per message.
"""

from __future__ import annotations

import os
from typing import Mapping

from configobj import ConfigObj, flatten_errors, get_extra_values
from loguru import logger
from validate import Validator

from ..errors import ConfigError
from . import env as env_mod
from .build import Built, Origin, build, dotted
from .checks import FUNCTIONS, ItemError
from .compat import transform
from .parser import Directive, parse_file, parse_text
from .schema import schema

__all__ = ["Config", "ConfigError", "DEFAULT_VHOST", "load_config"]

DEFAULT_VHOST = "__defaultVhost__"
_TEMPLATE = "vhost"  # the name a not-configured vhost is validated under
_MISSING = object()


class Config:
    """Port of SrsConfig: the validated config (:attr:`root`) and SRS-named lookups.

    ``root`` follows configspec.ini: ``root["listen"]`` is a list of ``[ip:]port`` strings,
    ``root["http_server"]["enabled"]`` a bool, ``root["vhost"][name]["play"]["mw_latency"]``
    an int, and so on; every key of the spec is present, with its default when not set.
    """

    def __init__(self, root: dict, path: str | None, warnings: list[str], vhost_defaults: dict, source: dict):
        self.root = root
        self.path = path
        self.warnings = warnings
        self._vhost_defaults = vhost_defaults
        self._source = source

    def __repr__(self) -> str:
        return f"Config(path={self.path!r}, vhosts={self.vhost_names()!r})"

    # -- global --------------------------------------------------------------------------------
    def get(self, path: str | tuple, default=_MISSING):
        """The value at a dotted path (``"http_api.auth.enabled"``) or a tuple of names.

        Vhost names may hold dots: reach vhosts with :meth:`vhost_get` or a tuple path.
        Raises KeyError for a path the config lacks, unless ``default`` is given.
        """
        return _lookup(self.root, path, default)

    def listens(self) -> list[str]:
        """Port of SrsConfig::get_listens: the RTMP ``[ip:]port`` endpoints."""
        return list(self.root["listen"])

    # -- vhosts ----------------------------------------------------------------------------------
    def vhost_names(self) -> list[str]:
        """The configured vhosts, in file order."""
        return list(self.root["vhost"])

    def vhost(self, name: str) -> dict | None:
        """Port of SrsConfig::get_vhost(name, false): the vhost called exactly ``name``."""
        return self.root["vhost"].get(name)

    def resolve_vhost(self, name: str) -> tuple[str, dict] | None:
        """Port of SrsConfig::get_vhost(name, true): ``name``, else the default vhost, else None."""
        for candidate in (name, DEFAULT_VHOST):
            found = self.root["vhost"].get(candidate)
            if found is not None:
                return candidate, found
        return None

    def vhost_get(self, vhost: str, path: str | tuple, default=_MISSING):
        """A vhost's setting (``"play.mw_latency"``); a vhost not configured reads the defaults."""
        section = self.root["vhost"].get(vhost, self._vhost_defaults)
        return _lookup(section, path, default)

    # -- reload ----------------------------------------------------------------------------------
    def reload(self) -> "Config":
        """Port of SrsConfig::reload: load again from the same file (or text) and env."""
        return load_config(**self._source)


def is_edge(vconf: dict | None) -> bool:
    """A vhost in SRS's edge mode: ``cluster { mode remote; origin ...; }``."""
    return bool(vconf) and vconf["cluster"]["mode"] == "remote" and bool(vconf["cluster"]["origin"])


def load_config(path: str | None = None, text: str | None = None, env: Mapping | None = None,
                env_only: bool = False, name: str = "<text>") -> Config:
    """Load a config from ``path``, from ``text`` (named ``name`` in messages), or from env only.

    Give ``path`` or ``text``; ``text`` wins when both are given. Relative includes are
    looked up beside the including file, then in the working directory (as SRS does).
    ``env`` defaults to ``os.environ``; ``SRS_ENV_ONLY=on`` in it means ``env_only``. With
    ``env_only`` there is no file: the config is the spec's defaults, the ``SRS_*``
    variables and a ``__defaultVhost__``. Raises ConfigError with every problem found.
    """
    source = dict(path=path, text=text, env=env, env_only=env_only, name=name)
    environ = os.environ if env is None else env
    env_only = env_only or environ.get(env_mod.ENV_ONLY) == "on"
    tree = _parse(path, text, env_only, name)
    transform(tree)
    sch = schema()
    built = build(tree, sch)
    if env_only:
        built.data.setdefault("vhost", {}).setdefault(DEFAULT_VHOST, {})
    found, env_warnings = env_mod.overrides(environ, sch)
    env_mod.apply(built, found, sch)
    root = _validate(built)
    vhost_defaults = _vhost_defaults(found)
    _fill_chunk_size(root, vhost_defaults)
    warnings = built.warnings + env_warnings
    for w in warnings:
        logger.warning(w)
    abspath = os.path.abspath(path) if path and text is None and not env_only else None
    return Config(root, abspath, warnings, vhost_defaults, source)


def _parse(path: str | None, text: str | None, env_only: bool, name: str) -> Directive:
    include_dirs = [os.getcwd()]
    if env_only:
        return Directive("", [], 0, "<env>", block=True)
    if text is not None:
        return parse_text(text, name, include_dirs)
    if path:
        return parse_file(path, include_dirs)
    raise ConfigError("no config: give a file, a text, or use env only")


def _validate(built: Built) -> dict:
    """Port of SrsConfig::check_config: configobj + validate, every error mapped to its line."""
    cfg = ConfigObj(built.data, configspec=schema().configspec(), interpolation=False)
    result = cfg.validate(Validator(FUNCTIONS), preserve_errors=True)
    if result is not True:
        for sections, key, err in flatten_errors(cfg, result):
            _report_invalid(built, tuple(sections), key, err)
    for sections, key in get_extra_values(cfg):
        path = tuple(sections) + (key,)
        built.error(_origin(built, path), f'unknown directive "{dotted(path)}"')
    if not built.errors:
        _check_outputs(built, cfg)
    if built.errors:
        lines = list(dict.fromkeys(msg for _, msg in sorted(built.errors, key=lambda e: e[0])))
        raise ConfigError("\n".join(lines))
    return cfg.dict()


def _check_outputs(built: Built, cfg) -> None:
    """SRS's check "HLS with HTTP-TS": HLS and an http_remux ``.ts`` mount in one vhost
    both write the stream's TS; SRS refuses the config (one of them must go)."""
    for name, vhost in (cfg.get("vhost") or {}).items():
        remux = vhost["http_remux"]
        if not vhost["hls"]["enabled"] or not remux["enabled"]:
            continue
        for mount in remux["mount"]:
            if mount.endswith(".ts"):
                path = ("vhost", name, "http_remux", "mount")
                built.error(_origin(built, path), f'vhost "{name}": hls and the http_remux mount "{mount}" '
                                                  f'(HTTP-TS) cannot be enabled together; turn one of them off')


def _report_invalid(built: Built, sections: tuple, key, err) -> None:
    path = sections + ((key,) if key is not None else ())
    if isinstance(err, ItemError):
        origin = built.origins.get(path + (err.index,)) or _origin(built, path)
    else:
        origin = _origin(built, path)
    what = err if err is not False else "a value is required"
    built.error(origin, f'invalid value for "{origin.label or dotted(path)}": {what}')


def _origin(built: Built, path: tuple) -> Origin:
    """Where ``path`` came from: its own origin, else its nearest known parent's."""
    for n in range(len(path), 0, -1):
        found = built.origins.get(path[:n])
        if found is not None:
            return found
    return Origin("<config>", len(built.origins))


def _vhost_defaults(found: list) -> dict:
    """The settings of a vhost that is not configured: spec defaults + vhost-level env."""
    built = Built(data={"vhost": {_TEMPLATE: {}}})
    env_mod.apply(built, found, schema(), vhosts_only=True)
    return _validate(built)["vhost"][_TEMPLATE]


def _fill_chunk_size(root: dict, vhost_defaults: dict) -> None:
    """Port of SrsConfig::get_chunk_size(vhost): a vhost without chunk_size uses the global one."""
    for section in [*root["vhost"].values(), vhost_defaults]:
        if section["chunk_size"] is None:
            section["chunk_size"] = root["chunk_size"]


def _lookup(section: dict, path: str | tuple, default):
    node = section
    for name in (path.split(".") if isinstance(path, str) else path):
        if not isinstance(node, dict) or name not in node:
            if default is _MISSING:
                raise KeyError(f'no directive "{dotted(path) if not isinstance(path, str) else path}"')
            return default
        node = node[name]
    return node
