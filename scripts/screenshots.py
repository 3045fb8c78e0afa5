"""Refresh docs/screenshots/ from the browser tests.

The tests in tests/test_web_ui.py photograph every page they drive. A test run never writes
into the checkout, so they photograph into ``$MODELPORT_SCREENSHOTS`` when it is set and
into their own temporary folders otherwise. This script runs them with that variable
pointing at a temporary folder, and copies the pictures into docs/screenshots/ only when
every test passed.

    python scripts/screenshots.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "screenshots"


def main() -> int:
    """Run the browser tests, then copy their screenshots; the tests' exit status."""
    with tempfile.TemporaryDirectory(prefix="modelport-screenshots-") as folder:
        env = {**os.environ, "MODELPORT_SCREENSHOTS": folder}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                str(ROOT / "tests" / "test_web_ui.py"),
            ],
            cwd=ROOT,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            print("The browser tests failed: docs/screenshots/ left as it was.", file=sys.stderr)
            return done.returncode
        pictures = sorted(Path(folder).glob("*.png"))
        if not pictures:
            print("The browser tests took no screenshots.", file=sys.stderr)
            return 1
        TARGET.mkdir(parents=True, exist_ok=True)
        for old in TARGET.glob("*.png"):
            old.unlink()
        for picture in pictures:
            shutil.copy2(picture, TARGET / picture.name)
        print(f"{len(pictures)} screenshots in {TARGET.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
