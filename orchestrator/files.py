"""Files llamadeploy writes for the user (reports, exported projects): whole or not at all."""

from __future__ import annotations

from pathlib import Path


def write_whole(path: Path, content: bytes) -> None:
    """Write beside `path`, then rename over it, so a reader never sees half a file.

    An OSError (a missing folder, no permission) leaves no staging file behind.
    """
    staging = path.with_name(path.name + ".llamadeploy-tmp")
    try:
        staging.write_bytes(content)
        staging.replace(path)
    except OSError:
        staging.unlink(missing_ok=True)
        raise
