"""A hub another package could publish: registered through the ``modelport.hubs`` entry
point group of its own distribution (``mp_toyhub-0.1.dist-info``), not by modelport.

Its registry is a folder (``$TOYHUB_ROOT``): ``NAME/VERSION/files…``. Names are lower-case
words joined by ``-``; a pull without a version takes the highest one.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from modelport.errors import InvalidReferenceError, ModelNotFoundError
from modelport.hubs.base import (
    Fetched,
    Hub,
    HubFile,
    HubModel,
    ProgressCallback,
    PullEvent,
    PullOptions,
    PullTarget,
    Ref,
    store_folder,
)

_NAME = re.compile(r"[a-z]+(?:-[a-z]+)*")


class ToyHub(Hub):
    """Models kept as folders under ``$TOYHUB_ROOT``."""

    name = "toy"
    options_refusal = "a toy model is one folder, kept whole"

    @staticmethod
    def _root() -> Path:
        return Path(os.environ["TOYHUB_ROOT"])

    def check_name(self, text: str, name: str, revision: str | None) -> None:
        """Lower-case words joined by '-'."""
        if not _NAME.fullmatch(name):
            raise InvalidReferenceError(
                text, f"{name!r} is not a toy model name", hint="Use words joined by '-'."
            )

    def pinned(self, name: str, revision: str | None) -> str | None:
        """A version number is fixed."""
        return revision if revision and revision.isdigit() else None

    def _versions(self, name: str) -> list[int]:
        folder = self._root() / name
        if not folder.is_dir():
            raise ModelNotFoundError(f"toy:{name}", message=f"Toy Hub has no {name}.")
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())

    def _model(self, name: str, version: int) -> HubModel:
        folder = self._root() / name / str(version)
        files = tuple(
            HubFile(
                p.relative_to(folder).as_posix(),
                p.stat().st_size,
                hashlib.sha256(p.read_bytes()).hexdigest(),
                "sha256",
            )
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        )
        return HubModel("toy", name, str(version), files, task="text-classification", library="toy")

    def search(
        self,
        query: str,
        *,
        task: str | None = None,
        library: str | None = None,
        limit: int = 20,
        sort: str | None = None,
    ) -> list[HubModel]:
        """Names containing the query, at their newest version."""
        names = sorted(p.name for p in self._root().iterdir() if query.lower() in p.name)
        return [self._model(n, self._versions(n)[-1]) for n in names][:limit]

    def info(self, ref: Ref, *, store: Any = None) -> HubModel:
        """The model at its version (the newest without one)."""
        versions = self._versions(ref.name)
        version = int(ref.revision) if ref.revision else versions[-1]
        return self._model(ref.name, version)

    def resolve(self, ref: Ref, *, store: Any, options: PullOptions) -> PullTarget:
        """The version asked for, or the newest."""
        model = self.info(ref.with_revision(options.revision or ref.revision))
        return PullTarget(
            name=model.id,
            revision=model.revision,
            ref=f"toy:{model.id}@{model.revision}",
            requested=options.revision or ref.revision,
            refs=("latest",),
            model=model,
            files=model.files,
        )

    def fetch(
        self, target: PullTarget, *, store: Any, options: PullOptions, emit: ProgressCallback
    ) -> Fetched:
        """Copy the version's files into the store."""
        folder = self._root() / target.name / target.revision
        files = [f.path for f in target.files or ()]
        for f in target.files or ():
            emit(PullEvent("downloading", file=f.path, total=f.size, completed=f.size))
        size = sum(f.size or 0 for f in target.files or ())
        return Fetched(store_folder(store, folder, files, emit=emit), size)
