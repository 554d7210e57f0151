"""The encryption of organisation secrets at rest, and its key rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.settings import load_settings
from mixpeek_orchestration.tenancy.secrets import SecretCipher, check_secret_name


def test_a_value_is_stored_encrypted_and_read_back() -> None:
    cipher = SecretCipher([Fernet.generate_key()])
    token = cipher.encrypt("sk-live-123")
    assert "sk-live-123" not in token
    assert cipher.decrypt(token) == "sk-live-123"


def test_rotation_puts_a_new_key_first_and_reencrypts_under_it() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = SecretCipher([old]).encrypt("v")
    both = SecretCipher([new, old])
    assert both.decrypt(token) == "v"  # the old key still reads during the rotation
    rotated = both.rotate(token)
    assert SecretCipher([new]).decrypt(rotated) == "v"  # the old key can then go
    with pytest.raises(MixpeekError, match="cannot be decrypted") as info:
        SecretCipher([new]).decrypt(token)
    assert "v" not in info.value.detail.split("'")


def test_a_bad_key_is_refused_naming_the_setting() -> None:
    with pytest.raises(MixpeekError, match="MIXPEEK_SECRETS_KEY") as info:
        SecretCipher([b"not-a-key"])
    assert info.value.code is ErrorCode.INVALID_SETTINGS


def test_without_a_configured_key_one_is_made_once_under_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    keys = settings.secrets_keys
    path = tmp_path / "secrets.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_settings(data_dir=tmp_path).secrets_keys == keys  # the same key next time
    SecretCipher(keys).decrypt(SecretCipher(keys).encrypt("x"))


def test_configured_keys_come_comma_separated_newest_first(tmp_path: Path) -> None:
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = load_settings(data_dir=tmp_path, secrets_key=f"{new}, {old}")
    assert settings.secrets_keys == [new.encode(), old.encode()]
    assert not (tmp_path / "secrets.key").exists()


@pytest.mark.parametrize("name", ["", "1abc", "a b", "x" * 101, "a/b"])
def test_a_bad_secret_name_is_refused(name: str) -> None:
    with pytest.raises(MixpeekError, match="invalid secret name"):
        check_secret_name(name)
