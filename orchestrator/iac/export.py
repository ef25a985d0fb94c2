"""`export`: a stack's plan on one cloud as a standalone Pulumi Python project.

The program is rendered from `templates/pulumi/` with the values the cloud's provider would
send for the same plan (`CloudService.program`), so `up` and the exported program declare
the same thing. The project is rendered whole in memory before anything is written: a bad
input leaves the directory as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import LlamadeployError, UsageError
from orchestrator.files import write_whole
from orchestrator.iac.templating import environment

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan
    from providers.base import Program

CONFIG_NAMESPACE = "llamadeploy"
PULUMI_REQUIREMENT = "pulumi>=3.100,<4"
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class Project:
    """The files of an exported project, by relative path."""

    stack: str
    files: dict[str, bytes]
    config: dict[str, str]  # the non-secret stack config, also written to Pulumi.<stack>.yaml
    # Per deployment, the config its program requires that its placement does not give.
    missing_config: dict[str, list[str]]

    def write(self, directory: Path) -> list[Path]:
        """Write every file (replacing earlier exports' files), creating `directory` if needed."""
        written = []
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for relative, content in self.files.items():
                write_whole(directory / relative, content)
                written.append(directory / relative)
        except OSError as exc:
            raise LlamadeployError(f"cannot write the Pulumi project to {directory}: {exc.strerror or exc}; choose another directory") from exc
        return written


def render_project(plans: list[Plan], cloud: str, stack: str, virtualenv: str = "venv") -> Project:
    """The Pulumi project declaring every planned deployment of the stack on `cloud`.

    `virtualenv` is where Pulumi runs the program: a `venv` of its own next to it for an
    export, the running llamadeploy's environment for `--engine pulumi`.
    """
    if not _STACK_NAME.match(stack):
        raise UsageError(f"--stack {stack!r}: a Pulumi stack name has only letters, digits, '-', '_' and '.'")
    programs = [(p, _program(p)) for p in plans]
    service = plans[0].service
    secrets = sorted({name for _, program in programs for name in program.secrets})
    config = {key: value for _, program in programs for key, value in program.config.items()}
    required = sorted({key for _, program in programs for key in program.required_config} - set(config))
    requirements = [PULUMI_REQUIREMENT, *sorted({r for _, program in programs for r in program.requirements})]
    deployments = [
        {"name": p.deployment.name, "var": _identifier(p.deployment.name), "inputs": program.values, "secrets": sorted(program.secrets), "summary": _summary(p)}
        for p, program in programs
    ]
    templates = environment()
    template = _template(plans[0].cloud)
    context = {
        "program_template": str(template),
        "stack": stack,
        "cloud": cloud,
        "service": service,
        "deployments": deployments,
        "secrets": secrets,
        "config": config,
        "required_config": required,
        "namespace": CONFIG_NAMESPACE,
        "requirements": requirements,
        "virtualenv": virtualenv,
    }
    files = {
        "Pulumi.yaml": templates.get_template("pulumi/Pulumi.yaml.j2").render(context),
        f"Pulumi.{stack}.yaml": templates.get_template("pulumi/Pulumi.stack.yaml.j2").render(context),
        "requirements.txt": "\n".join(requirements) + "\n",
        "__main__.py": templates.get_template("pulumi/__main__.py.j2").render(context),
    }
    extra = {name: content for _, program in programs for name, content in program.files.items()}
    missing = {p.deployment.name: [k for k in program.required_config if k not in program.config] for p, program in programs}
    return Project(stack, {**{k: v.encode() for k, v in files.items()}, **extra}, config, {name: keys for name, keys in missing.items() if keys})


def _template(cloud: str) -> Path:
    from providers import registry

    template = registry.get(cloud).pulumi_template
    if template is None:
        raise LlamadeployError(f"the {cloud} provider ships no Pulumi template; use `llamadeploy up --cloud {cloud}`")
    return template.resolve()


def _program(planned: Plan) -> Program:
    from providers import registry

    program = registry.get(planned.cloud).program(planned)
    if program is None:
        raise LlamadeployError(f"the {planned.cloud} provider cannot export a Pulumi program yet; use `llamadeploy up --cloud {planned.cloud}`")
    return program


def _identifier(name: str) -> str:
    """A deployment name as a Python variable name (names are DNS labels: letters, digits, '-')."""
    return "d_" + name.replace("-", "_")


def _summary(planned: Plan) -> str:
    scaling = planned.deployment.autoscaling
    return (
        f"{planned.deployment.model} ({planned.deployment.quantization}) on {planned.offer.instance_type} in {planned.region}, "
        f"{scaling.min_replicas}-{scaling.max_replicas} replicas"
    )
