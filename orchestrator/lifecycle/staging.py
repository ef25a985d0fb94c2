"""`llamadeploy weights stage`: a checkpoint folder copied into a cloud's object storage once,
resumably, every file verified by its SHA-256.

A fine-tune's checkpoint is tens to hundreds of GiB; a copy that dies halfway must not start over,
and a copy that finished must be provably whole before a deployment loads it. Each file is hashed
here, uploaded with its hash (the store keeps it with the object and, where it can, checks the
bytes against it in transit), and read back (size and hash) before the next; a second run skips
every file already there with the same hash and size, and re-sends any other. The config goes
last: a copy that stopped early has none, and `up` refuses it. Each provider writes to its own
storage (`Provider.weights_store`); every call to it goes through the engine's retries, so a 503
or a dropped connection halfway through a large copy is retried, not the end of the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

from orchestrator.errors import LlamadeployError
from orchestrator.lifecycle.pacing import Unattended, retrying
from orchestrator.sizing.checkpoint_files import CONFIG, check_checkpoint, read_checkpoint

CHUNK = 8 * 1024 * 1024
T = TypeVar("T")


class WeightsStore(Protocol):
    """A location in a cloud's object storage, as staging needs it."""

    uri: str

    def existing(self) -> dict[str, tuple[int, str | None]]:
        """Each object under the location: its size and the SHA-256 (hex) it was stored with, if any."""
        ...

    def stat(self, name: str) -> tuple[int, str | None] | None:
        """One object's size and stored SHA-256, or None where there is none."""
        ...

    def upload(self, name: str, path: Path, sha256: str) -> None:
        """Store the file under `name`, with its SHA-256 (hex)."""
        ...

    def discard_partial_uploads(self) -> int:
        """Drop uploads a killed run left unfinished under the location; how many."""
        ...

    def read(self, name: str) -> bytes:
        """A small object's bytes (the config and index, to check the staged checkpoint)."""
        ...

    def delete(self, name: str) -> None:
        """Remove one object (a file the folder no longer has, or the old config before new files)."""
        ...


# The object metadata key each store keeps a staged file's SHA-256 under.
SHA256_KEY = "sha256"


class DiscardsNothing:
    """For a store whose unfinished uploads hold nothing a listing shows and cost nothing for long
    (the service drops them itself); S3's multipart parts are the exception, and S3's store aborts them."""

    def discard_partial_uploads(self) -> int:
        return 0


@dataclass
class Staged:
    uploaded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # already there with the same size and hash
    bytes_sent: int = 0


class StagingError(LlamadeployError):
    """A file did not arrive whole, or the folder is not a checkpoint."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_folder(folder: Path) -> list[Path]:
    """The files to copy, config last; the folder must be a whole checkpoint before anything is sent."""
    if not folder.is_dir():
        raise StagingError(f"{folder} is not a directory; pass the folder holding config.json, the tokenizer and the safetensors shards")
    files = sorted((path for path in folder.rglob("*") if path.is_file() and not _hidden(path, folder)), key=lambda p: (p.name == CONFIG, str(p)))
    names = {str(path.relative_to(folder)): path for path in files}
    check_checkpoint(
        read_checkpoint(f"{folder}/", {name: path.stat().st_size for name, path in names.items()}, lambda name: names[name].read_bytes()), "--from"
    )
    return files


def _hidden(path: Path, folder: Path) -> bool:
    """A hidden file, or one in a hidden folder: not the checkpoint's (huggingface_hub keeps its download records under .cache/)."""
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def said_pace(said: Callable[[str], None]) -> Unattended:
    """The engine's retries, each said as a line of `weights stage`'s progress."""
    return Unattended(report=lambda _kind, **fields: said(f"retrying in {fields['retry_in_s']} s: {fields.get('reason', 'the storage throttled')}"))


def stage(folder: Path, store: WeightsStore, said: Callable[[str], None], replace: bool = False) -> Staged:
    pace = said_pace(said)

    def call(operation: Callable[[], T]) -> T:
        return retrying(operation, pace)

    files = checkpoint_folder(folder)
    dropped = call(store.discard_partial_uploads)
    if dropped:
        said(f"dropped {dropped} unfinished upload(s) an earlier run left")
    there = call(store.existing)
    result = Staged()
    hashed = [(str(path.relative_to(folder)), path, path.stat().st_size, sha256_of(path)) for path in files]
    stale = sorted(set(there) - {name for name, *_ in hashed})
    changing = any(there.get(name) != (size, digest) for name, _, size, digest in hashed)
    older = stale or (changing and CONFIG in there)  # another checkpoint lies there, not a copy cut short
    if older and not replace:
        what = f"{len(stale)} file(s) the folder does not have ({', '.join(stale[:3])}{' …' if len(stale) > 3 else ''})" if stale else "a different checkpoint"
        raise StagingError(
            f"{store.uri} holds {what}; stage to a new location (then point weights: at it and `up` replaces the deployment "
            "blue/green), or pass --replace to delete them first (a deployment serving from there would load a half-copied checkpoint meanwhile)"
        )
    if older:
        # Files of an earlier checkpoint would be copied into the container with the new ones, and its
        # config would let `up` take a half-replaced checkpoint for a whole one: both go first.
        for name in [*stale, *([CONFIG] if CONFIG in there else [])]:
            call(partial(store.delete, name))
            there.pop(name, None)
        if stale:
            said(f"removed {len(stale)} file(s) the folder no longer has: {', '.join(stale[:5])}{' …' if len(stale) > 5 else ''}")
    for name, path, size, digest in hashed:
        if there.get(name) == (size, digest):
            result.kept.append(name)
            said(f"{name}: already there ({size:,} bytes, sha256 {digest[:12]}…)")
            continue
        call(partial(store.upload, name, path, digest))
        landed = call(partial(store.stat, name))
        if landed != (size, digest):
            raise StagingError(f"{store.uri}{name} did not arrive whole (stored {landed}, sent {(size, digest)}); run `weights stage` again")
        result.uploaded.append(name)
        result.bytes_sent += size
        said(f"{name}: uploaded and verified ({size:,} bytes, sha256 {digest[:12]}…)")
    listing = {name: size for name, (size, _) in call(store.existing).items()}
    check_checkpoint(call(lambda: read_checkpoint(store.uri, listing, store.read)), store.uri)
    return result
