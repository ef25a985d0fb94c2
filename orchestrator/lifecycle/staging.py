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

The files come from a source: a local folder, or the Hugging Face Hub a file at a time (`hub.py`),
whose listing gives each large file's SHA-256, so a file already staged is neither fetched nor
sent again, and a fetched shard is removed once it is staged: the local disk holds one shard of
a checkpoint of hundreds of GiB at a time (a shard cut short by a kill is fetched again).
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


@dataclass(frozen=True)
class SourceFile:
    """One file of the checkpoint to stage: its name in the checkpoint, its size, its SHA-256 where
    the source knows it without the file (a Hub file stored in LFS), how to have it on this disk
    (a Hub file is fetched first), and how to drop that copy once it is staged, or found bad."""

    name: str
    size: int
    sha256: str | None
    local: Callable[[], Path]
    drop: Callable[[], None] = lambda: None  # removes the local copy where the source made one (a fetched shard)


def folder_files(folder: Path) -> list[SourceFile]:
    """A local folder's files; it must be a whole checkpoint before anything is sent."""
    if not folder.is_dir():
        raise StagingError(f"{folder} is not a directory; pass the folder holding config.json, the tokenizer and the safetensors shards")
    paths = {str(path.relative_to(folder)): path for path in folder.rglob("*") if path.is_file() and not _hidden(path, folder)}
    files = [SourceFile(name, path.stat().st_size, None, partial(Path, path)) for name, path in paths.items()]
    check_source(f"{folder}/", files, "--from")
    return files


def check_source(uri: str, files: list[SourceFile], field: str) -> None:
    """The source is a checkpoint vLLM could load (config, tokenizer, every shard its index names),
    read from its small files only."""
    by_name = {f.name: f for f in files}
    check_checkpoint(read_checkpoint(uri, {f.name: f.size for f in files}, lambda name: by_name[name].local().read_bytes()), field)


def _hidden(path: Path, folder: Path) -> bool:
    """A hidden file, or one in a hidden folder: not the checkpoint's (huggingface_hub keeps its download records under .cache/)."""
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def said_pace(said: Callable[[str], None]) -> Unattended:
    """The engine's retries, each said as a line of `weights stage`'s progress."""
    return Unattended(report=lambda _kind, **fields: said(f"retrying in {fields['retry_in_s']} s: {fields.get('reason', 'the storage throttled')}"))


def stage(files: list[SourceFile], store: WeightsStore, said: Callable[[str], None], replace: bool = False) -> Staged:
    """Copy `files` (a checkpoint already checked whole) into `store`, config last."""
    pace = said_pace(said)

    def call(operation: Callable[[], T]) -> T:
        return retrying(operation, pace)

    files = sorted(files, key=lambda f: (f.name == CONFIG, f.name))
    dropped = call(store.discard_partial_uploads)
    if dropped:
        said(f"dropped {dropped} unfinished upload(s) an earlier run left")
    there = call(store.existing)
    result = Staged()
    hashed = [(f, f.sha256 or sha256_of(f.local())) for f in files]
    stale = sorted(set(there) - {f.name for f in files})
    changing = any(there.get(f.name) != (f.size, digest) for f, digest in hashed)
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
    for file, digest in hashed:
        name, size = file.name, file.size
        if there.get(name) == (size, digest):
            result.kept.append(name)
            said(f"{name}: already there ({size:,} bytes, sha256 {digest[:12]}…)")
            continue
        try:
            path = file.local()
            if file.sha256 is not None and (path.stat().st_size, sha256_of(path)) != (size, digest):
                file.drop()  # else the source would hand back the same bad copy next time
                raise StagingError(f"{name} did not arrive whole from its source (its listing says {size:,} bytes, sha256 {digest}); run `weights stage` again")
            call(partial(store.upload, name, path, digest))
        except OSError as exc:  # the local copy went away (another run of the same commit dropped it?)
            raise StagingError(f"{name} could not be read from this disk ({exc}); run `weights stage` again, one run per checkpoint at a time") from exc
        landed = call(partial(store.stat, name))
        if landed != (size, digest):
            raise StagingError(f"{store.uri}{name} did not arrive whole (stored {landed}, sent {(size, digest)}); run `weights stage` again")
        file.drop()
        result.uploaded.append(name)
        result.bytes_sent += size
        said(f"{name}: uploaded and verified ({size:,} bytes, sha256 {digest[:12]}…)")
    listing = {name: size for name, (size, _) in call(store.existing).items()}
    check_checkpoint(call(lambda: read_checkpoint(store.uri, listing, store.read)), store.uri)
    return result
