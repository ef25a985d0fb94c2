"""A checkpoint fetched from the Hugging Face Hub for `weights stage`, to copy into a cloud's storage.

huggingface_hub's `snapshot_download` does the fetching (it is what vLLM and transformers load
with): into a folder of its own, resumable (a file already there at the same commit is not
fetched again; huggingface_hub's local_dir metadata under `.cache/huggingface` records that),
gated repositories with a token. Only what vLLM loads is fetched: the configs, the tokenizer and
the safetensors shards; Meta's repositories also hold the original PyTorch checkpoint under
`original/`, as large again, which is left on the Hub.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import LlamadeployError

# What vLLM reads from a Hugging Face-format checkpoint (transformers' config, generation config,
# tokenizer files, safetensors shards and their index).
LOADED = ["*.json", "*.safetensors", "tokenizer.model", "*.tiktoken", "*.txt"]
SKIPPED = ["original/*"]
HUB_PREFIX = "hf://"


class HubError(LlamadeployError):
    """The Hub refused the repository or could not be reached."""


def hub_source(source: str) -> tuple[str, str | None]:
    """`hf://org/repo[@revision]` as (repository, revision)."""
    repo, _, revision = source.removeprefix(HUB_PREFIX).partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise HubError(f"--from {source}: name a Hub repository as hf://<org>/<repo>[@<revision>], e.g. hf://meta-llama/Llama-3.1-8B-Instruct")
    return repo, revision or None


def download_dir(repo: str, revision: str | None) -> Path:
    """Where a repository's files are fetched to: under the user's cache, one folder per repository and revision."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "llamadeploy" / "hub" / f"{repo.replace('/', '--')}@{revision or 'main'}"


def download(repo: str, revision: str | None, folder: Path, token: str | None, said: Callable[[str], None]) -> Path:
    """The repository's loadable files in `folder`, fetched where missing or changed."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    said(f"fetching {repo}{'@' + revision if revision else ''} from the Hugging Face Hub into {folder} (files already there are kept)")
    try:
        return Path(snapshot_download(repo, revision=revision, local_dir=folder, token=token, allow_patterns=LOADED, ignore_patterns=SKIPPED))
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
