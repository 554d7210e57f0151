"""Organisation secrets: values an organisation stores once and its plugins read by name.

Values are encrypted at rest with Fernet (``cryptography``): :class:`SecretCipher` holds the
operator's keys, the first encrypting and all of them decrypting, so a key is rotated by putting
a new one first, re-encrypting (:meth:`OrganizationSecrets.reencrypt`, ``mixpeek admin
rotate-secrets``) and then dropping the old one. :class:`OrganizationSecrets` is the store the
API writes (names and timestamps are all it ever answers); :class:`SecretReader` is what a
plugin host's supervisor reads through, for one organisation and only the names the plugin's
manifest declares. Values never reach logs, metrics, Dagster metadata or an API answer.

Example:
    >>> secrets = OrganizationSecrets(metadata, SecretCipher([Fernet.generate_key()]))
    >>> secrets.create("org_1", "openai_api_key", "sk-...")
    >>> secrets.reader("org_1", ["openai_api_key"]).value("openai_api_key")
    'sk-...'
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.storage.ids import now

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

    from mixpeek_orchestration.storage.metadata import MetadataStore

SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
MAX_VALUE_BYTES = 64 * 1024
READ_TTL_S = 5.0
"""How long a supervisor keeps a value it read: a changed or deleted secret reaches running
plugins within this long."""


def check_secret_name(name: str) -> str:
    if not isinstance(name, str) or not SECRET_NAME.fullmatch(name):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"invalid secret name {name!r}: 1-100 letters, digits, '_', '.', '-', starting with "
            "a letter or '_'",
            field="secret_name",
        )
    return name


class SecretCipher:
    """Fernet over the operator's keys (url-safe base64, 32 bytes each): the first one
    encrypts, every one decrypts."""

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        if not keys:
            raise MixpeekError(ErrorCode.INVALID_SETTINGS, "no secrets encryption key configured")
        try:
            self._fernet: MultiFernet = MultiFernet([Fernet(k) for k in keys])
        except ValueError:
            raise MixpeekError(
                ErrorCode.INVALID_SETTINGS,
                "MIXPEEK_SECRETS_KEY must be Fernet keys (32 url-safe base64 bytes each), "
                "comma-separated, the newest first",
            ) from None

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise MixpeekError(
                ErrorCode.INTERNAL_ERROR,
                "a stored secret cannot be decrypted with the configured keys (was a key "
                "dropped before `mixpeek admin rotate-secrets` re-encrypted it?)",
            ) from None

    def rotate(self, token: str) -> str:
        """The same value under the first key."""
        return self._fernet.rotate(token.encode()).decode()


class OrganizationSecrets:
    """The ``org_secrets`` collection of a data plane: one record per organisation and name."""

    def __init__(self, metadata: MetadataStore, cipher: SecretCipher) -> None:
        self.secrets = metadata.collection("org_secrets")
        self.cipher = cipher

    def ensure_indexes(self) -> None:
        self.secrets.create_index([("org_id", ASCENDING), ("secret_name", ASCENDING)], unique=True)

    @staticmethod
    def _check_value(value: str) -> str:
        if not isinstance(value, str) or not value:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, "secret_value must be a non-empty string",
                field="secret_value",
            )  # fmt: skip
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"secret_value is over {MAX_VALUE_BYTES // 1024} KiB",
                field="secret_value",
            )
        return value

    def create(self, org_id: str, name: str, value: str) -> dict[str, Any]:
        check_secret_name(name)
        stamp = now()
        try:
            self.secrets.insert_one(
                {
                    "org_id": org_id,
                    "secret_name": name,
                    "ciphertext": self.cipher.encrypt(self._check_value(value)),
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        except DuplicateKeyError:
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"secret {name!r} already exists; PUT /v1/organizations/secrets/{name} replaces "
                "its value",
                field="secret_name",
            ) from None
        return {"secret_name": name, "created_at": stamp, "updated_at": stamp}

    def update(self, org_id: str, name: str, value: str) -> dict[str, Any]:
        check_secret_name(name)
        stamp = now()
        doc = self.secrets.find_one_and_update(
            {"org_id": org_id, "secret_name": name},
            {"$set": {"ciphertext": self.cipher.encrypt(self._check_value(value)),
                      "updated_at": stamp}},
            projection={"_id": 0, "ciphertext": 0},
        )  # fmt: skip
        if doc is None:
            raise self._missing(name)
        return doc | {"updated_at": stamp}

    def delete(self, org_id: str, name: str) -> None:
        check_secret_name(name)
        if not self.secrets.delete_one({"org_id": org_id, "secret_name": name}).deleted_count:
            raise self._missing(name)

    def list(self, org_id: str) -> list[dict[str, Any]]:
        """Names and timestamps, never values."""
        return list(
            self.secrets.find(
                {"org_id": org_id}, {"_id": 0, "secret_name": 1, "created_at": 1, "updated_at": 1}
            ).sort("secret_name", ASCENDING)
        )

    def present(self, org_id: str, names: Iterable[str]) -> set[str]:
        """Which of ``names`` the organisation has stored (nothing decrypted)."""
        names = list(names)
        if not names:
            return set()
        found = self.secrets.find(
            {"org_id": org_id, "secret_name": {"$in": list(names)}}, {"_id": 0, "secret_name": 1}
        )
        return {d["secret_name"] for d in found}

    def values(self, org_id: str, names: Iterable[str]) -> dict[str, str]:
        """The decrypted values of those of ``names`` the organisation has."""
        found = self.secrets.find(
            {"org_id": org_id, "secret_name": {"$in": list(names)}},
            {"_id": 0, "secret_name": 1, "ciphertext": 1},
        )
        return {d["secret_name"]: self.cipher.decrypt(d["ciphertext"]) for d in found}

    def delete_organization(self, org_id: str) -> int:
        return self.secrets.delete_many({"org_id": org_id}).deleted_count

    def reencrypt(self) -> int:
        """Every value again under the first key (after a new key was put first); returns how
        many records were rewritten."""
        rewritten = 0
        for doc in self.secrets.find({}, {"_id": 1, "ciphertext": 1}):
            self.secrets.update_one(
                {"_id": doc["_id"]}, {"$set": {"ciphertext": self.cipher.rotate(doc["ciphertext"])}}
            )
            rewritten += 1
        return rewritten

    def reader(self, org_id: str, declared: Sequence[str]) -> SecretReader:
        return SecretReader(self, org_id, declared)

    @staticmethod
    def _missing(name: str) -> MixpeekError:
        return MixpeekError(
            ErrorCode.NOT_FOUND, f"secret {name!r} not found in this organization",
            field="secret_name",
        )  # fmt: skip


class SecretSource(Protocol):
    def value(self, name: str) -> str:
        """The value of secret ``name``, or a :class:`MixpeekError` saying why not."""


class SecretReader:
    """What one plugin host may read: its organisation's secrets among those its manifest
    declares, each kept for :data:`READ_TTL_S` once read."""

    def __init__(self, store: OrganizationSecrets, org_id: str, declared: Sequence[str]) -> None:
        self.store = store
        self.org_id = org_id
        self.declared = frozenset(declared)
        self._read: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def value(self, name: str) -> str:
        """The secret's value; a clear error when the manifest did not declare it or the
        organisation has not stored it."""
        if name not in self.declared:
            raise MixpeekError(
                ErrorCode.PERMISSION_DENIED,
                f"secret {name!r} is not declared by this plugin's manifest (secrets = "
                f"{sorted(self.declared)})",
            )
        with self._lock:
            hit = self._read.get(name)
        if hit is None or time.monotonic() - hit[0] > READ_TTL_S:
            value = self.store.values(self.org_id, [name]).get(name)
            hit = (time.monotonic(), value)
            with self._lock:
                self._read[name] = hit
        if hit[1] is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"secret {name!r}, which this plugin's manifest declares, is not set in its "
                f"organization: store it with POST /v1/organizations/secrets",
            )
        return hit[1]
