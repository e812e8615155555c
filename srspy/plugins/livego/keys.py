"""livego's room/key model: each room has one publish key, kept in a JSON file.

A publisher uses the key as its stream name and is published under the room; players use
the room. Rooms and keys live in two separate maps (livego keeps both directions in one
namespace, so a room name could be taken for a key, its issue #213), a reset drops the old
key (livego keeps it working), and the whole table survives a restart (livego's in-memory
table does not, its issues #104 and #224).

The file is ``{"rooms": {"ROOM": "KEY", ...}}``, rewritten whole after every change:
written beside itself under a temporary name, synced, then renamed over the old one, so a
crash leaves the old table or the new one, never half of one. The write goes through
gevent's thread pool: a slow disk never stalls the hub.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import tempfile

import gevent
from gevent.lock import Semaphore
from loguru import logger

from ...errors import ConfigError, SrsError

KEY_LENGTH = 48  # livego's uid.RandStringRunes(48)
KEY_ALPHABET = string.digits + string.ascii_letters
MAX_NAME = 256  # bytes of a room name or a key
MAX_FILE = 64 * 1024 * 1024  # a keys file larger than this is refused at load


class RoomError(SrsError):
    """A room the table cannot take: a name too long, or the table is full."""


class RoomKeys:
    """The room -> key table and its reverse, persisted to ``path`` (None: memory only)."""

    def __init__(self, path: str | None = None, max_rooms: int = 10000, token=None):
        self.path = path or None
        self.max_rooms = max_rooms
        self._token = token or (lambda: "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH)))
        self.rooms: dict[str, str] = {}  # room -> key
        self.keys: dict[str, str] = {}  # key -> room
        self._lock = Semaphore()

    # -- the file --------------------------------------------------------------------
    def load(self) -> "RoomKeys":
        """Read the table from ``path``; a missing file is an empty table. Raises
        ConfigError naming the file and what is wrong with it."""
        if self.path is None or not os.path.exists(self.path):
            return self
        try:
            if os.path.getsize(self.path) > MAX_FILE:
                raise ValueError(f"larger than {MAX_FILE} bytes")
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            rooms = data.get("rooms") if isinstance(data, dict) else None
            if not isinstance(rooms, dict):
                raise ValueError('no "rooms" object')
            for room, key in rooms.items():
                if not isinstance(key, str) or not key or not room:
                    raise ValueError(f"room {room!r}: the key must be a non-empty string")
                if key in self.keys:
                    raise ValueError(f"room {room!r}: key already used by room {self.keys[key]!r}")
                self.rooms[room] = key
                self.keys[key] = room
        except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
            raise ConfigError(f"livego.keys_file {self.path}: cannot load the keys: {e}") from e
        logger.info("livego: {} rooms loaded from {}", len(self.rooms), self.path)
        return self

    def save(self) -> None:
        """Write the table to ``path`` atomically (temporary file, fsync, rename)."""
        if self.path is None:
            return
        with self._lock:  # one writer at a time: the last table written is the latest
            data = json.dumps({"rooms": self.rooms}, ensure_ascii=False, indent=1, sort_keys=True)
            gevent.get_hub().threadpool.apply(_write_atomic, (self.path, data))

    # -- the table -------------------------------------------------------------------
    def room_of(self, key: str) -> str | None:
        return self.keys.get(key)

    def key_of(self, room: str) -> str | None:
        return self.rooms.get(room)

    def get(self, room: str) -> str:
        """The room's key, made (and saved) when the room has none: livego's GetKey."""
        key = self.rooms.get(room)
        if key is not None:
            return key
        self._check(room, new=True)
        key = self._set(room)
        self.save()
        return key

    def reset(self, room: str) -> str:
        """A new key for the room; the old one stops working: livego's SetKey, fixed."""
        self._check(room, new=room not in self.rooms)
        key = self._set(room)
        self.save()
        return key

    def delete(self, room: str) -> bool:
        """Forget the room and its key; False when there was no such room."""
        key = self.rooms.pop(room, None)
        if key is None:
            return False
        self.keys.pop(key, None)
        self.save()
        return True

    def _check(self, room: str, new: bool) -> None:
        if len(room.encode("utf-8", "surrogatepass")) > MAX_NAME:
            raise RoomError(f"room name longer than {MAX_NAME} bytes")
        if new and len(self.rooms) >= self.max_rooms:
            raise RoomError(f"too many rooms (livego.max_rooms {self.max_rooms})")

    def _set(self, room: str) -> str:
        key = self._token()
        while key in self.keys:
            key = self._token()
        old = self.rooms.get(room)
        if old is not None:
            self.keys.pop(old, None)
        self.rooms[room] = key
        self.keys[key] = room
        return key


def _write_atomic(path: str, data: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".livego-keys-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # publish keys are secrets
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


__all__ = ["KEY_ALPHABET", "KEY_LENGTH", "MAX_NAME", "RoomError", "RoomKeys"]
