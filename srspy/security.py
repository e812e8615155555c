"""Port of SrsSecurity and SrsRefer: who may publish or play.

``security { enabled on; allow play all; deny publish 1.2.3.4; allow publish 10.0.0.0/8; }``:
when enabled, rules are checked in order, a deny match refuses, an allow match admits,
and with no match the action is refused (enabled means default deny). ``refer`` checks
the client's pageUrl against allowed domains.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .errors import AccessDenied


def _ip_match(target: str, ip: str) -> bool:
    if target == "all":
        return True
    try:
        addr = ipaddress.ip_address(ip)
        if "/" in target:
            return addr in ipaddress.ip_network(target, strict=False)
        return addr == ipaddress.ip_address(target)
    except ValueError:
        return target == ip


def parse_rules(rules) -> list[tuple[str, str, str]]:
    out = []
    for r in rules or []:
        parts = r.split() if isinstance(r, str) else list(r)
        if len(parts) >= 3:
            out.append((parts[0], parts[1], parts[2]))
    return out


def security_check(sec: dict, action: str, ip: str):
    """Raise AccessDenied unless ``ip`` may ``action`` (publish or play)."""
    if not sec or not sec.get("enabled"):
        return
    rules = parse_rules(sec.get("rules"))
    for kind, act, target in rules:
        if act == action and kind == "deny" and _ip_match(target, ip):
            raise AccessDenied(f"security: {ip} denied to {action} by 'deny {act} {target}'")
    for kind, act, target in rules:
        if act == action and kind == "allow" and _ip_match(target, ip):
            return
    raise AccessDenied(f"security: {ip} not allowed to {action} (no allow rule matches)")


def refer_check(refer: dict, action: str, page_url: str):
    """Raise AccessDenied when refer is enabled and the pageUrl's host is not allowed."""
    if not refer or not refer.get("enabled"):
        return
    allowed = list(refer.get("all") or []) + list(refer.get(action) or [])
    if not allowed:
        return
    host = urlsplit(page_url).hostname or page_url
    for domain in allowed:
        if host == domain or (host and host.endswith("." + domain.lstrip("."))):
            return
    raise AccessDenied(f"refer: pageUrl {page_url!r} not allowed to {action}")


def check(vconf: dict, action: str, req):
    security_check(vconf.get("security"), action, req.ip)
    refer_check(vconf.get("refer"), action, req.page_url)
