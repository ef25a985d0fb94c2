"""Which providers exist, found by name and imported only when used.

Built-in clouds and third-party plugins (the `llamadeploy.providers` entry-point group) share
one table of `"module:Class"` strings, so nothing is imported until a provider is asked for.
Entry points are read only when a name is not built in or the full list is wanted: scanning
installed distributions costs start-up time that `plan --cloud aws` need not pay.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
from functools import cache, lru_cache
from importlib.metadata import entry_points

from orchestrator.declared.spec import PlacementBase
from orchestrator.errors import LlamadeployError, UsageError
from providers.base import CloudService, Provider

ENTRY_POINT_GROUP = "llamadeploy.providers"
BUILTIN: dict[str, str] = {
    "aws": "providers.aws:AwsProvider",
    "azure": "providers.azure:AzureProvider",
    "gcp": "providers.gcp:GcpProvider",
    "oci": "providers.oci:OciProvider",
}


@lru_cache(maxsize=1)
def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN}


def forget_plugins() -> None:
    """Look the entry points up again next time (after installing or removing a plugin in-process).
    Providers already loaded stay loaded, with their SDK clients."""
    _plugins.cache_clear()


def names() -> list[str]:
    """Every provider name: built-in first, then plugins."""
    return list(BUILTIN) + sorted(_plugins())


def get(name: str) -> CloudService:
    """The cloud service called `name`, for planning; an unknown name lists the known ones."""
    target = BUILTIN.get(name) or _plugins().get(name)
    if target is None:
        known = names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"unknown cloud {name!r}; {hint}known clouds: {', '.join(known)}")
    return _instance(name, target)


def placement_model(name: str) -> type[PlacementBase]:
    """The model `placement.<name>` is validated with; an unknown name lists the known clouds."""
    target = BUILTIN.get(name) or _plugins().get(name)
    if target is None:
        get(name)  # raises the UsageError that names the known clouds
    return _load(name, target).placement_model  # type: ignore[arg-type]


def provider(name: str) -> Provider:
    """The provider called `name`, for deploying; a cloud that can only be planned says so."""
    service = get(name)
    if not isinstance(service, Provider):
        deployable = [n for n in names() if issubclass(_load(n, BUILTIN.get(n) or _plugins()[n]), Provider)]
        raise UsageError(
            f"llamadeploy cannot deploy to {name} yet ({service.service}); `plan` and `cost` work there. "
            f"Clouds it can deploy to: {', '.join(deployable) or 'none'}"
        )
    missing = [module for module in service.sdk_modules if not _importable(module)]
    if missing:
        how = f"pip install 'llamadeploy[{name}]'" if name in BUILTIN else f"install the packages providing {', '.join(missing)}"
        raise LlamadeployError(f"the {name} provider needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: {how}")
    return service


def describe(name: str) -> dict[str, object]:
    """One provider as `llamadeploy providers` lists it: what it is and what it can do here."""
    target = BUILTIN.get(name) or _plugins()[name]
    service = get(name)
    live = isinstance(service, Provider)
    missing = [m for m in service.sdk_modules if not _importable(m)] if live else []
    return {
        "name": name,
        "service": service.service,
        "source": "built-in" if name in BUILTIN else f"entry point {target}",
        "default_region": service.default_region,
        "deploy": live,
        "export": type(service).program is not CloudService.program,
        "sdk_missing": missing,
        "install": f"pip install 'llamadeploy[{name}]'" if missing and name in BUILTIN else None,
    }


def _importable(module: str) -> bool:
    """Whether `module` could be imported, without importing it (only its parent packages)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@cache
def _instance(name: str, target: str) -> CloudService:
    """One instance per provider and process, so the SDK clients it made are reused by every command."""
    return _load(name, target)()


# A forked child must make its own clients: sharing a parent's pooled connections mixes two
# processes' requests on one socket.
os.register_at_fork(after_in_child=_instance.cache_clear)


@cache
def _load(name: str, target: str) -> type[CloudService]:
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"provider {name!r} ({target}) cannot be loaded: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, CloudService)):
        raise UsageError(f"provider {name!r} ({target}) is not a llamadeploy Provider subclass")
    return cls
