"""The livego plug-in's pure parts: the key store and its file, the envelope, the form,
the JWT check, the meters' kbit/s, and the config block's errors."""

import json
import os
import time

import jwt
import pytest

from srspy.live.log import MessageLog
from srspy.config import load_config
from srspy.errors import ConfigError
from srspy.http.message import HttpRequest
from srspy.kernel.message import AUDIO, VIDEO, MediaMessage
from srspy.plugins.livego.api import FormError, JwtAuth, envelope, form, go_json
from srspy.plugins.livego.keys import KEY_ALPHABET, KEY_LENGTH, RoomError, RoomKeys
from srspy.plugins.livego.stats import Meter


# -- the key store ---------------------------------------------------------------------------
def test_get_creates_once_and_keys_look_like_livego_s():
    k = RoomKeys()
    key = k.get("movie")
    assert len(key) == KEY_LENGTH and set(key) <= set(KEY_ALPHABET)
    assert k.get("movie") == key and k.room_of(key) == "movie" and k.key_of("movie") == key


def test_reset_drops_the_old_key():
    k = RoomKeys()
    old = k.get("movie")
    new = k.reset("movie")
    assert new != old and k.room_of(old) is None and k.room_of(new) == "movie"
    assert k.reset("fresh") == k.key_of("fresh")  # reset of an unknown room makes it


def test_rooms_and_keys_are_separate_namespaces():
    tokens = iter(["movie", "k2"])  # a key equal to another room's name
    k = RoomKeys(token=lambda: next(tokens))
    k.rooms["x"] = "unused"
    k.keys["unused"] = "x"
    assert k.get("a") == "movie"
    assert k.room_of("movie") == "a" and k.key_of("movie") is None  # the key is not a room
    assert k.get("movie") == "k2" and k.room_of("movie") == "a"  # nor the room a key


def test_a_new_key_never_collides():
    tokens = iter(["same", "same", "other"])
    k = RoomKeys(token=lambda: next(tokens))
    assert k.get("a") == "same" and k.get("b") == "other"


def test_delete():
    k = RoomKeys()
    key = k.get("movie")
    assert k.delete("movie") is True and k.room_of(key) is None and k.key_of("movie") is None
    assert k.delete("movie") is False


def test_bounds():
    k = RoomKeys(max_rooms=1)
    with pytest.raises(RoomError, match="longer than 256 bytes"):
        k.get("é" * 129)
    k.get("a")
    with pytest.raises(RoomError, match="too many rooms"):
        k.get("b")
    k.reset("a")  # an existing room is not a new one


def test_file_round_trip_atomic_and_private(tmp_path):
    path = tmp_path / "objs" / "keys.json"
    k = RoomKeys(str(path))
    key = k.get("movie")
    k.get("other")
    k.delete("other")
    assert json.loads(path.read_text()) == {"rooms": {"movie": key}}
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(path.parent) == ["keys.json"]
    again = RoomKeys(str(path)).load()
    assert again.rooms == {"movie": key} and again.room_of(key) == "movie"


def test_memory_only_writes_nothing(tmp_path):
    k = RoomKeys("")
    k.get("movie")
    assert k.path is None and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, why", [
    ("{", "Expecting property name"),
    ('{"rooms": []}', 'no "rooms" object'),
    ('{"rooms": {"a": 1}}', "room 'a': the key must be a non-empty string"),
    ('{"rooms": {"a": "k", "b": "k"}}', "room 'b': key already used by room 'a'"),
])
def test_a_broken_file_is_refused_with_its_name(tmp_path, text, why):
    path = tmp_path / "keys.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        RoomKeys(str(path)).load()
    assert str(e.value).startswith(f"livego.keys_file {path}: cannot load the keys: ") and why in str(e.value)


# -- envelope and form ------------------------------------------------------------------------------
def test_envelope_is_go_json():
    assert envelope(200, "Ok") == b'{"status":200,"data":"Ok"}'
    assert envelope(200, "<h1>a&b</h1>") == b'{"status":200,"data":"\\u003ch1\\u003ea\\u0026b\\u003c/h1\\u003e"}'
    assert json.loads(envelope(200, "<h1>x</h1></br>"))["data"] == "<h1>x</h1></br>"
    assert envelope(200, {"publishers": None, "players": None}) == (
        b'{"status":200,"data":{"publishers":null,"players":null}}')
    assert go_json("salle é") == '"salle é"'.encode()


def req(url, method="GET", body=b"", headers=None):
    return HttpRequest(method, url, headers or {}, body)


def test_form_query_body_and_bad_escapes():
    assert form(req("/c?room=a&room=b")) == {"room": "a"}
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert form(req("/c?room=q&x=1", "POST", b"room=b", urlencoded)) == {"room": "b", "x": "1"}
    assert form(req("/c?room=q", "POST", b"room=b")) == {"room": "q"}  # not a form body
    assert form(req("/c?room=q", "GET", b"room=b", urlencoded)) == {"room": "q"}  # GET bodies are not read
    assert form(req("/c?room=%41")) == {"room": "A"}
    with pytest.raises(FormError):
        form(req("/c?room=%zz"))


# -- JWT ----------------------------------------------------------------------------------------------
SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("make, why", [
    (dict, "Required authorization token not found"),
    (lambda: {"Authorization": "Token abc"}, "Authorization header format must be Bearer {token}"),
    (lambda: {"Authorization": "Bearer"}, "Authorization header format must be Bearer {token}"),
    (lambda: {"Authorization": "bearer " + jwt.encode({"a": 1}, SECRET, algorithm="HS256")}, None),
    (lambda: {"Authorization": "Bearer " + jwt.encode({"exp": int(time.time()) - 5}, SECRET, algorithm="HS256")},
     "Token is expired"),
    (lambda: {"Authorization": "Bearer " + jwt.encode({"nbf": int(time.time()) + 60}, SECRET, algorithm="HS256")},
     "Token is not valid yet"),
    (lambda: {"Authorization": "Bearer " + jwt.encode({"a": 1}, SECRET[::-1], algorithm="HS256")},
     "signature is invalid"),
    (lambda: {"Authorization": "Bearer " + jwt.encode({"a": 1}, SECRET, algorithm="HS512")},
     "Expected HS256 signing method but token specified HS512"),
    (lambda: {"Authorization": "Bearer " + jwt.encode({"a": 1}, None, algorithm="none")},
     "Expected HS256 signing method but token specified none"),
    (lambda: {"Authorization": "Bearer a.b"}, "token contains an invalid number of segments"),
])
def test_jwt_check(make, why):
    assert JwtAuth(None, SECRET).check(req("/control/get", headers=make())) == why


def test_jwt_from_the_query_and_the_header_first():
    token = jwt.encode({"a": 1}, SECRET, algorithm="HS384")
    auth = JwtAuth(None, SECRET, "HS384")
    assert auth.check(req(f"/x?jwt={token}")) is None
    assert auth.check(req(f"/x?jwt={token}", headers={"Authorization": "Basic eDp5"})) == (
        "Authorization header format must be Bearer {token}")


# -- meters ---------------------------------------------------------------------------------------------
def test_meter_counts_the_log_and_gives_kbit_s_every_5_s():
    m = Meter(epoch=1, seq=10, now_ms=0)
    log = MessageLog()
    for i in range(25):
        log.append(MediaMessage(VIDEO, i, 1, b"v" * 1000) if (i - 5) % 2 else MediaMessage(AUDIO, i, 1, b"a" * 100), i)
    log.trim(5)  # messages 5..24 of the stream are kept; 10.. are this publish's
    m.count(log)
    assert (m.video, m.audio) == (8 * 1000, 7 * 100) and m.seq == 25
    m.count(log)
    assert m.video == 8000  # nothing counted twice
    m.speeds(4999)
    assert (m.video_speed, m.audio_speed) == (0, 0)
    m.video += 620_000
    m.speeds(5999)  # whole seconds only, as livego: 5 s
    assert m.video_speed == (628_000 * 8) // 5 // 1000 and m.audio_speed == 700 * 8 // 5 // 1000
    m.speeds(6000)
    assert m.video_speed == (628_000 * 8) // 5 // 1000  # next one 5 s later


# -- config --------------------------------------------------------------------------------------------
def test_config_block_defaults_and_errors():
    root = load_config(text="vhost v {}").root["livego"]
    assert root == {"enabled": False, "listen": "8090", "apps": ["live"], "rtmp_noauth": False,
                    "keys_file": "./objs/livego.keys", "flv_listen": None, "max_rooms": 10000,
                    "jwt": {"secret": "", "algorithm": "HS256"}}
    with pytest.raises(ConfigError) as e:
        load_config(text='vhost v {}\nlivego {\n  listen abc;\n  jwt { algorithm RS256; }\n  room x;\n}')
    assert str(e.value).splitlines() == [
        '<text>:3: invalid value for "livego.listen": the value "abc" is not [ip:]port.',
        '<text>:4: invalid value for "livego.jwt.algorithm": the value "RS256" is not one of: HS256, HS384, HS512.',
        '<text>:5: unknown directive "livego.room"',
    ]
