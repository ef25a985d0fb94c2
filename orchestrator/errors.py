"""The errors llamadeploy reports to users.

Every error a user can cause derives from `LlamadeployError`, so the CLI can print it as one
`Error: …` line and map its type to an exit code in one table; anything else is a bug and is
shown with a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class LlamadeployError(Exception):
    """A problem the user can fix; the message says what, where and how."""


class UsageError(LlamadeployError):
    """A command-line option is wrong (exit code 2, like click's own usage errors)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a stack file, located by file, line and field path."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(LlamadeployError):
    """The stack file is invalid; it carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0))
        super().__init__("\n".join(str(p) for p in self.problems))


class UnknownModelError(LlamadeployError):
    """A model name matches nothing in the Llama catalog."""


class NoCheckpointError(LlamadeployError):
    """No checkpoint of the model can be served at the asked quantization."""


class CatalogError(LlamadeployError):
    """The price catalog file is missing or malformed."""


class PriceApiUnavailable(LlamadeployError):
    """A cloud's price API cannot be read from here as things are (it needs a key that is not
    configured, say): `catalog refresh` keeps its rows, and the message says how to read it."""


class InfeasibleError(LlamadeployError):
    """No offer on the chosen cloud and region can host the deployment; `ideas` are the changes to
    the spec that would fit there (another quantization, GPU, context or concurrency)."""

    def __init__(self, message: str, ideas: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.ideas = ideas


class GpuNotOfferedError(InfeasibleError):
    """The asked GPU type has no offer in the region at all (as opposed to none big enough)."""
