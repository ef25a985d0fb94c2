"""Secrets named in a stack (`env:NAME`) are read from the environment at deploy time only.

They go straight to the cloud call that needs them and are never written to state, logs or
events: a state file or CI log must be safe to share.
"""

from __future__ import annotations

import os

from orchestrator.declared.spec import Deployment
from orchestrator.errors import LlamadeployError


class MissingSecretError(LlamadeployError):
    """A secret reference points at an environment variable that is not set."""


# The default secret: Llama's gated weights on the Hugging Face hub need a token.
HUB_TOKEN = {"HF_TOKEN": "env:HF_TOKEN"}


def hub_token(deployment: Deployment) -> str | None:
    """The Hugging Face token this machine fetches the deployment's checkpoint with: the value its
    `HF_TOKEN` reference names (by default the HF_TOKEN variable), or None where it is unset or
    the stack declares no such secret."""
    reference = deployment.serving.secrets.get("HF_TOKEN")  # the spec's default holds HUB_TOKEN; `secrets: {}` turns it off
    return (os.environ.get(reference.removeprefix("env:")) or None) if reference else None


def sent_secrets(deployment: Deployment, own_weights: bool) -> dict[str, str]:
    """The secrets a deployment sends on a cloud: those it names, less the hub token where the
    weights come from the user's own storage. The default `HF_TOKEN: env:HF_TOKEN` is dropped there
    whether written or defaulted, as a recorded spec cannot tell them apart (a token wanted anyway
    goes under another name, e.g. `HUGGING_FACE_HUB_TOKEN: env:HF_TOKEN`)."""
    secrets = dict(deployment.serving.secrets)
    if own_weights and secrets.get("HF_TOKEN") == HUB_TOKEN["HF_TOKEN"]:
        del secrets["HF_TOKEN"]
    return secrets


def resolve_secrets(deployment: Deployment, own_weights: bool = False) -> dict[str, str]:
    """The secrets the deployment sends (`sent_secrets`), read from the environment; all missing ones named at once."""
    values, missing = {}, []
    for name, reference in sent_secrets(deployment, own_weights).items():
        variable = reference.removeprefix("env:")
        value = os.environ.get(variable)
        if value is None:
            missing.append(f"{name} (from ${variable})")
        else:
            values[name] = value
    if missing:
        if "secrets" not in deployment.serving.model_fields_set:  # the stack names none: the default asked for them
            raise MissingSecretError(
                f"deployment {deployment.name!r} needs {', '.join(missing)}, which llamadeploy asks for by default to download gated Llama "
                "weights from the Hugging Face hub; export it before `up`, or turn the default off with `serving: {secrets: {}}` "
                "when the weights need no token"
            )
        raise MissingSecretError(
            f"deployment {deployment.name!r} needs the secrets {', '.join(missing)}; export them before `up`, or remove them from serving.secrets"
        )
    return values
