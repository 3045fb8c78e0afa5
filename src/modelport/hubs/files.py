"""Which files of a model repository to download.

Per folder, one weights format is chosen: safetensors first; pickle-based weights
(``.bin``, ``.pt``, ``.pth``, ``.pkl``, ``.ckpt`` and the rest of the pickle family:
joblib, dill, scikit-learn ``.sav``, NeMo archives, ``.pt2`` and tarred checkpoints)
only when nothing else exists and pickles are allowed; then ONNX, GGUF, TensorFlow
and Flax. Other formats' duplicate weights are skipped. Configs, tokenizer files, the
model card and the sentence-transformers module folders are always kept. ``include``
globs add files, ``exclude`` globs remove them; pickles still need ``allow_pickle``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from posixpath import basename, dirname

from modelport.errors import PickleRefusedError, UnsafeFileError
from modelport.hubs.base import HubFile
from modelport.store.layout import safe_relative_path, tree_conflict

__all__ = ["FileChoice", "choose_files", "is_pickle", "weight_format"]

PICKLE_SUFFIXES = (
    ".bin",
    ".pt",
    ".pth",
    ".pkl",
    ".pickle",
    ".ckpt",
    # The same risk under other names: joblib and dill are pickles with extras, .sav is
    # scikit-learn's pickle, .nemo a tar of torch checkpoints, .pt2 a zip holding data.pkl.
    ".joblib",
    ".dill",
    ".sav",
    ".nemo",
    ".pt2",
    ".pth.tar",
    ".pt.tar",
)

# Formats in order of preference; each is (name, predicate on a file name).
_FORMATS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("safetensors", (".safetensors",)),
    ("pickle", PICKLE_SUFFIXES),
    ("onnx", (".onnx", ".onnx_data", ".onnx.data")),
    ("gguf", (".gguf",)),
    ("tensorflow", (".h5", ".keras", ".tflite")),
    ("flax", (".msgpack",)),
    ("openvino", ("openvino_model.xml", "openvino_model.bin")),
    ("coreml", (".mlmodel", ".mlpackage")),
)

# Files that are never part of a model: repository plumbing and pictures.
_JUNK = (".gitattributes", ".gitignore", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.webp", "*.svg")
# Training leftovers that happen to be pickles.
_TRAINING_STATE = ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state*.pth", "*.ckpt")
# Code in the repository runs only with trust_remote_code; we do not fetch it unasked.
_CODE = ("*.py",)


def is_pickle(path: str) -> bool:
    """Whether a file holds pickle-based weights that can execute code when loaded."""
    name = basename(path)
    if name.startswith("openvino_model"):
        return False
    return name.endswith(PICKLE_SUFFIXES)


def weight_format(path: str) -> str | None:
    """The weights format of a file name, or None for a non-weights file."""
    name = basename(path)
    if name.startswith("openvino_model"):
        return "openvino"
    if name.endswith((".json", ".txt", ".model", ".md")):
        return None
    for fmt, suffixes in _FORMATS:
        if name.endswith(suffixes):
            return fmt
    return None


@dataclass(frozen=True)
class FileChoice:
    """The files to download and, for the record, the ones skipped and why."""

    files: tuple[HubFile, ...]
    skipped: tuple[tuple[str, str], ...]
    formats: dict[str, str]


def _matches(path: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch(path, p) or fnmatch(basename(path), p) for p in patterns)


def choose_files(
    files: Sequence[HubFile],
    *,
    ref: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    allow_pickle: bool = False,
) -> FileChoice:
    """Pick what to download from a listing; refuse unsafe names and unasked pickles."""
    for f in files:
        try:
            safe_relative_path(f.path)
        except ValueError as e:
            raise UnsafeFileError(ref, f.path, reason=str(e)) from None
    conflict = tree_conflict(f.path for f in files)
    if conflict is not None:
        raise UnsafeFileError(ref, conflict[0], reason=conflict[1])

    by_folder: dict[str, set[str]] = {}
    for f in files:
        fmt = weight_format(f.path)
        if fmt is not None and not _matches(f.path, _TRAINING_STATE):
            by_folder.setdefault(dirname(f.path), set()).add(fmt)

    def best(formats: set[str]) -> str | None:
        for fmt, _ in _FORMATS:
            if fmt in formats and (fmt != "pickle" or allow_pickle or formats == {"pickle"}):
                return fmt
        return None

    # The repo's primary format decides for folders that hold alternative exports
    # ("onnx/", "openvino/"); the root and sentence-transformers module folders
    # ("2_Dense/") are parts of the model and choose their own.
    primary = best(set().union(*by_folder.values())) if by_folder else None
    chosen_format: dict[str, str] = {}
    for folder, formats in by_folder.items():
        fmt = best(formats)
        if fmt is None:
            continue
        if folder == "" or re.match(r"\d+_", folder.split("/", 1)[0]) or fmt == primary:
            chosen_format[folder] = fmt

    chosen: list[HubFile] = []
    skipped: list[tuple[str, str]] = []
    refused_pickles: list[str] = []
    for f in files:
        fmt = weight_format(f.path)
        folder = dirname(f.path)
        wanted = _matches(f.path, include)
        if _matches(f.path, exclude):
            skipped.append((f.path, "excluded"))
            continue
        if _matches(f.path, _JUNK) and not wanted:
            skipped.append((f.path, "not part of the model"))
            continue
        if _matches(f.path, _CODE) and not wanted:
            skipped.append((f.path, "code (runs only with trust_remote_code)"))
            continue
        if _matches(f.path, _TRAINING_STATE) and not wanted:
            skipped.append((f.path, "training state"))
            continue
        if fmt is not None and fmt != chosen_format.get(folder) and not wanted:
            skipped.append(
                (f.path, f"{fmt} weights duplicate the {chosen_format.get(folder)} ones")
            )
            continue
        if is_pickle(f.path) and not allow_pickle:
            refused_pickles.append(f.path)
            continue
        chosen.append(f)
    if refused_pickles:
        raise PickleRefusedError(ref, refused_pickles)
    return FileChoice(tuple(chosen), tuple(skipped), chosen_format)
