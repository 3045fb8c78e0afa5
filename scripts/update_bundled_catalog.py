"""Regenerate the hosted-API entries of the bundled catalog from LiteLLM's model map.

Usage:
    pip download --no-deps -d /tmp/litellm litellm
    python scripts/update_bundled_catalog.py /tmp/litellm/litellm-*.whl

    # Re-apply the importer's current rules to the entries it generated before,
    # without a new map (e.g. after a fix in how it reads prices):
    python scripts/update_bundled_catalog.py --reapply

The map is read from the wheel (``litellm/model_prices_and_context_window_backup.json``)
or from a JSON file given directly. Entries the importer made before are replaced;
hand-curated entries in the same provider files are kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import zipfile
from pathlib import Path

from modelport.catalog.entry import ModelEntry
from modelport.catalog.importers.litellm import import_litellm_map, without_placeholder_prices
from modelport.catalog.loader import dump_catalog, read_catalog_file

DATA = Path(__file__).resolve().parents[1] / "src" / "modelport" / "catalog" / "data"
PROVIDERS = ("openai", "anthropic", "google", "groq", "cohere", "mistral", "deepseek", "xai")
GENERATED = "Generated from LiteLLM"


def read_map(path: Path) -> tuple[dict[str, object], str]:
    """The parsed map and the litellm version it came from."""
    if path.suffix == ".whl":
        version = re.search(r"litellm-([^-]+)-", path.name)
        with zipfile.ZipFile(path) as wheel:
            text = wheel.read("litellm/model_prices_and_context_window_backup.json")
        return json.loads(text), version.group(1) if version else "unknown"
    return json.loads(path.read_text()), "unknown"


def reapply() -> None:
    """Rewrite the generated entries of each provider file with the importer's rules."""
    for provider in PROVIDERS:
        path = DATA / f"{provider}.json"
        if not path.exists():
            continue
        doc = json.loads(path.read_text())
        entries = [
            without_placeholder_prices(e) if e.notes.startswith(GENERATED) else e
            for e in read_catalog_file(path).entries
        ]
        meta = {k: v for k, v in doc.items() if k not in ("schema_version", "entries")}
        text = dump_catalog(entries, **meta)
        changed = text != path.read_text()
        path.write_text(text)
        print(f"{path.name}: {'rewritten' if changed else 'unchanged'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, nargs="?", help="a litellm wheel or a map JSON file")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date.today())
    parser.add_argument(
        "--reapply", action="store_true", help="re-apply the importer to the bundled entries"
    )
    args = parser.parse_args()
    if args.reapply:
        reapply()
        return 0
    if args.source is None:
        parser.error("give a litellm wheel or map JSON file, or --reapply")
    data, version = read_map(args.source)
    url = f"https://pypi.org/project/litellm/{version}/"
    made = import_litellm_map(data, as_of=args.as_of, providers=PROVIDERS, source_url=url)
    by_provider: dict[str, list[ModelEntry]] = {}
    for entry in made.entries:
        by_provider.setdefault(entry.provider, []).append(entry)
    for provider, generated in sorted(by_provider.items()):
        path = DATA / f"{provider}.json"
        kept = (
            [e for e in read_catalog_file(path).entries if not e.notes.startswith(GENERATED)]
            if path.exists()
            else []
        )
        kept_ids = {e.id for e in kept}
        fresh = [e for e in generated if e.id not in kept_ids]
        entries = sorted(kept, key=lambda e: e.id) + sorted(fresh, key=lambda e: e.id)
        path.write_text(
            dump_catalog(entries, provider=provider, as_of=args.as_of.isoformat(), source=url)
        )
        print(f"{path.name}: {len(kept)} curated + {len(fresh)} from litellm {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
