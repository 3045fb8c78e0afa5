"""The encrypted key store: what is on disk, which data key opens it, expiry and rotation.

No test touches the OS keyring: an autouse fixture installs keyring's fail backend (no
keyring at all) and ``memory_keyring`` an in-memory one, both restored after the test.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null

import modelport.api as api
from modelport.errors import (
    ConfigError,
    InvalidValueError,
    KeyExpiredError,
    MissingKeyError,
    SecretStoreError,
)
from modelport.secrets import KeyStore, get_key_store, mask, new_data_key

OPENAI = "sk-proj-Zq8cTn4VbW2mXr7LpK0sYd3Hf6JgA1uEwxyz"
ANTHROPIC = "sk-ant-api03-Nf5Gh7Jk9Lm1Qp3Rs5Tu7Vw9XyBcDeFgHijk"


class MemoryKeyring(KeyringBackend):
    """An OS keyring that lives in a dict."""

    priority = 1  # type: ignore[assignment]
    viable = False  # never picked by keyring's own discovery, only by set_keyring

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)


class BrokenKeyring(MemoryKeyring):
    """A keyring whose every call fails (a locked or crashed keyring daemon)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("locked")


@pytest.fixture(autouse=True)
def _no_os_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    # Recording the current backend makes monkeypatch put it back after the test.
    monkeypatch.setattr(keyring.core, "_keyring_backend", keyring.core._keyring_backend)
    keyring.set_keyring(fail.Keyring())
    monkeypatch.delenv("MODELPORT_SECRETS_KEY", raising=False)
    api.reset()


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


@pytest.fixture
def home(_isolated_home: Path) -> Path:
    return _isolated_home


def _files(root: Path) -> Iterator[Path]:
    return (p for p in root.rglob("*") if p.is_file())


def _assert_nowhere(root: Path, *values: str) -> None:
    for path in _files(root):
        data = path.read_bytes()
        for value in values:
            assert value.encode() not in data, f"{value[:6]}… is in {path}"
            assert value[-12:].encode() not in data, f"the end of a key is in {path}"


def _doc(home: Path) -> dict[str, Any]:
    return dict(json.loads((home / "secrets" / "keys.json").read_text()))


def _edit(home: Path, change: Any) -> None:
    path = home / "secrets" / "keys.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (OPENAI, "sk-…wxyz"),
        ("gsk_abcdefghijklmnop1234", "…1234"),
        ("AIzaSyD-abcdefghijkl9876", "…9876"),
        ("xai_abcdefghijklmnop5555", "…5555"),
        ("sk_live_aaaaaaaa4321", "sk_…4321"),
        ("sk-short99", "…99"),
        ("abcdefghijk", "…jk"),
    ],
)
def test_mask_shows_a_known_prefix_and_the_last_characters(value: str, shown: str) -> None:
    assert mask(value) == shown


def test_round_trip_and_nothing_readable_on_disk(home: Path) -> None:
    store = get_key_store()
    info = store.set("openai", f"  {OPENAI}\n")  # surrounding whitespace is not the key
    store.set("anthropic", ANTHROPIC, expires_in=dt.timedelta(days=90))
    assert store.get("openai") == OPENAI
    assert store.get("anthropic") == ANTHROPIC
    assert store.get("groq") is None
    assert info.provider == "openai"
    assert info.masked == "sk-…wxyz"
    assert info.expires_at is None and info.rotated_at is None and info.rotations == ()
    assert abs(info.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)
    listed = store.list()
    assert [i.provider for i in listed] == ["anthropic", "openai"]
    assert listed[0].expires_at is not None
    assert dt.timedelta(days=89) < listed[0].expires_at - listed[0].created_at
    assert store.info("openai") == listed[1]
    assert store.info("groq") is None
    # A new process (a new store object) reads the same keys with the same data key.
    api.reset()
    assert get_key_store() is not store
    assert get_key_store().get("openai") == OPENAI

    secrets = home / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for name in ("keys.json", "data.key"):
        assert stat.S_IMODE((secrets / name).stat().st_mode) == 0o600, name
    assert sorted(p.name for p in secrets.iterdir()) == ["data.key", "keys.json", "keys.lock"]
    _assert_nowhere(home, OPENAI, ANTHROPIC)
    doc = _doc(home)
    assert doc["keys"]["openai"]["masked"] == "sk-…wxyz"
    assert OPENAI not in repr(store) and OPENAI not in repr(store.list())


def test_a_loose_folder_is_tightened_on_write(home: Path) -> None:
    (home / "secrets").mkdir(parents=True, mode=0o755)
    (home / "secrets").chmod(0o755)
    get_key_store().set("openai", OPENAI)
    assert stat.S_IMODE((home / "secrets").stat().st_mode) == 0o700


def test_reading_an_empty_home_writes_nothing(home: Path) -> None:
    store = get_key_store()
    assert store.list() == []
    assert store.get("openai") is None
    assert store.previous("openai") is None
    assert store.remove("openai") is False
    store.mark_used("openai")
    assert not (home / "secrets").exists()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("sk-abc\ndef-ghijklmnop", "control"),
        ("sk-abc\tdefghijklmnop", "control"),
        ("sk-abc\x1bdefghijklmn", "control"),
        ("sk-abc\u2028defghijklmn", "control"),
        ("sk-…wxyz", "masked"),
    ],
)
def test_bad_values_are_refused_without_being_repeated(value: str, fragment: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        get_key_store().set("openai", value)
    assert fragment in caught.value.one_line()
    if value.strip():
        assert value.strip()[:6] not in caught.value.one_line()
    assert get_key_store().list() == []


def test_provider_names_are_checked_and_a_long_one_is_never_echoed() -> None:
    store = get_key_store()
    with pytest.raises(InvalidValueError, match="'OpenAI'"):
        store.set("OpenAI", OPENAI)
    with pytest.raises(InvalidValueError) as caught:
        store.get(OPENAI)  # a key typed where the provider goes
    assert OPENAI[:8] not in caught.value.one_line()
    for bad in ("", "1abc", "a" * 33, "a b", "a/b"):
        with pytest.raises(InvalidValueError):
            store.info(bad)
    store.set("my-provider_2", OPENAI)
    assert store.get("my-provider_2") == OPENAI


def test_another_data_key_cannot_open_the_store(home: Path) -> None:
    get_key_store().set("openai", OPENAI)
    (home / "secrets" / "data.key").write_text(new_data_key() + "\n")
    api.reset()
    store = get_key_store()
    with pytest.raises(SecretStoreError) as caught:
        store.get("openai")
    assert caught.value.message == "The key store cannot be decrypted with this data key."
    assert "MODELPORT_SECRETS_KEY" in (caught.value.hint or "")
    # Writing is refused too: a store never holds keys under two data keys.
    with pytest.raises(SecretStoreError, match="cannot be decrypted with this data key"):
        store.set("anthropic", ANTHROPIC)
    # What needs no decryption still works: the list, and removing the key.
    assert [i.provider for i in store.list()] == ["openai"]
    assert store.remove("openai") is True
    # An empty store takes the data key at hand.
    store.set("anthropic", ANTHROPIC)
    assert store.get("anthropic") == ANTHROPIC


def test_a_lost_data_key_is_one_sentence(home: Path) -> None:
    get_key_store().set("openai", OPENAI)
    (home / "secrets" / "data.key").unlink()
    api.reset()
    with pytest.raises(SecretStoreError, match="its data key is not found"):
        get_key_store().get("openai")
    assert not (home / "secrets" / "data.key").exists()  # no new key was made over it


def test_a_ciphertext_moved_to_another_provider_does_not_decrypt(home: Path) -> None:
    store = get_key_store()
    store.set("openai", OPENAI)
    store.set("anthropic", ANTHROPIC)

    def swap(doc: dict[str, Any]) -> None:
        keys = doc["keys"]
        keys["openai"]["value"], keys["anthropic"]["value"] = (
            keys["anthropic"]["value"],
            keys["openai"]["value"],
        )

    _edit(home, swap)
    for provider in ("openai", "anthropic"):
        with pytest.raises(SecretStoreError, match=f"stored {provider} key cannot be decrypted"):
            store.get(provider)


def test_expiry_warns_before_and_refuses_after(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = get_key_store()
    store.set("openai", OPENAI, expires_in=dt.timedelta(days=3))
    store.set("anthropic", ANTHROPIC, expires_in=dt.timedelta(days=30))
    with caplog.at_level(logging.WARNING, logger="modelport.secrets"):
        assert store.get("openai") == OPENAI
        assert store.get("openai") == OPENAI  # warned once, not per request
        assert store.get("anthropic") == ANTHROPIC  # a month away: no warning
    warnings = [r for r in caplog.records if r.name == "modelport.secrets"]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "openai key expires on" in text and "modelport keys rotate openai" in text
    assert OPENAI[-12:] not in caplog.text

    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    _edit(home, lambda doc: doc["keys"]["openai"].update(expires_at=past))
    with pytest.raises(KeyExpiredError) as caught:
        store.get("openai")
    assert caught.value.message.startswith("The stored openai key expired on ")
    assert "modelport keys rotate openai" in (caught.value.hint or "")
    info = store.info("openai")
    assert info is not None and info.expires_at is not None
    assert info.expires_at < dt.datetime.now(dt.UTC)
    with pytest.raises(InvalidValueError):
        store.set("openai", OPENAI, expires_in=dt.timedelta(0))


def test_rotation_keeps_the_previous_key_for_the_grace_period(home: Path) -> None:
    store = get_key_store()
    store.set("openai", OPENAI)
    new = "sk-proj-NEWNEWNEWNEWNEWNEWNEWNEWNEW1234"
    info = store.rotate("openai", new, grace=dt.timedelta(hours=1))
    assert store.get("openai") == new
    assert store.previous("openai") == OPENAI
    assert info.masked == "sk-…1234"
    assert info.rotated_at is not None and info.rotations == (info.rotated_at,)
    assert info.previous_until is not None
    left = info.previous_until - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=59) < left <= dt.timedelta(hours=1)
    _assert_nowhere(home, OPENAI, new)

    # The grace period ends: the old key is no longer handed out, and the next write
    # drops it from the file.
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    _edit(home, lambda doc: doc["keys"]["openai"].update(previous_until=past))
    assert store.previous("openai") is None
    assert store.get("openai") == new
    store.set("anthropic", ANTHROPIC)
    assert _doc(home)["keys"]["openai"]["previous"] is None

    third = "sk-proj-THIRDTHIRDTHIRDTHIRDTHIRD9999"
    info = store.rotate("openai", third, grace=dt.timedelta(0))
    assert store.previous("openai") is None and info.previous_until is None
    assert len(info.rotations) == 2
    assert store.get("openai") == third


def test_rotating_needs_a_stored_key_and_an_expired_one_has_no_grace(home: Path) -> None:
    store = get_key_store()
    with pytest.raises(MissingKeyError, match="No openai key is set"):
        store.rotate("openai", OPENAI)
    store.set("openai", OPENAI, expires_in=dt.timedelta(days=1))
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    _edit(home, lambda doc: doc["keys"]["openai"].update(expires_at=past))
    new = "sk-proj-NEWNEWNEWNEWNEWNEWNEWNEWNEW1234"
    info = store.rotate("openai", new)
    assert info.previous_until is None and store.previous("openai") is None
    assert store.get("openai") == new


def test_the_keyring_holds_the_data_key_when_there_is_one(
    home: Path, memory_keyring: MemoryKeyring
) -> None:
    store = get_key_store()
    store.set("openai", OPENAI)
    assert not (home / "secrets" / "data.key").exists()
    user = f"data-key:{home.resolve()}"
    assert list(memory_keyring.passwords) == [("modelport", user)]
    assert len(base64.b64decode(memory_keyring.passwords[("modelport", user)])) == 32
    assert store.data_key_source == "the OS keyring"
    api.reset()
    assert get_key_store().get("openai") == OPENAI
    _assert_nowhere(home, OPENAI, memory_keyring.passwords[("modelport", user)])


def test_a_store_made_without_a_keyring_keeps_its_file_when_one_appears(home: Path) -> None:
    get_key_store().set("openai", OPENAI)
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    api.reset()
    store = get_key_store()
    assert store.get("openai") == OPENAI
    store.set("anthropic", ANTHROPIC)
    assert backend.passwords == {}
    assert store.data_key_source == str(home / "secrets" / "data.key")


@pytest.mark.parametrize("backend", [null.Keyring, BrokenKeyring])
def test_an_unusable_keyring_means_the_file(home: Path, backend: type[KeyringBackend]) -> None:
    keyring.set_keyring(backend())
    store = get_key_store()
    store.set("openai", OPENAI)
    assert (home / "secrets" / "data.key").is_file()
    api.reset()
    assert get_key_store().get("openai") == OPENAI


def test_modelport_secrets_key_wins(
    home: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_data_key()
    monkeypatch.setenv("MODELPORT_SECRETS_KEY", key)
    api.reset()
    store = get_key_store()
    store.set("openai", OPENAI)
    assert store.data_key_source == "MODELPORT_SECRETS_KEY"
    assert memory_keyring.passwords == {}
    assert not (home / "secrets" / "data.key").exists()
    _assert_nowhere(home, key)
    assert key not in repr(store)

    monkeypatch.delenv("MODELPORT_SECRETS_KEY")
    api.reset()
    with pytest.raises(SecretStoreError, match="data key is not found"):
        get_key_store().get("openai")
    monkeypatch.setenv("MODELPORT_SECRETS_KEY", new_data_key())
    api.reset()
    with pytest.raises(SecretStoreError, match="cannot be decrypted with this data key"):
        get_key_store().get("openai")
    monkeypatch.setenv("MODELPORT_SECRETS_KEY", f" {key}\n")
    api.reset()
    assert get_key_store().get("openai") == OPENAI


@pytest.mark.parametrize(
    "value",
    ["not base64 at all!", base64.b64encode(b"x" * 16).decode(), "QUJD" * 20],
)
def test_an_invalid_modelport_secrets_key_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MODELPORT_SECRETS_KEY", value)
    api.reset()
    with pytest.raises(ConfigError) as caught:
        get_key_store()
    text = caught.value.one_line()
    assert text.startswith("MODELPORT_SECRETS_KEY must be base64 of 32 bytes")
    assert value not in text
    assert caught.value.message.count(". ") == 0  # one sentence


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"format": 1, "keys": []}',
        b'{"format": 99, "keys": {}}',
        b'{"format": 1, "data_key_id": "x", "keys": {"openai": {"masked": "x"}}}',
        b"\xff\xfe",
    ],
)
def test_a_damaged_store_is_one_sentence(home: Path, content: bytes) -> None:
    store = get_key_store()
    store.set("openai", OPENAI)
    path = home / "secrets" / "keys.json"
    path.write_bytes(content)
    for call in (store.list, lambda: store.get("openai"), lambda: store.set("groq", OPENAI)):
        with pytest.raises(SecretStoreError) as caught:
            call()
        assert caught.value.message.startswith(f"The key store {path} is damaged: ")
        assert "\n" not in caught.value.one_line()


def test_damaged_ciphertexts_and_a_damaged_data_key(home: Path) -> None:
    store = get_key_store()
    store.set("openai", OPENAI)
    _edit(home, lambda doc: doc["keys"]["openai"]["value"].update(nonce="!!"))
    with pytest.raises(SecretStoreError, match="is damaged: a ciphertext is not base64"):
        store.get("openai")
    (home / "secrets" / "keys.json").unlink()  # as the hint says
    store.set("openai", OPENAI)
    (home / "secrets" / "data.key").write_text("garbage\n")
    api.reset()
    with pytest.raises(SecretStoreError, match="is not base64 of 32 bytes"):
        get_key_store().get("openai")


def test_mark_used_writes_at_most_once_a_minute(home: Path) -> None:
    store = get_key_store()
    store.set("openai", OPENAI)
    path = home / "secrets" / "keys.json"
    store.mark_used("openai")
    first = store.info("openai")
    assert first is not None and first.last_used is not None
    assert abs(first.last_used - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)
    before = path.stat().st_mtime_ns, path.read_text()
    store.mark_used("openai")
    # Another process (another store) sees the recorded time and writes nothing either.
    KeyStore(home).mark_used("openai")
    assert (path.stat().st_mtime_ns, path.read_text()) == before
    # A minute later (as the file says) it is written again.
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)).isoformat()
    _edit(home, lambda doc: doc["keys"]["openai"].update(last_used=old))
    KeyStore(home).mark_used("openai")
    later = store.info("openai")
    assert later is not None and later.last_used is not None
    assert later.last_used > dt.datetime.fromisoformat(old)
    store.mark_used("groq")  # no key: nothing to record
    assert "groq" not in _doc(home)["keys"]


def test_one_store_per_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_key_store() is get_key_store()
    first = get_key_store()
    monkeypatch.setenv("MODELPORT_HOME", str(tmp_path / "other"))
    api.reset()
    assert get_key_store() is not first
    assert get_key_store().home == (tmp_path / "other").resolve()


def test_concurrent_writers_lose_nothing(home: Path) -> None:
    get_key_store().set("openai", OPENAI)  # the data key exists before the race
    names = [f"p{i}" for i in range(8)]
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            # One store object per thread, as separate processes would have.
            KeyStore(home).set(name, f"sk-{name}-abcdefghijklmnopqrstuvwxyz")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = KeyStore(home)
    assert [i.provider for i in store.list()] == sorted(["openai", *names])
    assert store.get("p3") == "sk-p3-abcdefghijklmnopqrstuvwxyz"
    assert not [p for p in (home / "secrets").iterdir() if p.name.endswith(".tmp")]
