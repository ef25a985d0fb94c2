"""A stand-in for vLLM 0.11.0's OpenAI-compatible server: it starts, or fails, as vLLM would.

A container started by a cloud stand-in (see `containers.py`) ends in one of these servers.
It parses its argv with the real option set of the pinned version (`tests/data/vllm-0.11.0-args.txt`,
extracted from vLLM's source distribution), so an unknown option exits 2 as argparse does; it
resolves `--model` against a small Hugging Face hub (gated Meta repositories need a valid token,
an unknown repository or a missing local path fails as transformers does); it refuses a runtime
quantization the checkpoint cannot take; and then it answers `/health`, `/v1/models`,
`/v1/chat/completions`, `/v1/completions` and `/invocations` naming the model it loaded.

Without `--model` vLLM 0.11.0 loads its default model, `Qwen/Qwen3-0.6B` (vllm/config/model.py,
`ModelConfig.model`), and serves it happily: the failure the serving contract guards against.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

VERSION = "0.11.0"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
DEFAULT_PORT = 8000
OPENAI_SERVER = ("-m", "vllm.entrypoints.openai.api_server")
ARGS_FILE = Path(__file__).parent.parent / "data" / f"vllm-{VERSION}-args.txt"
# What `--quantization` vLLM applies to an unquantized checkpoint at load time (fp8 casts the
# weights, bitsandbytes quantizes them); every other method reads a checkpoint already quantized
# and fails on a bf16 one: "Cannot find the config file for awq"
# (vllm/model_executor/model_loader/weight_utils.py, get_quant_config).
RUNTIME_QUANTIZATIONS = frozenset({"fp8", "bitsandbytes"})
VALID_TOKEN = "hf_NotARealTokenButSecret123"  # the test environment's HF_TOKEN; the hub accepts no other


@dataclass(frozen=True)
class Checkpoint:
    """A repository on the stand-in hub: whether it is gated, how it is quantized, its context."""

    gated: bool
    quantization: str | None  # the config's quant_method; None for bf16
    max_position_embeddings: int


class ContainerFailed(Exception):
    """The container's process exited: `code` and the last lines of its log."""

    def __init__(self, code: int, log: str) -> None:
        super().__init__(f"exit code {code}: {log}")
        self.code = code
        self.log = log


@cache
def options() -> dict[str, str]:
    """Every option of the pinned vLLM with its arity (value, list, bool or flag), `--no-x` included."""
    found: dict[str, str] = {}
    for line in ARGS_FILE.read_text().splitlines():
        if line.startswith("--"):
            name, arity = line.split()
            found[name] = arity
            if arity == "bool":
                found[f"--no-{name[2:]}"] = "flag"
    return found


@cache
def hub() -> dict[str, Checkpoint]:
    """The Hugging Face repositories a test may name: Meta's Llama 3.x text checkpoints (from
    Meta's llama-models package, gated), the AWQ-INT4 community checkpoints of Llama 3.1, and
    vLLM's default model."""
    from llama_models.sku_list import all_registered_models

    repos = {DEFAULT_MODEL: Checkpoint(gated=False, quantization=None, max_position_embeddings=40960)}
    for sku in all_registered_models():
        if sku.huggingface_repo:
            fp8 = "fp8" in sku.descriptor().lower()
            repos[sku.huggingface_repo] = Checkpoint(gated=True, quantization="fbgemm_fp8" if fp8 else None, max_position_embeddings=sku.max_seq_length)
    for size in ("8B", "70B", "405B"):
        repos[f"hugging-quants/Meta-Llama-3.1-{size}-Instruct-AWQ-INT4"] = Checkpoint(gated=False, quantization="awq", max_position_embeddings=131072)
    return repos


def parse(arguments: list[str]) -> dict[str, Any]:
    """argv after the program, as vLLM's FlexibleArgumentParser reads it; exits 2 on what it refuses."""
    known = options()
    parsed: dict[str, Any] = {"positional": []}
    tokens = list(arguments)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--"):
            parsed["positional"].append(token)
            continue
        name, has_value, value = token.partition("=")
        head, dot, rest = name[2:].partition(".")
        name = "--" + head.replace("_", "-") + dot + rest
        option = _resolve(name.split(".")[0], known)
        arity = known[option]
        if arity in ("bool", "flag"):
            if has_value:
                _usage(f"argument {option}: ignored explicit argument {value!r}")
            parsed[option] = not option.startswith("--no-")
            continue
        if not has_value:
            if not tokens or tokens[0].startswith("--"):
                _usage(f"argument {option}: expected {'at least one argument' if arity == 'list' else 'one argument'}")
            value = tokens.pop(0)
        if arity == "list":
            values = [value]
            while tokens and not tokens[0].startswith("-"):
                values.append(tokens.pop(0))
            parsed[option] = values
        else:
            parsed[option] = value
    return parsed


def _resolve(name: str, known: dict[str, str]) -> str:
    """argparse's option lookup: the exact name, else the one option it is a unique prefix of."""
    if name in known:
        return name
    matches = [option for option in known if option.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        _usage(f"ambiguous option: {name} could match {', '.join(matches)}")
    raise ContainerFailed(2, f"api_server.py: error: unrecognized arguments: {name}")


def _usage(message: str) -> None:
    raise ContainerFailed(2, f"api_server.py: error: {message}")


@dataclass
class Server:
    """The running server: the model it loaded, the names it answers to, where it listens."""

    model: str
    served_names: list[str]
    port: int
    max_model_len: int
    names_model: bool = True  # False: an answer without the `model` field (LMI's rolling-batch formatter)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """One HTTP request to the server, as vLLM's api_server routes it."""
        if path in ("/health", "/ping") and method in ("GET", "POST"):
            return 200, None
        if path == "/v1/models" and method == "GET":
            return 200, {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "owned_by": "vllm", "root": self.model, "max_model_len": self.max_model_len} for name in self.served_names
                ],
            }
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/completions", "/invocations"):
            return 404, {"detail": "Not Found"}
        if not isinstance(body, dict):
            return 400, _error("The request body must be a JSON object", 400)
        chat = path == "/v1/chat/completions" or (path == "/invocations" and "messages" in body)
        if path == "/invocations" and not chat and "prompt" not in body:
            return 400, _error("Cannot determine the request type from the body: it has neither messages nor prompt", 400)
        if chat and not isinstance(body.get("messages"), list):
            return 400, _error("messages: Field required", 400)
        asked = body.get("model")
        if asked and asked not in self.served_names:  # an empty or missing model is the first served one
            return 404, _error(f"The model `{asked}` does not exist.", 404, "NotFoundError")
        return 200, self._answer(chat, body)

    def _answer(self, chat: bool, body: dict[str, Any]) -> dict[str, Any]:
        text = f"Paris. (answered by {self.served_names[0]})"
        tokens = min(int(body.get("max_tokens") or 16), 16)
        usage = {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens}
        number = next(self._ids)
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            return {
                "id": f"chatcmpl-{number}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.served_names[0],
                "choices": [choice],
                "usage": usage,
            }
        choice = {"index": 0, "text": text, "finish_reason": "stop"}
        return {
            "id": f"cmpl-{number}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.served_names[0],
            "choices": [choice],
            "usage": usage,
        }


def _local(folder: str, mounts: Mapping[str, Mapping[str, bytes]]) -> Checkpoint:
    """A Hugging Face-format checkpoint in a mounted folder, loaded as transformers and vLLM load
    one: config.json, a tokenizer, and every safetensors shard its index names (or one
    model.safetensors); anything missing fails the start with their errors."""
    files = next((found for mount, found in mounts.items() if folder.rstrip("/") == mount.rstrip("/")), None)
    if files is None:
        raise ContainerFailed(
            1, f"OSError: Incorrect path_or_model_id: '{folder}'. Please provide either the path to a local folder or the repo_id of a model on the Hub."
        )
    if "config.json" not in files:
        raise ContainerFailed(1, f"OSError: {folder} does not appear to have a file named config.json.")
    try:
        config = json.loads(files["config.json"])
        index = files.get("model.safetensors.index.json")
        shards = set(json.loads(index)["weight_map"].values()) if index else {"model.safetensors"}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # transformers fails on a file it cannot parse
        raise ContainerFailed(1, f"OSError: It looks like the config file at '{folder}/config.json' is not a valid JSON file ({exc}).") from exc
    if not {"tokenizer.json", "tokenizer.model"} & set(files):
        raise ContainerFailed(
            1, f"OSError: Can't load tokenizer for '{folder}'. Make sure '{folder}' is the correct path to a directory containing all relevant files."
        )
    missing = sorted(shard for shard in shards if shard not in files)
    if missing:
        raise ContainerFailed(1, f"FileNotFoundError: [Errno 2] No such file or directory: '{folder}/{missing[0]}'")
    quantization = (config.get("quantization_config") or {}).get("quant_method")
    return Checkpoint(gated=False, quantization=quantization, max_position_embeddings=int(config.get("max_position_embeddings", 2048)))


def _error(message: str, code: int, kind: str = "BadRequestError") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def start(argv: list[str], env: dict[str, str], gpus: int, mounts: Mapping[str, Mapping[str, bytes]] | None = None, network: bool = True) -> Server:
    """Start the process `argv` as a container would; a vLLM server, or ContainerFailed.

    Recognised: vLLM's OpenAI server module (`python3 -m vllm.entrypoints.openai.api_server`, which
    ignores a positional model) and the `vllm serve [MODEL]` command, which takes it.
    """
    if len(argv) >= 3 and Path(argv[0]).name in ("python", "python3") and tuple(argv[1:3]) == OPENAI_SERVER:
        parsed, serve_command = parse(argv[3:]), False
    elif len(argv) >= 2 and Path(argv[0]).name == "vllm" and argv[1] == "serve":
        parsed, serve_command = parse(argv[2:]), True
        if "--model" in parsed:
            raise ContainerFailed(
                1,
                "ValueError: With `vllm serve`, you should provide the model as a positional argument or in a config file instead of via the `--model` option.",
            )
    else:
        raise ContainerFailed(127, f"exec: {argv[0] if argv else ''!r}: not a vLLM server this stand-in knows (argv {argv})")
    positional = parsed.pop("positional")
    if len(positional) > 1:
        _usage(f"unrecognized arguments: {' '.join(positional[1:])}")
    model = parsed.get("--model") or (positional[0] if serve_command and positional else DEFAULT_MODEL)
    checkpoint = _load(model, env, mounts or {}, network)
    quantization = parsed.get("--quantization")
    if quantization is not None and checkpoint.quantization is None and quantization not in RUNTIME_QUANTIZATIONS:
        raise ContainerFailed(1, f"ValueError: Cannot find the config file for {quantization}")
    if quantization is not None and checkpoint.quantization is not None and quantization != checkpoint.quantization:
        raise ContainerFailed(
            1,
            f"ValueError: Quantization method specified in the model config ({checkpoint.quantization}) does not match "
            f"the quantization method specified in the `quantization` argument ({quantization}).",
        )
    world = int(parsed.get("--tensor-parallel-size", 1)) * int(parsed.get("--pipeline-parallel-size", 1))
    if world > gpus:
        raise ContainerFailed(
            1, f"ValueError: The number of required GPUs exceeds the total number of available GPUs in the placement group ({world} > {gpus})."
        )
    max_len = int(parsed.get("--max-model-len", checkpoint.max_position_embeddings))
    if max_len > checkpoint.max_position_embeddings:
        raise ContainerFailed(
            1,
            f"ValueError: User-specified max_model_len ({max_len}) is greater than the derived max_model_len "
            f"(max_position_embeddings={checkpoint.max_position_embeddings} in model's config.json).",
        )
    names = parsed.get("--served-model-name") or [model]
    return Server(model=model, served_names=list(names), port=int(parsed.get("--port", DEFAULT_PORT)), max_model_len=max_len)


def _load(model: str, env: dict[str, str], mounts: Mapping[str, Mapping[str, bytes]], network: bool = True) -> Checkpoint:
    """The checkpoint `--model` names: a folder the service mounted, or a repository on the hub."""
    if model.startswith("/") or any(model.rstrip("/") == folder.rstrip("/") for folder in mounts):
        return _local(model, mounts)
    if env.get("HF_HUB_OFFLINE") == "1" or not network:
        raise ContainerFailed(
            1,
            f"OSError: We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached files "
            f"for {model}. Check your internet connection.",
        )
    checkpoint = hub().get(model)
    if checkpoint is None:
        raise ContainerFailed(1, f"OSError: {model} is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'")
    token = env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN")
    if checkpoint.gated and token != VALID_TOKEN:
        why = "no token was given" if not token else "the token was refused"
        raise ContainerFailed(
            1, f"OSError: You are trying to access a gated repo. Make sure to have access to it at https://huggingface.co/{model}. 401 Client Error ({why})."
        )
    return checkpoint
