"""The use-cases of the key store: set, rotate, remove and list hosted providers' keys.

Provider names are checked against the registered providers, so a typo is refused in one
sentence instead of storing a key nobody will read. Durations are ``90d``, ``24h`` ...
The key may be given as a function that reads it (a prompt): it is called only once the
provider and the options are known to be good, so nobody pastes a key for nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from modelport.errors import (
    InvalidValueError,
    MissingKeyError,
    ModelportError,
    UnknownProviderError,
)
from modelport.providers.base import Credentials, Provider, get_provider, provider_names
from modelport.secrets import KeyInfo, check_provider_name, get_key_store, new_data_key
from modelport.settings import environment_key, get_settings, parse_seconds

__all__ = [
    "credentials_for",
    "data_key",
    "key_status",
    "list_keys",
    "remove_key",
    "rotate_key",
    "set_key",
]


def _registered(provider: str) -> str:
    check_provider_name(provider)
    known = provider_names()
    if provider not in known:
        raise UnknownProviderError(provider, known)
    return provider


def _duration(value: str | dt.timedelta | None, *, what: str) -> dt.timedelta | None:
    if value is None or isinstance(value, dt.timedelta):
        return value
    try:
        # A bare number has no obvious unit here (seconds? days?): ask for one.
        return dt.timedelta(seconds=parse_seconds(value, default_unit=None))
    except InvalidValueError as e:
        raise InvalidValueError(f"{what}: {e.message}", hint=e.hint) from None


def _lifetime(expires: str | dt.timedelta | None) -> dt.timedelta | None:
    lifetime = _duration(expires, what="--expires")
    if lifetime is not None and lifetime <= dt.timedelta(0):
        raise InvalidValueError("--expires must be longer than 0.", hint="For example 90d.")
    return lifetime


def _value(value: str | Callable[[], str]) -> str:
    return value() if callable(value) else value


def set_key(
    provider: str,
    value: str | Callable[[], str],
    *,
    expires: str | dt.timedelta | None = None,
) -> KeyInfo:
    """Store a provider's API key, encrypted; ``expires`` (``90d``) bounds its lifetime."""
    name, lifetime = _registered(provider), _lifetime(expires)
    return get_key_store().set(name, _value(value), expires_in=lifetime)


def rotate_key(
    provider: str,
    value: str | Callable[[], str],
    *,
    grace: str | dt.timedelta = "24h",
    expires: str | dt.timedelta | None = None,
) -> KeyInfo:
    """Replace a stored key; the old one stays usable for ``grace`` (``24h``, ``0s``)."""
    name, lifetime = _registered(provider), _lifetime(expires)
    overlap = _duration(grace, what="--grace") or dt.timedelta(0)
    store = get_key_store()
    if store.info(name) is None:  # before asking for a new key (the store checks again)
        raise MissingKeyError(name, name, ())
    return store.rotate(name, _value(value), grace=overlap, expires_in=lifetime)


def remove_key(provider: str) -> bool:
    """Forget a provider's stored key; whether there was one."""
    store = get_key_store()
    # The key of a provider whose plugin is gone can still be removed.
    if store.info(check_provider_name(provider)) is None:
        _registered(provider)
        return False
    return store.remove(provider)


def list_keys() -> list[KeyInfo]:
    """Every stored key, masked, with when it was set, expires, was used and rotated."""
    return get_key_store().list()


def data_key() -> str:
    """A new data key for MODELPORT_SECRETS_KEY (base64 of 32 random bytes)."""
    return new_data_key()


def credentials_for(provider: Provider, key: str | None = None) -> Credentials | None:
    """The key to call a provider with: given > its environment variable > the key store."""
    if key:
        return Credentials(key, "the key given")
    if provider.simulated:
        return None  # nothing is sent anywhere: no key is looked for (nor read from disk)
    found = environment_key(provider.env_keys)
    if found is not None:
        return Credentials(found[1], f"${found[0]}")
    stored = get_key_store().get(provider.name)
    if stored:
        return Credentials(stored, "the key store")
    if provider.needs_key:
        raise MissingKeyError(provider.name, provider.label, provider.env_keys)
    return None


def key_status(provider_name: str, *, cli: bool = True) -> str | None:
    """Where a usable key for a provider is (``$OPENAI_API_KEY``, ``the key store``,
    ``the claude CLI``; ``cli=False``: an API key only), or None; never the key."""
    try:
        provider = get_provider(provider_name)
    except ModelportError:
        return None
    found = environment_key(provider.env_keys)
    if found is not None:
        return f"${found[0]}"
    try:
        if get_key_store().get(provider.name):
            return "the key store"
    except ModelportError:
        pass
    if not provider.needs_key:
        return "no key needed"
    if (
        cli
        and provider.cli
        and get_settings().access_of(provider.name) != "api"
        and provider.cli_ready()
    ):
        return f"the {provider.cli} CLI"
    return None
