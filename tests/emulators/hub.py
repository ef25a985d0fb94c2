"""The Hugging Face Hub as huggingface_hub's downloads see it, at https://huggingface.co on the test internet.

Enough for `HfApi.repo_info`, `list_repo_tree` and `hf_hub_download` to run unmodified over real HTTPS: a model's
revision (GET /api/models/<repo>[/revision/<rev>]: its commit sha), its file tree (GET
/api/models/<repo>/tree/<sha>?recursive=true: each file's path, size and blob id, and for a
safetensors shard, stored in LFS, its SHA-256 under `lfs.oid`, in one page),
and each file (HEAD and GET /<repo>/resolve/<rev>/<path>, with the X-Repo-Commit, ETag and
Content-Length headers huggingface_hub reads: file_download.get_hf_file_metadata). A gated
repository shows its revision and files to anyone, and answers a file's request with 401 without
a bearer token and 403 with one that was not granted access, both with `X-Error-Code: GatedRepo`
(which huggingface_hub's hf_raise_for_status turns into GatedRepoError). Served files are counted, so a test can see what
was downloaded again.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.emulators.internet import Internet
from tests.emulators.vllm import VALID_TOKEN

HOST = "huggingface.co"
TOKEN = VALID_TOKEN  # the one token the stand-in's gated repos grant access to, as the vLLM stand-in's hub
_REVISION = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")  # model_info, at a revision or main
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/.*)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


class HubStandIn:
    def __init__(self, internet: Internet) -> None:
        internet.serve(re.escape(HOST), self.answer)
        self._lock = threading.Lock()
        self.repos: dict[str, dict[str, bytes]] = {}
        self.gated: set[str] = set()
        self.served: Counter[str] = Counter()  # "<repo>/<path>" -> GETs of it
        self.corrupt_next: set[str] = set()  # "<repo>/<path>" served once with a byte changed (a bad mirror, a flipped bit)
        self.watched: Path | None = None  # a folder whose whole shards are counted as each shard is asked for
        self.held: list[int] = []  # those counts: what the client's disk held when it asked for one more

    def reset(self) -> None:
        with self._lock:
            self.repos.clear()
            self.gated.clear()
            self.served.clear()
            self.corrupt_next.clear()
            self.watched = None
            self.held.clear()

    def publish(self, repo: str, files: dict[str, bytes], gated: bool = True) -> None:
        with self._lock:
            self.repos[repo] = dict(files)
            if gated:
                self.gated.add(repo)

    def answer(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        url = urlsplit(path)
        route = unquote(url.path)
        with self._lock:
            match = _REVISION.match(route) or _TREE.match(route) or _RESOLVE.match(route)
            files = self.repos.get(match["repo"]) if match else None
            if match is None or files is None:
                return 404, {"error": "Repository Not Found"}, {"X-Error-Code": "RepoNotFound"}
            if match["repo"] in self.gated and _RESOLVE.match(route):  # a gated repository's card and file list are public; its files are not
                token = headers.get("authorization", "").removeprefix("Bearer ")
                if not token:
                    return 401, {"error": "Access to this model is restricted; you must be authenticated"}, {"X-Error-Code": "GatedRepo"}
                if token != TOKEN:
                    return 403, {"error": "Access to this model is restricted and you are not in the authorized list"}, {"X-Error-Code": "GatedRepo"}
            sha = _commit(files)
            if route.startswith("/api/") and _REVISION.match(route):
                return 200, {"id": match["repo"], "modelId": match["repo"], "sha": sha, "siblings": [{"rfilename": n} for n in sorted(files)]}, {}
            if _TREE.match(route):
                return 200, [_entry(n, d) for n, d in sorted(files.items())], {}
            data = files.get(match["path"])
            if data is None:
                return 404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": sha}
            described = {"X-Repo-Commit": sha, "ETag": f'"{_blob(data)}"', "Content-Type": "application/octet-stream"}
            if _in_lfs(match["path"]):  # the Hub names an LFS file by its SHA-256 (file_download.get_hf_file_metadata reads it first)
                described |= {"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))}
            if method == "HEAD":
                return 200, None, {**described, "Content-Length": str(len(data))}
            served = f"{match['repo']}/{match['path']}"
            self.served[served] += 1
            if self.watched is not None and _in_lfs(match["path"]):
                self.held.append(len(list(self.watched.rglob("*.safetensors"))))
            if served in self.corrupt_next:
                self.corrupt_next.discard(served)
                data = bytes([data[0] ^ 1]) + data[1:]
            return 200, data, described


def _in_lfs(path: str) -> bool:
    """The files a model repository stores in LFS (the Hub's default .gitattributes tracks *.safetensors)."""
    return path.endswith(".safetensors")


def _entry(path: str, data: bytes) -> dict[str, Any]:
    """A file of the tree listing: path, size, git blob id, and for an LFS file its SHA-256 (`lfs.oid`)."""
    entry: dict[str, Any] = {"type": "file", "path": path, "size": len(data), "oid": _blob(data)}
    if _in_lfs(path):
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


def _blob(data: bytes) -> str:
    """The file's git blob id, the Hub's `oid` (and ETag) for a file not stored in LFS."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _commit(files: dict[str, bytes]) -> str:
    return hashlib.sha1("".join(f"{n}:{_blob(d)}" for n, d in sorted(files.items())).encode()).hexdigest()
