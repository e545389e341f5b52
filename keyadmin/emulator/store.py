"""The local server's state in one sqlite file: users, identities, sessions and API keys.

One connection shared behind a lock: every statement is tiny, so serialising them costs less
than sqlite's own busy-waiting between connections, and check-then-write steps (the 20-key
limit, duplicate names) become atomic for free. WAL lets `emulator_adduser` write while a server
runs. API-key secrets are kept only as SHA-256 digests: they are 380-bit random strings, so a
fast hash is enough, and the secret itself never reaches the file.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_KEYS_PER_USER = 20
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 64
PASSWORD_ITERATIONS = 20_000  # a local test server: cheap enough for a 50-client benchmark

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT UNIQUE,
    password_hash TEXT,
    anonymous INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS identities (
    seq INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider_type TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    UNIQUE (provider_type, identity_id)
);
CREATE INDEX IF NOT EXISTS identities_user ON identities(user_id);
CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider_type TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires_at);
CREATE TABLE IF NOT EXISTS api_keys (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    UNIQUE (user_id, name)
);
"""

_OID_PROCESS = os.urandom(5)
_OID_COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


def object_id() -> str:
    """A new 24-hex id laid out like a BSON ObjectId (its first 4 bytes are the creation time)."""
    counter = next(_OID_COUNTER) & 0xFFFFFF
    raw = int(time.time()).to_bytes(4, "big") + _OID_PROCESS + counter.to_bytes(3, "big")
    return raw.hex()


def new_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PASSWORD_ITERATIONS)
    return f"pbkdf2_sha256${PASSWORD_ITERATIONS}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    _scheme, iterations, salt, digest = stored.split("$")
    candidate = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), bytes.fromhex(salt), int(iterations)
    )
    return hmac.compare_digest(candidate.hex(), digest)


_UNKNOWN_USER_HASH = hash_password(secrets.token_hex(16))


class EmailTaken(Exception):
    pass


class KeyNameTaken(Exception):
    pass


class KeyLimitReached(Exception):
    pass


@dataclass(frozen=True)
class User:
    id: str
    email: str | None
    anonymous: bool


@dataclass(frozen=True)
class Identity:
    provider_type: str
    id: str


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    provider_type: str
    identity_id: str
    device_id: str
    expires_at: float


@dataclass(frozen=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    disabled: bool

    def public(self) -> dict[str, object]:
        """The key as list and fetch show it: never the secret."""
        return {"_id": self.id, "name": self.name, "disabled": self.disabled}


class Store:
    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._transaction() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, *args: object) -> tuple | None:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, *args: object) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- per-database settings ---

    def setting(self, name: str, make: Callable[[], str]) -> str:
        """A value kept in the database, made on first use (signing key, domain id, ...)."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
            if row:
                return row[0]
            value = make()
            db.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (name, value))
            return value

    # --- users and identities ---

    def create_email_user(self, email: str, password: str) -> str:
        password_hash = hash_password(password)
        user_id = object_id()
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
                    (user_id, email, password_hash, time.time()),
                )
                self._add_identity(db, user_id, "local-userpass", object_id())
        except sqlite3.IntegrityError:
            raise EmailTaken(email) from None
        return user_id

    def ensure_email_user(self, email: str, password: str) -> str:
        """The user with this email, created if new; its password is set to `password`."""
        try:
            return self.create_email_user(email, password)
        except EmailTaken:
            password_hash = hash_password(password)
            with self._transaction() as db:
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE email = ?", (password_hash, email)
                )
                (user_id,) = db.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()
            return user_id

    def create_anonymous_user(self) -> tuple[str, str]:
        user_id = object_id()
        # The shape of a real anonymous identity id: "<user id>-<24 lowercase letters>".
        suffix = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(24))
        identity_id = f"{user_id}-{suffix}"
        with self._transaction() as db:
            db.execute(
                "INSERT INTO users (id, anonymous, created_at) VALUES (?, 1, ?)",
                (user_id, time.time()),
            )
            self._add_identity(db, user_id, "anon-user", identity_id)
        return user_id, identity_id

    def user_for_identity(self, provider_type: str, identity_id: str) -> str:
        """The user behind an external identity (custom-token `sub`), created on first login."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT user_id FROM identities WHERE provider_type = ? AND identity_id = ?",
                (provider_type, identity_id),
            ).fetchone()
            if row:
                return row[0]
            user_id = object_id()
            db.execute("INSERT INTO users (id, created_at) VALUES (?, ?)", (user_id, time.time()))
            self._add_identity(db, user_id, provider_type, identity_id)
            return user_id

    def add_identity(self, user_id: str, provider_type: str, identity_id: str) -> None:
        with self._transaction() as db:
            self._add_identity(db, user_id, provider_type, identity_id)

    @staticmethod
    def _add_identity(
        db: sqlite3.Connection, user_id: str, provider_type: str, identity_id: str
    ) -> None:
        db.execute(
            "INSERT OR IGNORE INTO identities (user_id, provider_type, identity_id) "
            "VALUES (?, ?, ?)",
            (user_id, provider_type, identity_id),
        )

    def check_email_password(self, email: str, password: str) -> User | None:
        row = self._one(
            "SELECT id, password_hash FROM users WHERE email = ? AND anonymous = 0", email
        )
        # Hash even for an unknown email, so timing does not tell which emails exist.
        stored = row[1] if row else _UNKNOWN_USER_HASH
        if check_password(password, stored) and row:
            return User(id=row[0], email=email, anonymous=False)
        return None

    def user(self, user_id: str) -> User | None:
        row = self._one("SELECT id, email, anonymous FROM users WHERE id = ?", user_id)
        return User(id=row[0], email=row[1], anonymous=bool(row[2])) if row else None

    def user_by_email(self, email: str) -> User | None:
        row = self._one("SELECT id, email, anonymous FROM users WHERE email = ?", email)
        return User(id=row[0], email=row[1], anonymous=bool(row[2])) if row else None

    def identities(self, user_id: str) -> list[Identity]:
        rows = self._all(
            "SELECT provider_type, identity_id FROM identities WHERE user_id = ? ORDER BY seq",
            user_id,
        )
        return [Identity(provider_type=row[0], id=row[1]) for row in rows]

    def identity_of(self, user_id: str, provider_type: str) -> str | None:
        row = self._one(
            "SELECT identity_id FROM identities WHERE user_id = ? AND provider_type = ? "
            "ORDER BY seq LIMIT 1",
            user_id,
            provider_type,
        )
        return row[0] if row else None

    def set_profile_data(self, user_id: str, data: dict[str, Any]) -> None:
        """Replace the profile `data` of a user (custom-token metadata, set at each login)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO profiles (user_id, data) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET data = excluded.data",
                (user_id, json.dumps(data, ensure_ascii=False)),
            )

    def profile_data(self, user_id: str) -> dict[str, Any] | None:
        """The stored profile `data`, or None if no login ever set one."""
        row = self._one("SELECT data FROM profiles WHERE user_id = ?", user_id)
        return json.loads(row[0]) if row else None

    def delete_user(self, user_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM users WHERE id = ?", (user_id,))

    # --- sessions ---

    def create_session(
        self, user_id: str, provider_type: str, identity_id: str, device_id: str, ttl: float
    ) -> Session:
        now = time.time()
        session = Session(
            id=object_id(),
            user_id=user_id,
            provider_type=provider_type,
            identity_id=identity_id,
            device_id=device_id,
            expires_at=now + ttl,
        )
        with self._transaction() as db:
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            db.execute(
                "INSERT INTO sessions (id, user_id, provider_type, identity_id, device_id, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    user_id,
                    provider_type,
                    identity_id,
                    device_id,
                    session.expires_at,
                ),
            )
        return session

    def session(self, session_id: str) -> Session | None:
        row = self._one(
            "SELECT id, user_id, provider_type, identity_id, device_id, expires_at "
            "FROM sessions WHERE id = ?",
            session_id,
        )
        return Session(*row) if row else None

    def delete_session(self, session_id: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

    # --- API keys ---

    def create_key(self, user_id: str, name: str) -> tuple[ApiKey, str]:
        """A new enabled key and its secret, which is returned once and stored only hashed."""
        secret = new_secret()
        key = ApiKey(id=object_id(), user_id=user_id, name=name, disabled=False)
        with self._transaction() as db:
            if db.execute(
                "SELECT 1 FROM api_keys WHERE user_id = ? AND name = ?", (user_id, name)
            ).fetchone():
                raise KeyNameTaken(name)
            (count,) = db.execute(
                "SELECT COUNT(*) FROM api_keys WHERE user_id = ?", (user_id,)
            ).fetchone()
            if count >= MAX_KEYS_PER_USER:
                raise KeyLimitReached(count)
            db.execute(
                "INSERT INTO api_keys (id, user_id, name, secret_sha256, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key.id, user_id, name, secret_digest(secret), time.time()),
            )
        return key, secret

    def keys(self, user_id: str) -> list[ApiKey]:
        rows = self._all(
            "SELECT id, user_id, name, disabled FROM api_keys WHERE user_id = ? ORDER BY seq",
            user_id,
        )
        return [ApiKey(row[0], row[1], row[2], bool(row[3])) for row in rows]

    def key(self, user_id: str, key_id: str) -> ApiKey | None:
        row = self._one(
            "SELECT id, user_id, name, disabled FROM api_keys WHERE id = ? AND user_id = ?",
            key_id,
            user_id,
        )
        return ApiKey(row[0], row[1], row[2], bool(row[3])) if row else None

    def key_by_secret(self, secret: str) -> ApiKey | None:
        row = self._one(
            "SELECT id, user_id, name, disabled FROM api_keys WHERE secret_sha256 = ?",
            secret_digest(secret),
        )
        return ApiKey(row[0], row[1], row[2], bool(row[3])) if row else None

    def set_key_disabled(self, user_id: str, key_id: str, disabled: bool) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE api_keys SET disabled = ? WHERE id = ? AND user_id = ?",
                (int(disabled), key_id, user_id),
            )
            return cursor.rowcount > 0

    def delete_key(self, user_id: str, key_id: str) -> bool:
        """Delete a key, its identity and the sessions opened with it."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM api_keys WHERE id = ? AND user_id = ?", (key_id, user_id)
            )
            if cursor.rowcount == 0:
                return False
            db.execute(
                "DELETE FROM identities WHERE provider_type = 'api-key' AND identity_id = ?",
                (key_id,),
            )
            db.execute(
                "DELETE FROM sessions WHERE provider_type = 'api-key' AND identity_id = ?",
                (key_id,),
            )
            return True
