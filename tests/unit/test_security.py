"""security and refer: SRS's srs_app_security.cpp / srs_app_refer.cpp semantics, as tables."""

import pytest

from srspy.config import load_config
from srspy.errors import AccessDenied
from srspy.request import Request
from srspy.security import (
    ERROR_RTMP_ACCESS_DENIED, ERROR_SYSTEM_SECURITY_ALLOW, ERROR_SYSTEM_SECURITY_DENY, check, ip_match, page_domain,
    refer_check, refer_match, security_check,
)


def sec(*rules, enabled=True):
    return {"enabled": enabled, "rules": list(rules)}


@pytest.mark.parametrize("target, ip, ok", [
    ("all", "1.2.3.4", True),
    ("1.2.3.4", "1.2.3.4", True),
    ("1.2.3.4", "1.2.3.5", False),
    ("10.0.0.0/8", "10.9.8.7", True),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("192.168.1.0/24", "192.168.1.255", True),
    ("::1", "::1", True),
    ("fd00::/8", "fd12::1", True),
    ("10.0.0.0/8", "not-an-ip", False),
])
def test_ip_match(target, ip, ok):
    assert ip_match(target, ip) is ok


# (rules, action, ip, None = allowed | the SRS error code)
CASES = [
    # no rule at all: enabled means everything is refused
    ((), "play", "1.1.1.1", ERROR_SYSTEM_SECURITY_ALLOW),
    ((), "publish", "1.1.1.1", ERROR_SYSTEM_SECURITY_ALLOW),
    # only deny rules: what is not denied is allowed
    (("deny publish 1.2.3.4",), "publish", "1.2.3.4", ERROR_SYSTEM_SECURITY_DENY),
    (("deny publish 1.2.3.4",), "publish", "5.6.7.8", None),
    (("deny publish 1.2.3.4",), "play", "1.2.3.4", None),
    (("deny play all",), "play", "9.9.9.9", ERROR_SYSTEM_SECURITY_DENY),
    (("deny play all",), "publish", "9.9.9.9", None),
    (("deny play 10.0.0.0/8",), "play", "10.1.2.3", ERROR_SYSTEM_SECURITY_DENY),
    # allow rules: only what is allowed passes
    (("allow play all",), "play", "1.2.3.4", None),
    (("allow play all",), "publish", "1.2.3.4", ERROR_SYSTEM_SECURITY_ALLOW),
    (("allow publish 127.0.0.1",), "publish", "127.0.0.1", None),
    (("allow publish 127.0.0.1",), "publish", "127.0.0.2", ERROR_SYSTEM_SECURITY_ALLOW),
    # an allow rule for publish makes play refused too (SRS counts allow rules of any action)
    (("allow publish 127.0.0.1",), "play", "127.0.0.1", ERROR_SYSTEM_SECURITY_ALLOW),
    (("allow publish 192.168.0.0/16", "allow play all"), "publish", "192.168.3.4", None),
    # deny wins over allow, whatever the order
    (("allow play all", "deny play 1.2.3.4"), "play", "1.2.3.4", ERROR_SYSTEM_SECURITY_DENY),
    (("deny play 1.2.3.4", "allow play all"), "play", "1.2.3.4", ERROR_SYSTEM_SECURITY_DENY),
    (("deny play 1.2.3.4", "allow play all"), "play", "4.3.2.1", None),
]


@pytest.mark.parametrize("rules, action, ip, code", CASES)
def test_security_rules(rules, action, ip, code):
    if code is None:
        security_check(sec(*rules), action, ip)
        return
    with pytest.raises(AccessDenied) as ei:
        security_check(sec(*rules), action, ip)
    assert ei.value.code == code
    assert ip in str(ei.value) and action in str(ei.value)


def test_security_disabled_or_absent_allows_everything():
    security_check(sec("deny play all", enabled=False), "play", "1.2.3.4")
    security_check(None, "publish", "1.2.3.4")
    security_check({}, "publish", "1.2.3.4")


def test_deny_message_names_the_rule():
    with pytest.raises(AccessDenied, match=r"deny publish 10\.0\.0\.0/8"):
        security_check(sec("deny publish 10.0.0.0/8"), "publish", "10.0.0.1")


@pytest.mark.parametrize("page_url, domain", [
    ("http://www.ossrs.net:8080/players/srs.html?x=1", "www.ossrs.net"),
    ("https://ossrs.net/", "ossrs.net"),
    ("ossrs.net/a/b", "ossrs.net"),
    ("", ""),
])
def test_page_domain(page_url, domain):
    assert page_domain(page_url) == domain


@pytest.mark.parametrize("page_url, refer, ok", [
    ("http://www.ossrs.net/player.html", "ossrs.net", True),
    ("http://ossrs.net/player.html", "ossrs.net", True),
    ("http://ossrs.net.evil.com/player.html", "ossrs.net", False),
    ("http://ossrs.com/", "ossrs.net", False),
    ("", "ossrs.net", False),
    # SRS's find() takes the first occurrence: a repeated name does not match
    ("http://a.com.a.com/", "a.com", False),
])
def test_refer_match(page_url, refer, ok):
    assert refer_match(page_url, refer) is ok


def test_refer_check_all_then_action():
    refer = {"enabled": True, "all": ["ossrs.net"], "play": ["play.ossrs.net"], "publish": []}
    refer_check(refer, "play", "http://play.ossrs.net/p.html")
    refer_check(refer, "publish", "http://x.ossrs.net/")  # no publish list: only `all` applies
    with pytest.raises(AccessDenied) as ei:
        refer_check(refer, "play", "http://x.ossrs.net/")
    assert ei.value.code == ERROR_RTMP_ACCESS_DENIED
    with pytest.raises(AccessDenied):
        refer_check(refer, "publish", "http://evil.com/")
    refer_check({**refer, "enabled": False}, "publish", "http://evil.com/")


def test_check_from_a_loaded_config():
    cfg = load_config(text="""
        listen 1935;
        vhost __defaultVhost__ {
            security { enabled on; deny publish 10.0.0.9; allow publish 10.0.0.0/8; allow play all; }
            refer { enabled on; play ossrs.net; }
        }""")
    vconf = cfg.vhost("__defaultVhost__")
    req = Request()
    req.ip, req.page_url = "10.1.1.1", "http://www.ossrs.net/"
    check(vconf, "publish", req)
    check(vconf, "play", req)
    req.ip = "10.0.0.9"
    with pytest.raises(AccessDenied):
        check(vconf, "publish", req)
    req.ip, req.page_url = "10.1.1.1", "http://other.com/"
    with pytest.raises(AccessDenied, match="refer"):
        check(vconf, "play", req)
