"""`up`/`down --engine pulumi`: the exported program, run by the user's own Pulumi.

The program `export` writes is rendered into `<state dir>/pulumi/<stack>/` and run through
the Pulumi Automation API with the `pulumi` CLI on PATH and whatever backend the user is
logged in to, so Pulumi's state, not llamadeploy's, records what exists. llamadeploy never
downloads Pulumi: without the CLI it stops before writing anything and says how to get it.
The Automation API hands secret config to the CLI on its command line (`config set-all
--secret`), as it does for every Automation API user.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.declared.secrets import resolve_secrets
from orchestrator.errors import LlamadeployError
from orchestrator.iac.export import CONFIG_NAMESPACE, render_project

if TYPE_CHECKING:
    from orchestrator.declared.spec import Stack
    from orchestrator.planning.plan import Plan

INDEX = "llamadeploy.json"  # which deployments and cloud a project directory holds, for `down NAME`
INSTALL_HINT = (
    "install it (https://www.pulumi.com/docs/iac/download-install/) and log in to a backend (`pulumi login`), "
    "or run `llamadeploy export STACK --cloud CLOUD --to DIR` and apply that project with your own pipeline"
)


class PulumiError(LlamadeployError):
    """Pulumi is missing, or a Pulumi operation failed."""


def require_pulumi() -> None:
    """Stop at once, before any file is written, when the CLI or the Python SDK is missing."""
    if shutil.which("pulumi") is None:
        raise PulumiError(f"`--engine pulumi` runs your own Pulumi CLI, and `pulumi` is not on PATH: {INSTALL_HINT}")
    if importlib.util.find_spec("pulumi") is None:
        raise PulumiError("`--engine pulumi` needs the Pulumi Python SDK and the cloud packages: pip install 'llamadeploy[pulumi]'")


def up(stack: Stack, plans: list[Plan], stack_name: str, base: Path, on_output: Callable[[str], None]) -> dict[str, Any]:
    """Render the project for `plans`, set its config and secrets, and `pulumi up`; the stack's outputs."""
    require_pulumi()
    cloud = plans[0].cloud
    project = render_project(plans, cloud, stack_name, virtualenv=sys.prefix)
    _check_required_config(stack, plans, project.missing_config)
    secrets = {name: value for planned in plans for name, value in resolve_secrets(planned.deployment, bool(planned.weights)).items()}
    directory = base / stack_name
    project.write(directory)
    (directory / INDEX).write_text(json.dumps({"stack": stack_name, "cloud": cloud, "deployments": [p.deployment.name for p in plans]}))
    from pulumi import automation

    config = {key: automation.ConfigValue(value) for key, value in project.config.items()}
    config.update({f"{CONFIG_NAMESPACE}:{name}": automation.ConfigValue(value, secret=True) for name, value in secrets.items()})
    with _translated():
        workspace_stack = automation.create_or_select_stack(stack_name, work_dir=str(directory))
        workspace_stack.set_all_config(config)
        result = workspace_stack.up(on_output=on_output)
    return {key: output.value for key, output in result.outputs.items() if not output.secret}


def find_project(base: Path, deployment: str) -> tuple[Path, dict[str, Any]]:
    """The project directory whose program declares `deployment`."""
    for index in sorted(base.glob(f"*/{INDEX}")):
        described = json.loads(index.read_text())
        if deployment in described["deployments"]:
            return index.parent, described
    raise PulumiError(f"no Pulumi project under {base} declares {deployment!r}; `up --engine pulumi` creates one")


def down(directory: Path, described: dict[str, Any], on_output: Callable[[str], None]) -> None:
    """`pulumi destroy` the project's stack, then forget its directory."""
    require_pulumi()
    from pulumi import automation

    with _translated():
        automation.select_stack(described["stack"], work_dir=str(directory)).destroy(on_output=on_output)
    shutil.rmtree(directory)


def _check_required_config(stack: Stack, plans: list[Plan], missing: dict[str, list[str]]) -> None:
    from orchestrator.errors import SpecError

    problems = [
        stack.locate(
            planned.deployment,
            ("placement", planned.cloud),
            f"`up --engine pulumi` on {planned.cloud} needs placement.{planned.cloud}."
            + ", ".join(_placement_field(key.split(":", 1)[1]) for key in missing[planned.deployment.name]),
        )
        for planned in plans
        if planned.deployment.name in missing
    ]
    if problems:
        raise SpecError(problems)


def _placement_field(config_key: str) -> str:
    """Config keys are the placement fields, except where a Pulumi provider names its own."""
    return {"subscriptionId": "subscription_id"}.get(config_key, config_key)


@contextmanager
def _translated() -> Iterator[None]:
    """Pulumi's CommandError as one PulumiError carrying the CLI's own last words."""
    from pulumi.automation.errors import CommandError

    try:
        yield
    except CommandError as error:
        text = str(error)
        said = text.split(" stderr:", 1)[-1] if " stderr:" in text else text  # the CLI's stderr, after its code and stdout
        lines = [line.strip() for line in said.splitlines() if line.strip()]
        raise PulumiError("pulumi failed: " + (" | ".join(lines[-4:]) or text.strip())) from error
