"""Files llamadeploy writes for the user (reports, exported projects): whole or not at all."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def write_whole(path: Path, content: bytes | Iterable[bytes]) -> None:
    """Write beside `path` (all at once, or chunk by chunk as `content` yields them), then rename
    over it, so a reader never sees half a file.

    A failure (a missing folder, no permission, an error while the chunks are made) leaves no
    staging file behind.
    """
    staging = path.with_name(path.name + ".llamadeploy-tmp")
    try:
        with staging.open("wb") as handle:
            for chunk in [content] if isinstance(content, bytes) else content:
                handle.write(chunk)
        staging.replace(path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
