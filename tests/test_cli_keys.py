"""``modelport keys``, driven through the real CLI with the key on stdin.

Every test checks that the key never shows in what the CLI prints. No OS keyring is
touched: keyring's fail backend is installed for each test (the store then keeps its
data key in ``$MODELPORT_HOME/secrets/data.key``).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import keyring
import keyring.core
import pytest
from keyring.backends import fail

from modelport.cli import main

KEY = "sk-proj-Zq8cTn4VbW2mXr7LpK0sYd3Hf6JgA1uEwxyz"
NEW = "sk-proj-Rt5Yu8Io1Pa3Sd6Fg9Hj2Kl4Zx7Cv0Bn4321"


@pytest.fixture(autouse=True)
def _no_os_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyring.core, "_keyring_backend", keyring.core._keyring_backend)
    keyring.set_keyring(fail.Keyring())
    monkeypatch.delenv("MODELPORT_SECRETS_KEY", raising=False)


class Cli:
    """Runs ``modelport`` in-process with a given stdin; remembers everything printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        self.printed: list[str] = []
        self.stdin = io.StringIO("")

    def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.stdin = io.StringIO(stdin)
        self.monkeypatch.setattr("sys.stdin", self.stdin)
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = self.capsys.readouterr()
        self.printed += [out, err]
        return code, out, err

    def never_showed(self, *values: str) -> None:
        text = "".join(self.printed)
        for value in values:
            assert value not in text
            assert value[-12:] not in text


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(capsys, monkeypatch)


def test_set_list_rotate_rm(cli: Cli, _isolated_home: Path) -> None:
    code, out, err = cli("keys", "list")
    assert code == 0
    assert "No key is stored. Set one with `modelport keys set PROVIDER`." in out

    code, out, err = cli("keys", "set", "openai", stdin=f"{KEY}\n")
    assert (code, err) == (0, "")
    assert out.strip() == "Stored the openai key sk-…wxyz."

    code, out, _ = cli("keys", "list")
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split() == ["PROVIDER", "KEY", "SET", "EXPIRES", "LAST", "USED", "ROTATED"]
    assert row.split()[:5] == ["openai", "sk-…wxyz", "just", "now", "never"]

    code, out, err = cli("keys", "rotate", "openai", "--grace", "2h", stdin=NEW)
    assert (code, err) == (0, "")
    assert "Rotated the openai key: now sk-…4321." in out
    assert "The old key stays usable until " in out

    code, out, _ = cli("keys", "list", "--json")
    assert code == 0
    [doc] = json.loads(out)
    assert set(doc) == {
        "provider",
        "masked",
        "created_at",
        "expires_at",
        "last_used",
        "rotated_at",
        "previous_until",
        "rotations",
    }
    assert doc["provider"] == "openai" and doc["masked"] == "sk-…4321"
    assert doc["expires_at"] is None and doc["previous_until"] is not None
    assert doc["rotations"] == [doc["rotated_at"]]

    code, out, err = cli("keys", "rm", "openai")
    assert (code, err) == (0, "")
    assert out.strip() == "Removed the openai key."
    code, out, err = cli("keys", "rm", "openai")
    assert code == 1 and out == ""
    assert err == (
        "Error: No openai key is stored, so none was removed. "
        "`modelport keys list` shows the stored keys.\n"
    )
    cli.never_showed(KEY, NEW)
    for path in _isolated_home.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes() and NEW.encode() not in path.read_bytes()


def test_expires_shows_in_the_list(cli: Cli) -> None:
    code, out, _ = cli("keys", "set", "anthropic", "--expires", "90d", "--json", stdin=KEY)
    assert code == 0
    info = json.loads(out)
    assert info["provider"] == "anthropic" and info["masked"] == "sk-…wxyz"
    assert info["expires_at"] > info["created_at"]
    code, out, _ = cli("keys", "list")
    expires = info["expires_at"][:10]
    assert expires in out.splitlines()[1].split()
    cli.never_showed(KEY)


def test_an_unknown_provider_is_one_sentence_and_no_key_is_read(cli: Cli) -> None:
    code, out, err = cli("keys", "set", "opena1", stdin=KEY)
    assert code == 2 and out == ""
    assert err.startswith("Error: No hosted provider is called 'opena1'. Known providers: ")
    assert "openai" in err and err.count("\n") == 1
    assert cli.stdin.tell() == 0  # refused before the key was read
    code, _, err = cli("keys", "set", "--json", "opena1", stdin=KEY)
    assert code == 2
    assert json.loads(err)["error"]["code"] == "unknown_provider"
    code, _, err = cli("keys", "rm", "opena1")
    assert code == 2 and "No hosted provider is called 'opena1'." in err
    cli.never_showed(KEY)


@pytest.mark.parametrize("stdin", ["", "  \n\n"])
def test_an_empty_stdin_is_refused(cli: Cli, stdin: str) -> None:
    code, out, err = cli("keys", "set", "openai", stdin=stdin)
    assert code == 2 and out == ""
    assert err.startswith("Error: No key was given: stdin was empty. Pipe the key in")
    assert cli("keys", "list", "--json")[1].strip() == "[]"


def test_a_key_given_as_an_argument_is_refused_and_not_repeated(cli: Cli) -> None:
    code, out, err = cli("keys", "set", "openai", KEY)
    assert code == 2 and out == ""
    assert err.startswith("Error: A key is never taken as an argument")
    assert cli.stdin.tell() == 0
    code, _, err = cli("keys", "set", KEY)  # the key where the provider goes
    assert code == 2 and "Invalid provider name." in err
    cli.never_showed(KEY)


def test_a_key_on_two_lines_is_refused(cli: Cli) -> None:
    code, _, err = cli("keys", "set", "openai", stdin=f"{KEY}\n{NEW}\n")
    assert code == 2
    assert "control or invisible character" in err
    cli.never_showed(KEY, NEW)


def test_rotate_needs_a_stored_key_and_good_durations(cli: Cli) -> None:
    code, _, err = cli("keys", "rotate", "openai", stdin=NEW)
    assert code == 1
    assert err == "Error: No openai key is set. Set one with `modelport keys set openai`.\n"
    assert cli.stdin.tell() == 0
    assert cli("keys", "set", "openai", stdin=KEY)[0] == 0
    for option in (["--grace", "soon"], ["--expires", "90"], ["--expires", "0d"]):
        code, _, err = cli("keys", "rotate", "openai", *option, stdin=NEW)
        assert code == 2, option
        assert err.startswith(f"Error: {option[0]}"), err
        assert cli.stdin.tell() == 0
    code, out, _ = cli("keys", "rotate", "openai", "--grace", "0s", stdin=NEW)
    assert code == 0 and "The old key is no longer used." in out
    cli.never_showed(KEY, NEW)


def test_data_key_prints_a_new_base64_key(cli: Cli) -> None:
    code, out, _ = cli("keys", "data-key")
    assert code == 0
    assert len(base64.b64decode(out.strip(), validate=True)) == 32
    code, again, _ = cli("keys", "data-key", "--json")
    assert code == 0
    assert json.loads(again)["data_key"] != out.strip()


def test_a_data_key_from_the_cli_opens_the_store(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, _isolated_home: Path
) -> None:
    import modelport.api as api

    _, out, _ = cli("keys", "data-key")
    monkeypatch.setenv("MODELPORT_SECRETS_KEY", out.strip())
    api.reset()
    assert cli("keys", "set", "groq", stdin=KEY)[0] == 0
    assert not (_isolated_home / "secrets" / "data.key").exists()
    monkeypatch.setenv("MODELPORT_SECRETS_KEY", "too short")
    api.reset()
    code, _, err = cli("keys", "list")
    assert code == 1
    assert err.startswith("Error: MODELPORT_SECRETS_KEY must be base64 of 32 bytes")
    assert "too short" not in err
    cli.never_showed(KEY)
