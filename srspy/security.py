"""Port of SrsSecurity and SrsRefer: who may publish or play.

``security { enabled on; deny publish 1.2.3.4; allow play all; allow publish 10.0.0.0/8; }``
works as SRS's srs_app_security.cpp:

1. security disabled: everyone may do anything;
2. a ``deny`` rule for the action matching the ip refuses (SRS code 1053);
3. an ``allow`` rule for the action matching the ip admits;
4. nothing matched: refused when there is any ``allow`` rule (for any action) or no rule
   at all (SRS code 1054); admitted when there are only ``deny`` rules.

A rule's target is ``all``, an exact ip, or a CIDR. SRS matches IPv4 CIDRs only and
other targets as exact strings; srspy compares addresses, so IPv6 CIDRs work too.

``refer { enabled on; all ossrs.net; play a.com; publish b.com; }`` checks the client's
pageUrl as SrsRefer does: its host (scheme, path and port removed) must end with one of
the listed names, found as SRS's ``find`` does (first occurrence, at the very end).
``all`` applies to every client (SRS checks it at connect), ``play``/``publish`` to that
action; an empty list is not checked. A refusal is SRS code 2015.

Pure: no sockets, no clock. The connections call :func:`check` with their vhost config.
"""

from __future__ import annotations

import ipaddress

from .errors import AccessDenied

ERROR_SYSTEM_SECURITY = 1052
ERROR_SYSTEM_SECURITY_DENY = 1053
ERROR_SYSTEM_SECURITY_ALLOW = 1054
ERROR_RTMP_ACCESS_DENIED = 2015

ACTIONS = ("play", "publish")


def ip_match(target: str, ip: str) -> bool:
    """True when the rule target (``all``, an ip, a CIDR) covers ``ip``."""
    if target == "all" or target == ip:
        return True
    try:
        addr = ipaddress.ip_address(ip)
        if "/" in target:
            return addr in ipaddress.ip_network(target, strict=False)
        return addr == ipaddress.ip_address(target)
    except ValueError:
        return False


def parse_rules(rules) -> list[tuple[str, str, str]]:
    """``["allow play all", ...]`` -> ``[("allow", "play", "all"), ...]``; malformed ones dropped."""
    out = []
    for r in rules or []:
        parts = r.split() if isinstance(r, str) else list(r)
        if len(parts) >= 3 and parts[0] in ("allow", "deny"):
            out.append((parts[0], parts[1], parts[2]))
    return out


def security_check(sec: dict | None, action: str, ip: str) -> None:
    """Port of SrsSecurity::check: raise AccessDenied unless ``ip`` may ``action``."""
    if not sec or not sec.get("enabled"):
        return
    rules = parse_rules(sec.get("rules"))
    for kind, act, target in rules:
        if kind == "deny" and act == action and ip_match(target, ip):
            raise AccessDenied(f"security: {ip} may not {action}, denied by rule 'deny {act} {target}'",
                               code=ERROR_SYSTEM_SECURITY_DENY)
    allows = sum(1 for kind, _, _ in rules if kind == "allow")
    for kind, act, target in rules:
        if kind == "allow" and act == action and ip_match(target, ip):
            return
    if allows or not rules:
        raise AccessDenied(f"security: {ip} may not {action}, not allowed by any of {allows}/{len(rules) - allows} "
                           f"allow/deny rules", code=ERROR_SYSTEM_SECURITY_ALLOW)


def page_domain(page_url: str) -> str:
    """The host part of a pageUrl, as SrsRefer::check_single_refer cuts it."""
    d = page_url
    pos = d.find("://")
    if pos >= 0:
        d = d[pos + 3:]
    pos = d.find("/")
    if pos >= 0:
        d = d[:pos]
    pos = d.find(":")
    if pos >= 0:
        d = d[:pos]
    return d


def refer_match(page_url: str, refer: str) -> bool:
    """Port of SrsRefer::check_single_refer."""
    domain = page_domain(page_url)
    pos = domain.find(refer)
    return pos >= 0 and pos == len(domain) - len(refer)


def refer_check(refer: dict | None, action: str, page_url: str) -> None:
    """Port of SrsRefer::check over ``refer.all`` and ``refer.<action>``."""
    if not refer or not refer.get("enabled"):
        return
    for key in ("all", action):
        allowed = list(refer.get(key) or [])
        if allowed and not any(refer_match(page_url, r) for r in allowed):
            raise AccessDenied(f"refer: pageUrl {page_url!r} may not {action}, not in refer.{key} {allowed}",
                               code=ERROR_RTMP_ACCESS_DENIED)


def check(vconf: dict, action: str, req) -> None:
    """Security then refer, for one client about to ``action`` (``play`` or ``publish``)."""
    security_check(vconf.get("security"), action, req.ip)
    refer_check(vconf.get("refer"), action, req.page_url)


__all__ = ["check", "ip_match", "page_domain", "parse_rules", "refer_check", "refer_match", "security_check",
           "ERROR_SYSTEM_SECURITY", "ERROR_SYSTEM_SECURITY_DENY", "ERROR_SYSTEM_SECURITY_ALLOW",
           "ERROR_RTMP_ACCESS_DENIED"]
