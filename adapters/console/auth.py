"""Who may use the console: one shared token, or a users file of hashed passwords.

- `INTERCEPT_CONSOLE_TOKEN`: a shared secret of at least 16 characters; at login the operator
  gives their name with it, and that name is what a retry records.
- `INTERCEPT_CONSOLE_USERS=FILE`: one `name:scrypt$<salt hex>$<hash hex>` line per operator
  (`intercept console --add-user NAME` appends one); each signs in with their own password.

Without either the console refuses to start: it is never open to whoever reaches its port.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

MIN_TOKEN_CHARS = 16
NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
# scrypt's interactive-login parameters (RFC 7914 §2: N=2^14, r=8, p=1): ~50 ms a guess.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class CredentialError(ValueError):
    """The console's credentials are missing or malformed (the message says which and how)."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _matches(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        return hmac.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)
    except ValueError:
        return False


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    users: dict[str, str] | None = None  # name -> scrypt hash

    @property
    def kind(self) -> str:
        return "users file" if self.users is not None else "shared token"

    def verify(self, name: str, secret: str) -> str | None:
        """The operator's name when `secret` is theirs, else None."""
        if not NAME.match(name or ""):
            return None
        if self.users is not None:
            stored = self.users.get(name)
            # A name not in the file costs the same as a wrong password.
            ok = _matches(secret, stored or hash_password("", b"\0" * 16) + "x")
            return name if ok and stored is not None else None
        if self.token is not None and hmac.compare_digest(secret.encode(), self.token.encode()):
            return name
        return None


def read_users(path: Path) -> dict[str, str]:
    users = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, _, stored = line.partition(":")
        if not NAME.match(name) or not stored.startswith("scrypt$"):
            raise CredentialError(f"{path} line {n}: expected name:scrypt$<salt>$<hash> "
                                  f"(made by `intercept console --add-user NAME`)")
        users[name] = stored
    if not users:
        raise CredentialError(f"{path} holds no user: add one with `intercept console --add-user NAME --users {path}`")
    return users


def add_user(path: Path, name: str, password: str) -> None:
    if not NAME.match(name):
        raise CredentialError(f"user name {name!r}: 1-64 letters, digits or ._@-")
    users = read_users(path) if path.exists() and path.read_text().strip() else {}
    if name in users:
        raise CredentialError(f"{path} already has a user {name!r}")
    with path.open("a", encoding="utf-8") as f:
        f.write(f"{name}:{hash_password(password)}\n")
    path.chmod(0o600)


def credentials_from(token: str | None, users_file: str | None) -> Credentials:
    if users_file:
        path = Path(users_file)
        if not path.is_file():
            raise CredentialError(f"INTERCEPT_CONSOLE_USERS: {path} is not a file (`intercept console --add-user NAME --users {path}` makes it)")
        return Credentials(users=read_users(path))
    if token:
        if len(token) < MIN_TOKEN_CHARS:
            raise CredentialError(f"INTERCEPT_CONSOLE_TOKEN: must be at least {MIN_TOKEN_CHARS} characters "
                                  f"(e.g. `openssl rand -hex 16`)")
        return Credentials(token=token)
    raise CredentialError("the console needs a credential: set INTERCEPT_CONSOLE_TOKEN (at least 16 characters, "
                          "e.g. `openssl rand -hex 16`) or INTERCEPT_CONSOLE_USERS=FILE "
                          "(`intercept console --add-user NAME --users FILE`)")
