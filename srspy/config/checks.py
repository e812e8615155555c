"""The validate checks configspec.ini uses beyond validate's own (integer, float, string, ...).

Each takes the raw value (a str, or a list of str for list directives) and returns it
converted, or raises :class:`validate.ValidateError` with a message that reads well after
``invalid value for "path":``. A check over a list raises :class:`ItemError`, which tells
which item failed, so the loader can point at that item's own line.
"""

from __future__ import annotations

import ipaddress
import re

from validate import ValidateError, VdtTypeError, is_float, is_integer


class ItemError(ValidateError):
    """Item ``index`` of a list value is invalid."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


def onoff(value) -> bool:
    """SRS's booleans: ``on`` or ``off`` (SRS reads anything but "on" as off; srspy refuses)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("on", "off"):
        return value == "on"
    raise ValidateError(f'the value "{value}" is not on or off.')


def choice(value, *options: str) -> str:
    """One of the words listed in the spec (validate's ``option``, with a clearer message)."""
    if isinstance(value, str) and value in options:
        return value
    raise ValidateError(f'the value "{value}" is not one of: {", ".join(options)}.')


def endpoint(value) -> str:
    """Port of srs_parse_endpoint's accepted forms: ``port``, ``ip:port``, ``[ipv6]:port``.

    Returns the string as written; srspy.listener parses it when it binds.
    """
    if not isinstance(value, str):
        raise ValidateError(f'the value "{value}" is not one [ip:]port.')
    problem = _endpoint_problem(value)
    if problem:
        raise ValidateError(problem)
    return value


def endpoint_list(value) -> list[str]:
    """One or more endpoints, as ``listen 1935 [::]:1935;``."""
    items = _as_list(value)
    if not items:
        raise ValidateError("at least one [ip:]port is needed.")
    for i, item in enumerate(items):
        problem = _endpoint_problem(item)
        if problem:
            raise ItemError(i, problem)
    return items


_RULE_HELP = 'expected "allow|deny publish|play all|IP|CIDR"'


def rule_list(value) -> list[str]:
    """Port of SrsSecurity's rule syntax: ``allow|deny publish|play all|IP|CIDR``, in order."""
    items = _as_list(value)
    for i, item in enumerate(items):
        parts = item.split()
        ok = (len(parts) == 3 and parts[0] in ("allow", "deny") and parts[1] in ("publish", "play")
              and (parts[2] == "all" or _is_ip_or_cidr(parts[2])))
        if not ok:
            raise ItemError(i, f'the rule "{item}" is invalid, {_RULE_HELP}.')
    return items


_PLUGIN = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*(:[A-Za-z_][\w]*)?$")


def plugin_list(value) -> list[str]:
    """srspy plugins: ``python.module[:function]`` names, called with the server at start."""
    items = _as_list(value)
    for i, item in enumerate(items):
        if not _PLUGIN.match(item):
            raise ItemError(i, f'the plugin "{item}" is not python.module[:function].')
    return items


def integer(value, *args, **kwargs) -> int:
    """validate's ``integer`` (with min/max), saying what was wanted when the type is wrong."""
    try:
        return is_integer(value, *args, **kwargs)
    except VdtTypeError:
        raise ValidateError(f'the value "{value}" is not an integer.') from None


def number(value, *args, **kwargs) -> float:
    """validate's ``float`` (with min/max), saying what was wanted when the type is wrong."""
    try:
        return is_float(value, *args, **kwargs)
    except VdtTypeError:
        raise ValidateError(f'the value "{value}" is not a number.') from None


FUNCTIONS = {
    "integer": integer,
    "float": number,
    "onoff": onoff,
    "choice": choice,
    "endpoint": endpoint,
    "endpoint_list": endpoint_list,
    "rule_list": rule_list,
    "plugin_list": plugin_list,
}


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValidateError(f'the value "{value}" is not a list of words.')


def _endpoint_problem(text: str) -> str | None:
    """Why ``text`` is not ``[ip:]port``, or None when it is."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    if not port.isdigit() or not port.isascii():
        return f'the value "{text}" is not [ip:]port.'
    if int(port) > 65535:
        return f'the port "{port}" is out of range 0..65535.'
    if sep and not _is_listen_host(host):
        return f'the host "{host}" in "{text}" is not an IPv4 or IPv6 address.'
    return None


def _is_listen_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_ip_or_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True
