"""The encrypted store of hosted providers' API keys.

Threat model: the store protects the keys against a copied or backed-up ``keys.json``,
against other users of the machine (the folder is 0700, the files 0600), and against
shoulder-surfing, shell history and logs (a key is read from a hidden prompt or stdin,
never an argument, and only ever shown masked). It does not protect against malware
running as the same user, which can ask the keyring or read ``data.key`` just as modelport
does; and ``MODELPORT_SECRETS_KEY`` is as secret as the keys it unlocks.

``MODELPORT_HOME/secrets/keys.json`` holds the metadata in clear (when each key was set,
expires, was last used and rotated) and each key encrypted with AES-GCM under the data key
(kept apart from the file), with a fresh nonce and the provider's name as associated data,
so a ciphertext moved to another provider does not decrypt. The file records a fingerprint
of its data key, so a store read with another data key fails in one sentence instead of
key by key. Writes go to a temporary file in the same folder, renamed into place under a
file lock: a reader never sees half a file.

The data key is ``MODELPORT_SECRETS_KEY`` when it is set; else the one found in the OS
keyring or in ``data.key``; else, on the first ``set``, a new one goes into the keyring
when a usable backend exists, otherwise into ``data.key``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.errors import (
    ConfigError,
    InvalidValueError,
    KeyExpiredError,
    MissingKeyError,
    SecretStoreError,
)

__all__ = [
    "KeyInfo",
    "KeyStore",
    "check_provider_name",
    "get_key_store",
    "mask",
    "new_data_key",
    "reset_key_store",
]

log = logging.getLogger("modelport.secrets")

#: The keyring service the data key is kept under (its username names MODELPORT_HOME).
KEYRING_SERVICE = "modelport"
#: How close to its expiry a key makes ``get`` log a warning.
WARN_BEFORE = dt.timedelta(days=7)
#: ``mark_used`` writes at most this often per provider (the gateway calls it per request).
USED_EVERY = 60.0

_PROVIDER_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_FORMAT = 1
_LOCK_TIMEOUT = 30.0


def mask(value: str) -> str:
    """A key as it may be shown: ``sk-…wxyz`` (a short one only as ``…yz``)."""
    if len(value) < 12:
        return "…" + value[-2:]
    prefix = value[:3] if value[2] in "-_" and value[:2].isalnum() else ""
    return f"{prefix}…{value[-4:]}"


def new_data_key() -> str:
    """A new data key: base64 of 32 random bytes (a value for MODELPORT_SECRETS_KEY)."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


def check_provider_name(name: str) -> str:
    """The name, if it can name a provider; InvalidValueError (not echoing a long one) if not."""
    if not isinstance(name, str) or not _PROVIDER_RE.fullmatch(name):
        # A long "name" may be a key typed in the wrong place: never repeat it.
        shown = f" {name!r}" if isinstance(name, str) and len(name) <= 32 else ""
        raise InvalidValueError(
            f"Invalid provider name{shown}.",
            hint="A provider name is a lowercase letter and up to 31 lowercase letters, "
            "digits, '-' or '_', e.g. openai.",
        )
    return name


def _check_value(value: str) -> str:
    """The key without surrounding whitespace; InvalidValueError (never quoting it) if bad."""
    if not isinstance(value, str):
        raise InvalidValueError("A key must be text.")
    value = value.strip()
    if not value:
        raise InvalidValueError(
            "The key is empty.", hint="Paste the whole key your provider gave you."
        )
    if not value.isprintable():
        raise InvalidValueError(
            "The key contains a control or invisible character (a newline or a tab, say).",
            hint="Give the key alone, on one line.",
        )
    if "…" in value:
        raise InvalidValueError(
            "The key contains '…': that is a masked key, not the key itself.",
            hint="Paste the whole key your provider gave you.",
        )
    return value


def _decode_data_key(text: str, *, where: str, error: type[Exception]) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        # Never quote the text: it is meant to be a secret.
        if error is ConfigError:
            raise ConfigError(
                f"{where} must be base64 of 32 bytes, as `modelport keys data-key` prints.",
                hint="Print a new one with `modelport keys data-key` (stored keys must then "
                "be set again), or unset it.",
            )
        raise SecretStoreError(
            f"The data key in {where} is not base64 of 32 bytes.",
            hint="Restore it from a backup, or remove it and the key store and set the keys "
            "again with `modelport keys set`.",
        )
    return raw


def _key_id(key: bytes) -> str:
    """A fingerprint of a data key (a hash of 256 random bits reveals nothing of them)."""
    return hashlib.sha256(b"modelport data key id\0" + key).hexdigest()[:32]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


# -- what callers see ---------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    """What is known of a stored key besides the key itself (it is only ever masked)."""

    provider: str
    #: The key as it may be shown: ``sk-…wxyz``.
    masked: str
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    last_used: dt.datetime | None = None
    rotated_at: dt.datetime | None = None
    #: When the key replaced by the last rotation stops being usable.
    previous_until: dt.datetime | None = None
    #: When the key was rotated, oldest first.
    rotations: tuple[dt.datetime, ...] = ()


# -- the file -----------------------------------------------------------------------------


@dataclass
class _Sealed:
    nonce: bytes
    ciphertext: bytes


@dataclass
class _Record:
    value: _Sealed
    masked: str
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    last_used: dt.datetime | None = None
    rotated_at: dt.datetime | None = None
    rotations: list[dt.datetime] = field(default_factory=list)
    previous: _Sealed | None = None
    previous_until: dt.datetime | None = None

    def info(self, provider: str) -> KeyInfo:
        return KeyInfo(
            provider=provider,
            masked=self.masked,
            created_at=self.created_at,
            expires_at=self.expires_at,
            last_used=self.last_used,
            rotated_at=self.rotated_at,
            previous_until=self.previous_until if self.previous is not None else None,
            rotations=tuple(self.rotations),
        )


@dataclass
class _Document:
    key_id: str | None = None
    records: dict[str, _Record] = field(default_factory=dict)


class _Damaged(Exception):
    """Raised while parsing; becomes one SecretStoreError naming the file."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise _Damaged("a ciphertext is not text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Damaged("a ciphertext is not base64") from None


def _time(value: Any, *, optional: bool = True) -> dt.datetime | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _Damaged("a date is missing or not text")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Damaged("a date is not ISO 8601") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _sealed(value: Any, *, optional: bool = False) -> _Sealed | None:
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise _Damaged("an encrypted key is missing")
    nonce, ciphertext = _unb64(value.get("nonce")), _unb64(value.get("ciphertext"))
    if len(nonce) != 12 or len(ciphertext) < 17:
        raise _Damaged("an encrypted key has the wrong length")
    return _Sealed(nonce, ciphertext)


def _parse(text: str) -> _Document:
    try:
        data = json.loads(text)
    except ValueError:
        raise _Damaged("it is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise _Damaged("it has no table of keys")
    if data.get("format") != _FORMAT:
        raise _Damaged(f"its format is not {_FORMAT}")
    key_id = data.get("data_key_id")
    if key_id is not None and not isinstance(key_id, str):
        raise _Damaged("its data key id is not text")
    doc = _Document(key_id=key_id)
    for provider, raw in data["keys"].items():
        if not _PROVIDER_RE.fullmatch(provider) or not isinstance(raw, dict):
            raise _Damaged("it holds an entry that is not a provider's key")
        value = _sealed(raw.get("value"))
        created = _time(raw.get("created_at"), optional=False)
        rotations = raw.get("rotations", [])
        masked = raw.get("masked")
        if value is None or created is None or not isinstance(masked, str):
            raise _Damaged(f"the entry of {provider} is incomplete")
        if not isinstance(rotations, list):
            raise _Damaged(f"the rotations of {provider} are not a list")
        doc.records[provider] = _Record(
            value=value,
            masked=masked,
            created_at=created,
            expires_at=_time(raw.get("expires_at")),
            last_used=_time(raw.get("last_used")),
            rotated_at=_time(raw.get("rotated_at")),
            rotations=[w for w in (_time(r, optional=False) for r in rotations) if w],
            previous=_sealed(raw.get("previous"), optional=True),
            previous_until=_time(raw.get("previous_until")),
        )
    if doc.records and doc.key_id is None:
        raise _Damaged("it has keys but no data key id")
    return doc


def _dump(doc: _Document) -> str:
    def when(value: dt.datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    def sealed(value: _Sealed | None) -> dict[str, str] | None:
        if value is None:
            return None
        return {"nonce": _b64(value.nonce), "ciphertext": _b64(value.ciphertext)}

    keys = {
        provider: {
            "masked": r.masked,
            "created_at": when(r.created_at),
            "expires_at": when(r.expires_at),
            "last_used": when(r.last_used),
            "rotated_at": when(r.rotated_at),
            "rotations": [when(w) for w in r.rotations],
            "previous_until": when(r.previous_until),
            "value": sealed(r.value),
            "previous": sealed(r.previous),
        }
        for provider, r in sorted(doc.records.items())
    }
    body = {"format": _FORMAT, "data_key_id": doc.key_id, "keys": keys}
    return json.dumps(body, indent=2) + "\n"


# -- the OS keyring -----------------------------------------------------------------------


def _keyring() -> Any | None:
    """The OS keyring backend, or None when there is no usable one (or it fails)."""
    try:
        import keyring
        from keyring.backends import chainer, fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring):
            return None
        # An empty chainer, the null backend and their kind answer nothing and store nothing.
        if float(backend.priority) <= 0 or (
            isinstance(backend, chainer.ChainerBackend) and not chainer.ChainerBackend.backends
        ):
            return None
        return backend
    except Exception as e:  # a broken keyring must not break the store: use the file
        log.debug("no usable keyring: %s", type(e).__name__)
        return None


# -- the store ----------------------------------------------------------------------------


class KeyStore:
    """The encrypted API keys of one MODELPORT_HOME."""

    def __init__(self, home: Path, *, secrets_key: str | None = None) -> None:
        self.home = Path(home)
        self.folder = self.home / "secrets"
        self.path = self.folder / "keys.json"
        self.key_file = self.folder / "data.key"
        self._lock_path = self.folder / "keys.lock"
        self._env_key = (
            _decode_data_key(secrets_key, where="MODELPORT_SECRETS_KEY", error=ConfigError)
            if secrets_key
            else None
        )
        self._data_key: bytes | None = self._env_key
        self._data_key_source: str | None = "MODELPORT_SECRETS_KEY" if self._env_key else None
        self._mutex = threading.RLock()
        self._cache: tuple[tuple[int, int, int], _Document] | None = None
        self._used: dict[str, float] = {}
        self._warned: set[tuple[str, dt.datetime]] = set()

    def __repr__(self) -> str:
        return f"KeyStore(path={str(self.path)!r})"

    @property
    def keyring_user(self) -> str:
        """The keyring username the data key of this home is kept under."""
        return f"data-key:{self.home.resolve()}"

    @property
    def data_key_source(self) -> str | None:
        """Where the data key in use came from (None before it is needed)."""
        return self._data_key_source

    # -- reading and writing the file ---------------------------------------------------

    def _read(self, *, cached: bool = True) -> _Document:
        """The file as it is now (``cached=False``: a private copy a write may change)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return _Document()
        except OSError as e:
            raise self._unreadable(e) from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._mutex:
            if cached and self._cache is not None and self._cache[0] == stamp:
                return self._cache[1]
        try:
            text = self.path.read_text(encoding="utf-8")
            doc = _parse(text)
        except OSError as e:
            raise self._unreadable(e) from None
        except (_Damaged, UnicodeDecodeError) as e:
            reason = str(e) if isinstance(e, _Damaged) else "it is not UTF-8 text"
            raise SecretStoreError(
                f"The key store {self.path} is damaged: {reason}.",
                hint="Restore it from a backup, or remove it and set the keys again with "
                "`modelport keys set`.",
            ) from None
        if cached:
            with self._mutex:
                self._cache = (stamp, doc)
        return doc

    def _unreadable(self, e: OSError) -> SecretStoreError:
        return SecretStoreError(
            f"The key store {self.path} cannot be read: {(e.strerror or str(e)).lower()}.",
            hint="Check the permissions of the folder (it should be yours, mode 0700).",
        )

    def _ensure_folder(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is cut by the umask and ignored for a folder that already existed.
        os.chmod(self.folder, 0o700)

    def _write_file(self, path: Path, text: str) -> None:
        """Write a 0600 file atomically: a temporary file in the same folder, then rename."""
        # mkstemp creates the file readable and writable by its owner only (0600).
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename durable where the OS allows
            dirfd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        try:
            self._ensure_folder()
            lock = FileLock(str(self._lock_path), timeout=_LOCK_TIMEOUT, mode=0o600)
            with self._mutex, lock:
                yield
        except Timeout:
            raise SecretStoreError(
                f"The key store stayed locked by another process for {_LOCK_TIMEOUT:g} s.",
                hint=f"Let the other modelport process finish, or remove {self._lock_path} "
                "if none runs.",
            ) from None
        except OSError as e:
            raise SecretStoreError(
                f"The key store {self.path} cannot be written: {(e.strerror or str(e)).lower()}.",
                hint="Check the permissions of MODELPORT_HOME.",
            ) from None

    def _save(self, doc: _Document) -> None:
        # A rotation's old key is dropped from the file once its grace period is over.
        now = _now()
        for record in doc.records.values():
            if record.previous is not None and (
                record.previous_until is None or record.previous_until <= now
            ):
                record.previous = None
                record.previous_until = None
        self._write_file(self.path, _dump(doc))
        with self._mutex:
            self._cache = None

    # -- the data key --------------------------------------------------------------------

    def _found_keys(self) -> Iterator[tuple[bytes, str]]:
        """The data keys already kept for this home, where they are: keyring, then file."""
        backend = _keyring()
        if backend is not None:
            try:
                text = backend.get_password(KEYRING_SERVICE, self.keyring_user)
            except Exception as e:
                log.debug("the keyring cannot be read: %s", type(e).__name__)
                text = None
            if text:
                yield (
                    _decode_data_key(text, where="the OS keyring", error=SecretStoreError),
                    ("the OS keyring"),
                )
        try:
            text = self.key_file.read_text(encoding="ascii")
        except FileNotFoundError:
            return
        except UnicodeDecodeError:
            text = ""  # not base64: reported as such below
        except OSError as e:
            raise SecretStoreError(
                f"The data key file {self.key_file} cannot be read: "
                f"{(e.strerror or str(e)).lower()}.",
                hint="Check its permissions (it should be yours, mode 0600).",
            ) from None
        yield (
            _decode_data_key(text, where=str(self.key_file), error=SecretStoreError),
            str(self.key_file),
        )

    def _wrong_key(self, *, found: bool) -> SecretStoreError:
        if self._env_key is not None or found:
            message = "The key store cannot be decrypted with this data key."
        else:
            message = "The key store cannot be decrypted: its data key is not found."
        return SecretStoreError(
            message,
            hint="Set MODELPORT_SECRETS_KEY to the data key it was written with (or unset it "
            f"to use the OS keyring or {self.key_file}), or remove {self.path} and set the "
            "keys again.",
        )

    def _key_for(self, doc: _Document, *, create: bool) -> bytes:
        """The data key that opens this document; a new one only when ``create`` and the
        store holds no key yet."""
        wanted = doc.key_id if doc.records else None
        with self._mutex:
            if self._data_key is not None and wanted in (None, _key_id(self._data_key)):
                return self._data_key
            if self._env_key is not None:
                raise self._wrong_key(found=True)
            found = False
            for key, source in self._found_keys():
                found = True
                if wanted in (None, _key_id(key)):
                    self._data_key, self._data_key_source = key, source
                    return key
            if wanted is not None or not create:
                raise self._wrong_key(found=found)
            key, source = self._new_key()
            self._data_key, self._data_key_source = key, source
            return key

    def _new_key(self) -> tuple[bytes, str]:
        key = os.urandom(32)
        text = _b64(key)
        backend = _keyring()
        if backend is not None:
            try:
                backend.set_password(KEYRING_SERVICE, self.keyring_user, text)
                # A backend that accepts and forgets (or garbles) would lose every key.
                if backend.get_password(KEYRING_SERVICE, self.keyring_user) == text:
                    return key, "the OS keyring"
            except Exception as e:
                log.debug("the keyring cannot store the data key: %s", type(e).__name__)
        self._write_file(self.key_file, text + "\n")
        return key, str(self.key_file)

    # -- encryption ----------------------------------------------------------------------

    @staticmethod
    def _seal(key: bytes, provider: str, value: str) -> _Sealed:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        return _Sealed(nonce, AESGCM(key).encrypt(nonce, value.encode(), provider.encode()))

    def _open(self, key: bytes, provider: str, sealed: _Sealed) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            plain = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, provider.encode())
            return plain.decode()
        except (InvalidTag, UnicodeDecodeError):
            raise SecretStoreError(
                f"The stored {provider} key cannot be decrypted: the key store was altered.",
                hint=f"Set it again with `modelport keys set {provider}`.",
            ) from None

    # -- the operations ------------------------------------------------------------------

    def set(self, provider: str, value: str, *, expires_in: dt.timedelta | None = None) -> KeyInfo:
        """Store a provider's key (replacing any stored one and its history)."""
        check_provider_name(provider)
        value = _check_value(value)
        _check_lifetime(expires_in)
        with self._locked():
            doc = self._read(cached=False)
            key = self._key_for(doc, create=True)
            now = _now()
            record = _Record(
                value=self._seal(key, provider, value),
                masked=mask(value),
                created_at=now,
                expires_at=now + expires_in if expires_in is not None else None,
            )
            doc = _Document(key_id=_key_id(key), records={**doc.records, provider: record})
            self._save(doc)
            self._used.pop(provider, None)
            return record.info(provider)

    def rotate(
        self,
        provider: str,
        value: str,
        *,
        grace: dt.timedelta = dt.timedelta(days=1),
        expires_in: dt.timedelta | None = None,
    ) -> KeyInfo:
        """Replace a stored key; the old one stays readable (``previous``) for ``grace``."""
        check_provider_name(provider)
        value = _check_value(value)
        _check_lifetime(expires_in)
        if grace < dt.timedelta(0):
            raise InvalidValueError("The grace period must not be negative.")
        with self._locked():
            doc = self._read(cached=False)
            old = doc.records.get(provider)
            if old is None:
                raise MissingKeyError(provider, provider, ())
            key = self._key_for(doc, create=False)
            now = _now()
            # The old key stays usable for the grace period, never past its own expiry.
            until = now + grace
            if old.expires_at is not None:
                until = min(until, old.expires_at)
            record = _Record(
                value=self._seal(key, provider, value),
                masked=mask(value),
                created_at=now,
                expires_at=now + expires_in if expires_in is not None else None,
                last_used=None,
                rotated_at=now,
                rotations=[*old.rotations, now],
                previous=old.value if until > now else None,
                previous_until=until if until > now else None,
            )
            doc.records = {**doc.records, provider: record}
            self._save(doc)
            self._used.pop(provider, None)
            return record.info(provider)

    def get(self, provider: str) -> str | None:
        """The provider's stored key; None if none; KeyExpiredError once it has expired."""
        check_provider_name(provider)
        doc = self._read()
        record = doc.records.get(provider)
        if record is None:
            return None
        now = _now()
        if record.expires_at is not None:
            if record.expires_at <= now:
                raise KeyExpiredError(provider, _stamp(record.expires_at))
            if record.expires_at - now <= WARN_BEFORE:
                self._warn(provider, record.expires_at, now)
        return self._open(self._key_for(doc, create=False), provider, record.value)

    def _warn(self, provider: str, expires_at: dt.datetime, now: dt.datetime) -> None:
        with self._mutex:
            if (provider, expires_at) in self._warned:  # once per process, not per request
                return
            self._warned.add((provider, expires_at))
        days = (expires_at - now).total_seconds() / 86400
        left = f"{days:.0f} days" if days >= 1.5 else f"{days * 24:.0f} hours"
        log.warning(
            "The stored %s key expires on %s (in %s): rotate it with `modelport keys rotate %s`.",
            provider,
            _stamp(expires_at),
            left,
            provider,
        )

    def previous(self, provider: str) -> str | None:
        """The key the last rotation replaced, while its grace period lasts; else None."""
        check_provider_name(provider)
        doc = self._read()
        record = doc.records.get(provider)
        if record is None or record.previous is None or record.previous_until is None:
            return None
        if record.previous_until <= _now():
            return None
        return self._open(self._key_for(doc, create=False), provider, record.previous)

    def remove(self, provider: str) -> bool:
        """Forget a provider's key; whether there was one."""
        check_provider_name(provider)
        if provider not in self._read().records:
            return False
        with self._locked():
            doc = self._read(cached=False)
            if provider not in doc.records:
                return False
            doc.records = {p: r for p, r in doc.records.items() if p != provider}
            self._save(doc)
            self._used.pop(provider, None)
            return True

    def info(self, provider: str) -> KeyInfo | None:
        """What is known of a provider's stored key, or None."""
        check_provider_name(provider)
        record = self._read().records.get(provider)
        return None if record is None else record.info(provider)

    def list(self) -> list[KeyInfo]:
        """Every stored key's information, by provider name."""
        doc = self._read()
        return [doc.records[p].info(p) for p in sorted(doc.records)]

    def mark_used(self, provider: str) -> None:
        """Record that the provider's key was just used (written at most once a minute)."""
        check_provider_name(provider)
        clock = time.monotonic()
        with self._mutex:
            last = self._used.get(provider)
            if last is not None and clock - last < USED_EVERY:
                return
            self._used[provider] = clock
        try:
            record = self._read().records.get(provider)
            now = _now()
            if record is None or (
                record.last_used is not None
                and (now - record.last_used).total_seconds() < USED_EVERY
            ):
                return
            with self._locked():
                doc = self._read(cached=False)
                record = doc.records.get(provider)
                if record is None:
                    return
                record.last_used = now
                self._save(doc)
        except SecretStoreError as e:
            # A request must not fail because its bookkeeping could not be written.
            log.warning("The last use of the %s key was not recorded: %s", provider, e.message)


def _check_lifetime(expires_in: dt.timedelta | None) -> None:
    if expires_in is not None and expires_in <= dt.timedelta(0):
        raise InvalidValueError("A key's lifetime must be longer than 0.")


_stores_lock = threading.Lock()
_stores: dict[tuple[str, str | None], KeyStore] = {}


def get_key_store() -> KeyStore:
    """The key store of the current MODELPORT_HOME (one per home in a process)."""
    from modelport.settings import get_settings

    settings = get_settings()
    home = Path(settings.home).expanduser().resolve()
    # The data key setting is part of the identity, never shown (the dict is private).
    ident = (str(home), settings.secrets_key)
    with _stores_lock:
        store = _stores.get(ident)
        if store is None:
            store = KeyStore(home, secrets_key=settings.secrets_key)
            _stores[ident] = store
        return store


def reset_key_store() -> None:
    """Forget the key stores of this process (the next ``get_key_store`` makes a new one)."""
    with _stores_lock:
        _stores.clear()
