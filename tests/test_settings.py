from __future__ import annotations

import ast
from pathlib import Path

import pytest

from modelport.errors import ConfigError, InvalidValueError
from modelport.settings import SETTINGS, load_settings, parse_size, setting_fields


def test_defaults_live_under_home(tmp_path: Path) -> None:
    s = load_settings({"MODELPORT_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.database_url == f"sqlite:///{tmp_path / 'modelport.db'}"
    assert s.database_path == tmp_path / "modelport.db"
    assert s.bundled_catalog
    assert s.port == 8642
    assert s.gpu_memory_gb is None


def test_config_file_and_env_precedence(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('port = 9000\nhost = "0.0.0.0"\ngpu_memory = "24GB"\n')
    s = load_settings({"MODELPORT_HOME": str(tmp_path), "MODELPORT_PORT": "9100"})
    assert s.port == 9100
    assert s.host == "0.0.0.0"
    assert s.gpu_memory_gb == 24.0


@pytest.mark.parametrize(
    ("env", "config", "fragment"),
    [
        ({"MODELPORT_PORT": "99999"}, "", "between 1 and 65535"),
        ({"MODELPORT_PORT": "http"}, "", "must be a number"),
        ({"MODELPORT_BUNDLED_CATALOG": "maybe"}, "", "true or false"),
        ({"MODELPORT_HTTP_TIMEOUT": "-1"}, "", "must not be negative"),
        ({}, "port = [1", "not valid TOML"),
        ({}, "colour = 'blue'", "unknown key"),
    ],
)
def test_invalid_settings_say_what_is_wrong(
    tmp_path: Path, env: dict[str, str], config: str, fragment: str
) -> None:
    if config:
        (tmp_path / "config.toml").write_text(config)
    with pytest.raises(ConfigError, match=fragment):
        load_settings({"MODELPORT_HOME": str(tmp_path), **env})


@pytest.mark.parametrize(
    ("text", "size"),
    [("24GB", 24 * 10**9), ("512MiB", 512 * 2**20), ("1.5g", 1_500_000_000), ("100", 100)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1GB", "12XB", "nanGB"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(InvalidValueError):
        parse_size(text)


def test_every_setting_is_documented() -> None:
    from modelport.docs import settings_markdown

    assert {s.field for s in SETTINGS} == set(setting_fields())
    docs = Path(__file__).parents[1] / "docs" / "settings.md"
    assert docs.read_text() == settings_markdown(), "run: python -m modelport.docs"
    for spec in SETTINGS:
        assert spec.env in docs.read_text()


def test_cli_reference_is_current() -> None:
    from modelport.docs import cli_markdown

    docs = Path(__file__).parents[1] / "docs" / "cli.md"
    assert docs.read_text() == cli_markdown(), "run: python -m modelport.docs"
    for command in (
        "models",
        "search",
        "show",
        "validate",
        "recommend",
        "system",
        "serve",
        "catalog schema",
        "catalog validate",
        "catalog import",
        "catalog export",
        "catalog update",
        "catalog remote add",
    ):
        assert f"`modelport {command}`" in docs.read_text(), command


def _literal_loops(tree: ast.Module) -> dict[str, set[str]]:
    """Names bound by a loop over literal strings (``for var in ("A", "B")``)."""
    bound: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.For | ast.comprehension)
            and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Tuple | ast.List)
        ):
            names = {str(e.value) for e in node.iter.elts if isinstance(e, ast.Constant)}
            bound.setdefault(node.target.id, set()).update(names)
    return bound


def _environment_reads() -> tuple[set[str], list[str]]:
    """Every environment variable the package reads, found in its source; and the reads
    whose variable cannot be told from the source."""
    import modelport

    found: set[str] = set()
    unknown: list[str] = []
    src = Path(modelport.__file__).parent

    def is_environ(node: ast.expr) -> bool:
        return ast.unparse(node) in ("os.environ", "environ", "env")

    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bound = _literal_loops(tree)
        for node in ast.walk(tree):
            arg: ast.expr | None = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                owner, attr = ast.unparse(node.func.value), node.func.attr
                if (is_environ(node.func.value) and attr in ("get", "pop", "setdefault")) or (
                    owner == "os" and attr == "getenv"
                ):
                    arg = node.args[0]
            elif isinstance(node, ast.Subscript) and is_environ(node.value):
                arg = node.slice
            elif isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators):
                arg = node.left
            if arg is None:
                continue
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in bound:
                found.update(bound[arg.id])
            else:
                unknown.append(f"{path.relative_to(src)}:{node.lineno}")
    return found, unknown


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    from modelport.settings import ENVIRONMENT

    found, unknown = _environment_reads()
    # settings.py reads each setting through its spec; nothing else may read a computed name.
    assert all(w.startswith("settings.py:") for w in unknown), unknown
    documented = {s.env for s in SETTINGS} | {v.name for v in ENVIRONMENT}
    assert found - documented == set(), "add them to ENVIRONMENT in settings.py"
    assert {"MODELPORT_OFFLINE", "HF_HUB_OFFLINE", "HF_TOKEN", "GITHUB_TOKEN"} <= found
    docs = (Path(__file__).parents[1] / "docs" / "settings.md").read_text()
    for var in ENVIRONMENT:
        assert f"`{var.name}`" in docs
