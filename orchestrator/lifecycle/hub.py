"""A checkpoint on the Hugging Face Hub as a source for `weights stage`, fetched a file at a time.

huggingface_hub does the fetching (it is what vLLM and transformers load with): its file listing
(`list_repo_tree`) gives each file's size and, for a file stored in LFS (every safetensors shard),
its SHA-256, so a shard already staged is not fetched at all; `hf_hub_download` fetches one file
into the commit's folder (huggingface_hub's local_dir metadata under `.cache/huggingface` records
a file already there; a file cut short by a kill is fetched again from its start), gated
repositories with a token. A shard is removed once it is staged, so the disk holds at most one at
a time; the files not stored in LFS (configs, most tokenizers) stay, checked against their git
blob id, so a second run reads them from disk. Only what vLLM loads is fetched: the
configs, the tokenizer and the safetensors shards; Meta's repositories also hold the original
PyTorch checkpoint under `original/`, as large again, which is left on the Hub.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from fnmatch import fnmatch
from functools import partial
from pathlib import Path
from typing import Any

from orchestrator.errors import LlamadeployError
from orchestrator.lifecycle.staging import SourceFile, check_source

# What vLLM reads from a Hugging Face-format checkpoint (transformers' config, generation config,
# tokenizer files, safetensors shards and their index).
LOADED = ["*.json", "*.safetensors", "tokenizer.model", "*.tiktoken", "*.txt"]
SKIPPED = ["original/*"]
HUB_PREFIX = "hf://"


class HubError(LlamadeployError):
    """The Hub refused the repository or could not be reached."""


def hub_source(source: str) -> tuple[str, str | None]:
    """`hf://org/repo[@revision]` as (repository, revision)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    repo, _, revision = source.removeprefix(HUB_PREFIX).partition("@")
    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise HubError(f"--from {source}: name a Hub repository as hf://<org>/<repo>[@<revision>], e.g. hf://meta-llama/Llama-3.1-8B-Instruct ({exc})") from exc
    if repo.count("/") != 1:
        raise HubError(f"--from {source}: name a Hub repository as hf://<org>/<repo>[@<revision>], e.g. hf://meta-llama/Llama-3.1-8B-Instruct")
    return repo, revision or None


def download_dir(repo: str, commit: str) -> Path:
    """Where a repository's files are fetched to: under the user's cache, one folder per repository
    and commit, so a later commit's folder never holds shards an earlier one had."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "llamadeploy" / "hub" / f"{repo.replace('/', '--')}@{commit}"


@contextmanager
def hub_files(repo: str, revision: str | None, token: str | None, said: Callable[[str], None]) -> Iterator[list[SourceFile]]:
    """The repository's loadable files at `revision` as a staging source, its folder held in use (a
    shared lock on `<folder>.lock`) until the caller is done. The token is the one given, or none
    (False): never a login stored on this machine, so a refusal says truly whether a token was sent."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.hf_api import RepoFile

    with ExitStack() as in_use:  # the lock is let go however this ends
        with _translated(repo, revision, token):
            api = HfApi(token=token or False)
            commit = str(api.repo_info(repo, revision=revision).sha)
            folder = download_dir(repo, commit)
            in_use.enter_context(_hold(folder))
            listed = [f for f in api.list_repo_tree(repo, revision=commit, recursive=True) if isinstance(f, RepoFile) and _loaded(f.path)]
        said(f"fetching {repo}@{commit[:12]} from the Hugging Face Hub a file at a time, through {folder} (each shard removed once staged)")

        _drop_cut_short(folder)

        def local(file: RepoFile) -> Path:
            with _translated(repo, revision, token):
                path = Path(hf_hub_download(repo, file.path, revision=commit, local_dir=folder, token=token or False))
            if file.lfs is None and _git_blob_id(path) != file.blob_id:  # an LFS file's SHA-256 is checked as it is staged
                path.unlink(missing_ok=True)
                raise HubError(f"{file.path} from {repo}@{commit[:12]} is not the file the Hub lists (git blob {file.blob_id}); run the command again")
            return path

        files = [
            SourceFile(f.path, f.size, f.lfs.sha256 if f.lfs else None, partial(local, f), partial(_remove, folder / f.path) if f.lfs else _keep)
            for f in listed
        ]
        check_source(f"hf://{repo}@{commit[:12]}/", files, "--from")
        try:
            _drop_earlier(repo, folder, said)
        except OSError as exc:  # a folder changing under the scan: this run's is whole
            said(f"left earlier downloads of {repo} in {folder.parent} ({exc})")
        yield files


def _loaded(path: str) -> bool:
    return any(fnmatch(path, pattern) for pattern in LOADED) and not any(fnmatch(path, pattern) for pattern in SKIPPED)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _git_blob_id(path: Path) -> str:
    """A file's git blob id, as the Hub lists a file not stored in LFS (`oid`)."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# huggingface_hub downloads into `<name>.<etag>.<random>.incomplete` and removes it when done or
# failed, but a SIGKILL leaves it: one that has not grown for this long belongs to no live run.
STALE_DOWNLOAD_S = 600


def _drop_cut_short(folder: Path) -> None:
    """The partial downloads killed runs left in the folder (each up to a shard), so the disk keeps
    holding one shard at a time."""
    now = time.time()
    for partial_download in folder.glob(".cache/huggingface/download/**/*.incomplete"):
        with contextlib.suppress(OSError):
            if now - partial_download.stat().st_mtime > STALE_DOWNLOAD_S:
                partial_download.unlink()


def _keep() -> None:
    """A file not stored in LFS (small) stays, so a later run reads it from disk."""


@contextmanager
def _translated(repo: str, revision: str | None, token: str | None) -> Iterator[None]:
    """huggingface_hub's errors as one clear HubError each."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        yield
    except GatedRepoError as exc:
        raise HubError(
            f"the Hugging Face Hub refused {repo}: it is gated, and {'the token sent has not been granted access' if token else 'no token was sent'}; "
            f"accept its license on huggingface.co/{repo} and set HF_TOKEN to a token of that account"
        ) from exc
    except RevisionNotFoundError as exc:
        raise HubError(f"{repo} has no revision {revision!r} on the Hugging Face Hub") from exc
    except RepositoryNotFoundError as exc:
        raise HubError(f"{repo} is not a repository on the Hugging Face Hub (or is private to another account)") from exc
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise HubError(f"fetching {repo} from the Hugging Face Hub failed: {str(exc).splitlines()[0]}; run the command again to go on") from exc
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in _TRANSPORTS:
            raise
        raise HubError(f"cannot reach the Hugging Face Hub ({type(exc).__name__}: {exc}); run the command again to go on") from exc


def _hold(folder: Path) -> AbstractContextManager[Any]:
    """A shared lock on the download's lock file, for as long as this run uses it (fetching, then
    copying it to a cloud): another run removes a download only where it takes the lock exclusively."""
    try:
        import fcntl
    except ImportError:  # no flock here: nothing is ever removed either (_drop_earlier)
        return nullcontext()
    folder.parent.mkdir(parents=True, exist_ok=True)
    handle = open(f"{folder}.lock", "a")  # noqa: SIM115 - closed (and so unlocked) when the caller is done
    try:
        fcntl.flock(handle, fcntl.LOCK_SH)
    except OSError:
        handle.close()
        raise
    return handle


def _drop_earlier(repo: str, kept: Path, said: Callable[[str], None]) -> None:
    """The folders of `repo` fetched before `kept` was (by their newest file), removed once `kept`
    is whole: a checkpoint is tens to hundreds of GiB, and an older commit staged again is fetched
    again. A folder another run is using (its lock file held) is left, and a removal that fails is
    said, not fatal."""
    try:
        import fcntl
    except ImportError:
        return
    fetched_at = _newest(kept)
    for earlier in sorted(kept.parent.glob(f"{repo.replace('/', '--')}@*")):
        if earlier == kept or not earlier.is_dir() or _newest(earlier) >= fetched_at:
            continue
        with open(f"{earlier}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # another `weights stage` is using it
            size = sum(path.stat().st_size for path in earlier.rglob("*") if path.is_file())
            try:
                shutil.rmtree(earlier)
            except OSError as exc:
                said(f"could not remove {earlier} ({exc}); remove it by hand to free {size / 2**30:.1f} GiB")
                continue
        # The lock file stays: a run waiting on it would otherwise hold a lock on a file no longer named,
        # and a later removal could take a fresh one while that run uses the folder.
        said(f"removed {earlier.name} ({size / 2**30:.1f} GiB), an earlier download of {repo}")


def _newest(folder: Path) -> float:
    return max((path.stat().st_mtime for path in folder.rglob("*") if path.is_file()), default=0.0)


# The HTTP libraries huggingface_hub's releases fetch with: a dropped connection or a timeout
# surfaces as one of their exceptions after huggingface_hub's own retries.
_TRANSPORTS = frozenset({"httpx", "httpx2", "httpcore", "httpcore2", "requests", "urllib3"})
