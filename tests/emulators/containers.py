"""How the cloud stand-ins start a serving container: the image's ENTRYPOINT and CMD composed with
what the provider sent, exactly as the service composes them, then the process started.

The stand-ins know only the images in `IMAGES`, each with its ENTRYPOINT, CMD and what its
entrypoint does, taken from the image's public Dockerfile; an image they do not know is refused,
so a test cannot pass by deploying something nobody checked. A user's copy of a known image in
their own registry (OCI Data Science runs images from OCIR only) is declared with `mirror()`.
Azure ML builds an environment from a Dockerfile: `build()` reads one (FROM, ENV, ENTRYPOINT, CMD).

Programs an image may run:
- `vllm`: the argv is a vLLM server command, started by `tests/emulators/vllm.py`;
- `lmi`: SageMaker's large-model-inference container (djl-serving), configured by environment
  only: it turns `HF_MODEL_ID`, `TENSOR_PARALLEL_DEGREE`, `OPTION_<X>` into vLLM engine arguments
  (djl-serving `engines/python/setup/djl_python/properties_manager/vllm_rb_properties.py`,
  `serving/docs/lmi/user_guides/vllm_user_guide.md`) and serves `/ping` and `/invocations` on 8080.
"""

from __future__ import annotations

import csv
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from tests.emulators import vllm

CATALOG = Path(__file__).parent.parent.parent / "orchestrator" / "data" / "gpu-offers.csv"
MODEL_DIR = "/opt/ml/model"  # SageMaker's model data directory, which LMI loads by default


@dataclass(frozen=True)
class Image:
    """A container image as its Dockerfile builds it."""

    reference: str  # repository:tag; `{region}` stands for any region in a registry host
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    program: str  # "vllm" or "lmi"
    env: tuple[tuple[str, str], ...] = ()
    source: str = ""
    # A launcher in the image that starts a Ray cluster over a replica's hosts, then runs its arguments.
    ray_launcher: str | None = None
    # Schemes of folders the image downloads itself when --model names one (gs://, for Google's build).
    fetches: tuple[str, ...] = ()


# An LMI image starts djl-serving; it reads no argv of the service's (SageMaker passes none).
_LMI_ENTRYPOINT = ("/usr/local/bin/dockerd-entrypoint.sh",)
IMAGES: tuple[Image, ...] = (
    Image(
        "vllm/vllm-openai:v0.11.0",
        ("python3", "-m", "vllm.entrypoints.openai.api_server"),
        (),
        "vllm",
        source='vllm-project/vllm v0.11.0 docker/Dockerfile, target vllm-openai: ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"], no CMD',
    ),
    Image(
        "763104351884.dkr.ecr.{region}.amazonaws.com/djl-inference:0.35.0-lmi17.0.0-cu128",
        _LMI_ENTRYPOINT,
        ("serve",),
        "lmi",
        env=(("MODEL_LOADING_TIMEOUT", "1200"), ("SERVING_FEATURES", "vllm")),
        source="deepjavalibrary/djl-serving 0.35.0-dlc serving/docker/lmi.Dockerfile (LMI 17, vLLM 0.11.1); "
        "aws/deep-learning-containers docs/src/data/djl-inference",
    ),
    # Google's samples give the whole command line as the container's args, so the image's entrypoint
    # runs its arguments; its vLLM is Google's build, taken here to accept vLLM 0.11.0's options (unconfirmed).
    Image(
        "us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/pytorch-vllm-serve:20251205_0916_RC01",
        (),
        (),
        "vllm",
        ray_launcher="/vllm-workspace/ray_launcher.sh",
        fetches=("gs://",),
        source="GoogleCloudPlatform/vertex-ai-samples notebooks/community/model_garden/model_garden_huggingface_vllm_deployment.ipynb "
        "(args only) and model_garden_pytorch_deepseek_deployment.ipynb (ray_launcher.sh before the args); a gs:// --model is "
        "downloaded first (model_garden_gemma2_finetuning_on_vertex.ipynb deploys the user's bucket so; "
        "community-content/vertex_model_garden/model_oss/vllm/vllm.patch, download_gcs_dir_to_local)",
    ),
)
_mirrors: dict[str, str] = {}


class UnknownImage(Exception):
    """The stand-in does not know this image, so it cannot say how it would start."""


def mirror(reference: str, of: str) -> None:
    """Declare `reference` a copy of the known image `of` (a user's push to their own registry)."""
    _mirrors[reference] = of


def lookup(reference: str) -> Image:
    original = _mirrors.get(reference, reference)
    for image in IMAGES:
        pattern = "^" + re.escape(image.reference).replace(re.escape("{region}"), "[a-z0-9-]+") + "$"
        if re.match(pattern, original):
            return image
    raise UnknownImage(f"image {reference!r} is not one the stand-in knows (tests/emulators/containers.py IMAGES)")


def build(dockerfile: str, reference: str) -> Image:
    """The image a Dockerfile builds, for the instructions a serving image needs; others are refused."""
    image: Image | None = None
    for line in _logical_lines(dockerfile):
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            base = lookup(rest.split()[0])
            image = replace(base, reference=reference, source=f"built FROM {rest.split()[0]}")
        elif image is None:
            raise UnknownImage(f"Dockerfile: {instruction} before FROM")
        elif instruction == "ENV":
            key, _, value = rest.partition("=") if "=" in rest.split()[0] else rest.partition(" ")
            image = replace(image, env=(*image.env, (key.strip(), value.strip().strip('"'))))
        elif instruction in ("ENTRYPOINT", "CMD"):
            words = tuple(_json_or_shell(rest))
            # A new ENTRYPOINT resets the base image's CMD (Dockerfile reference, "Understand how CMD and ENTRYPOINT interact").
            image = replace(image, entrypoint=words, cmd=()) if instruction == "ENTRYPOINT" else replace(image, cmd=words)
        else:
            raise UnknownImage(f"Dockerfile: the stand-in cannot build {instruction!r}")
    if image is None:
        raise UnknownImage("Dockerfile has no FROM")
    return image


def _logical_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def _json_or_shell(text: str) -> list[str]:
    """Exec form `["a", "b"]`, or shell form, which Docker runs as `/bin/sh -c "<text>"`."""
    import json

    if text.startswith("["):
        return list(json.loads(text))
    return ["/bin/sh", "-c", text]


def compose(image: Image, entrypoint: list[str] | None = None, args: list[str] | None = None) -> list[str]:
    """The process a service starts: Docker's and Kubernetes' rule. An entrypoint (command) given
    replaces the image's and drops its CMD; args given replace the CMD."""
    head = list(image.entrypoint) if entrypoint is None else list(entrypoint)
    tail = list(image.cmd) if args is None and entrypoint is None else list(args or [])
    return head + tail


def _shell(argv: list[str], env: dict[str, str]) -> list[str]:
    """What `/bin/sh -c STRING` runs: STRING with $VAR and ${VAR} expanded, split into words."""
    if argv[:2] != ["/bin/sh", "-c"] or len(argv) < 3:
        return argv
    expanded = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), argv[2])
    return shlex.split(expanded)


@cache
def gpus_per_instance() -> dict[str, int]:
    """GPUs on each instance type the clouds sell for serving (the catalog's instance data)."""
    with CATALOG.open() as handle:
        return {row["instance_type"]: int(row["gpu_count"]) for row in csv.DictReader(handle)}


@dataclass
class Container:
    """A started container: its image, argv and environment, and the server inside it."""

    image: Image
    argv: list[str]
    env: dict[str, str]
    server: vllm.Server
    port: int

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        return self.server.handle(method, path, body)


def start(
    reference: str | Image,
    env: dict[str, str],
    instance_type: str,
    entrypoint: list[str] | None = None,
    args: list[str] | None = None,
    files: frozenset[str] = frozenset(),
    hosts: int = 1,
    gpus: int | None = None,
    mounts: Mapping[str, Mapping[str, bytes]] | None = None,
    network: bool = True,
) -> Container:
    """Start a container as the service would; raise ContainerFailed (or UnknownImage) as it would fail.

    `hosts` is how many hosts one replica spans; only the image's Ray launcher joins their GPUs.
    `gpus` is for a service whose instance types the shipped catalog does not list.
    `mounts` are the directories the service puts in the container (model data), file by file;
    without `network` the container can reach nothing (network isolation), the hub included.
    """

    image = reference if isinstance(reference, Image) else lookup(reference)
    environment = {**dict(image.env), **env}
    gpus = gpus_per_instance().get(instance_type, 0) if gpus is None else gpus
    # The service's own mounts, and the remote folders the image itself downloads; no other.
    mounted = {folder: files for folder, files in (mounts or {}).items() if folder.startswith("/") or (image.fetches and folder.startswith(image.fetches))}
    if image.program == "lmi":
        server = _lmi(environment, gpus, mounted, network)
        return Container(image, compose(image), environment, server, port=8080)
    argv = _shell(compose(image, entrypoint, args), environment)
    if image.ray_launcher and argv[:1] == [image.ray_launcher]:
        argv, gpus = argv[1:], gpus * hosts
    server = vllm.start(argv, environment, gpus, mounted, network)
    return Container(image, argv, environment, server, port=server.port)


# LMI's own names for vLLM's options (djl-serving starting-guide.md and vllm_rb_properties.py,
# generate_vllm_engine_arg_dict); any other `OPTION_<NAME>` naming a vLLM engine argument passes through.
_LMI_ALIASES = {
    "TENSOR_PARALLEL_DEGREE": "--tensor-parallel-size",
    "OPTION_TENSOR_PARALLEL_DEGREE": "--tensor-parallel-size",
    "OPTION_MAX_ROLLING_BATCH_SIZE": "--max-num-seqs",
    "MAX_BATCH_SIZE": "--max-num-seqs",
    "OPTION_QUANTIZE": "--quantization",
    "OPTION_QUANTIZATION": "--quantization",
    "OPTION_DTYPE": "--dtype",
}
# djl-serving options that configure the server, not vLLM.
_LMI_OWN = {"OPTION_ASYNC_MODE", "OPTION_ROLLING_BATCH", "OPTION_ENTRYPOINT", "OPTION_MODEL_LOADING_TIMEOUT"}


def _lmi(env: dict[str, str], gpus: int, mounts: Mapping[str, Mapping[str, bytes]], network: bool = True) -> vllm.Server:
    """djl-serving's start: vLLM's engine arguments from the environment, then vLLM.

    Options LMI does not know are dropped silently, as LMI does. In async mode (vllm_async_service.py)
    answers are vLLM's own, naming the served model ("lmi" unless OPTION_SERVED_MODEL_NAME); the
    rolling-batch formatter (output_formatter.py, _json_chat_output_formatter) names no model.
    """
    model = env.get("HF_MODEL_ID") or (MODEL_DIR if mounts.get(MODEL_DIR) else None)  # LMI loads /opt/ml/model when it holds model data
    if model is None:
        raise vllm.ContainerFailed(1, "djl-serving: no model: set HF_MODEL_ID (or provide model data in /opt/ml/model)")
    tensor_parallel = env.get("TENSOR_PARALLEL_DEGREE", env.get("OPTION_TENSOR_PARALLEL_DEGREE", "max"))
    argv = ["--model", model, "--tensor-parallel-size", str(gpus) if tensor_parallel == "max" else tensor_parallel]
    for key, value in sorted(env.items()):
        passthrough = "--" + key.removeprefix("OPTION_").lower().replace("_", "-") if key.startswith("OPTION_") and key not in _LMI_OWN else None
        option = _LMI_ALIASES.get(key) or (passthrough if passthrough in vllm.options() else None)
        if option is None or option == "--tensor-parallel-size":
            continue
        if vllm.options()[option] in ("bool", "flag"):
            argv += [option] if value.lower() == "true" else []
        else:
            argv += [option, value]
    if "--served-model-name" not in argv:
        argv += ["--served-model-name", "lmi"]
    server = vllm.start(["python3", *vllm.OPENAI_SERVER, *argv], env, gpus, mounts, network)
    server.port = 8080
    server.names_model = env.get("OPTION_ROLLING_BATCH", "disable") == "disable"
    return server
