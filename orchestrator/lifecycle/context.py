"""What every lifecycle operation works with, as one value.

The engine's operations used to take the state store, the catalog, a report function and a
backoff as separate parameters, in different orders from one function to the next. A command
builds one `Context` and every operation takes it first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.errors import UsageError
from orchestrator.lifecycle.pacing import Backoff
from orchestrator.lifecycle.progress import quiet

if TYPE_CHECKING:
    from orchestrator.lifecycle.progress import Report
    from orchestrator.lifecycle.state import StateStore
    from orchestrator.pricing.catalog import Catalog


@dataclass(frozen=True)
class Context:
    state: StateStore
    catalog: Catalog | None = None  # only operations that plan (a move plans its target afresh) need it
    report: Report = quiet
    backoff: Backoff = field(default_factory=Backoff)

    def prices(self) -> Catalog:
        if self.catalog is None:
            raise UsageError("this operation plans a deployment and needs the price catalog")
        return self.catalog
