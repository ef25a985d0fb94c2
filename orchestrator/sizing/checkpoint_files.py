"""A user's own checkpoint in object storage, read as vLLM will load it, before anything is made.

A Hugging Face-format checkpoint is `config.json`, a tokenizer (`tokenizer.json` or
`tokenizer.model`), and its weights: one `model.safetensors`, or the shards that
`model.safetensors.index.json` names in its `weight_map` (its `metadata.total_size` is the
bytes of every tensor). vLLM fails at container start on any of them missing, after the service
has made the endpoint and begun billing; reading the listing first turns that into a clear error
with nothing made. Each provider lists its own storage (`Provider.checkpoint_listing`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import LlamadeployError
from orchestrator.sizing.models import LlamaModel

CONFIG = "config.json"
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
TOKENIZERS = ("tokenizer.json", "tokenizer.model")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
# Quantization methods a config may name, by the spec's `quantization` that declares them.
QUANT_METHODS = {"fp8": ("fp8", "fbgemm_fp8", "compressed-tensors"), "int4": ("awq", "gptq", "awq_marlin", "gptq_marlin", "compressed-tensors")}


class CheckpointError(LlamadeployError):
    """The declared weights are not a checkpoint vLLM can load."""


@dataclass(frozen=True)
class CheckpointFiles:
    uri: str
    sizes: Mapping[str, int]  # file name (relative to the location) -> bytes
    config: Mapping[str, Any] | None
    index: Mapping[str, Any] | None

    def problems(self) -> list[str]:
        """What vLLM would fail to find, in the order it would look."""
        if not self.sizes:
            return [f"nothing is stored under {self.uri}"]
        found = []
        if self.config is None:
            found.append(f"no {CONFIG}")
        if not any(name in self.sizes for name in TOKENIZERS):
            found.append(f"no tokenizer ({' or '.join(TOKENIZERS)})")
        missing = sorted(shard for shard in self.shards if shard not in self.sizes)
        if missing:
            found.append(f"missing {', '.join(missing)} (listed in {INDEX})" if self.index is not None else f"no {SINGLE} and no {INDEX}")
        return found

    @property
    def weights_bytes(self) -> int:
        """Every tensor's bytes as stored: the index's `metadata.total_size`, else the shards' sizes
        (only the files the checkpoint loads: a trainer's `checkpoint-500/` beside them is not)."""
        if self.index is not None and isinstance(self.index.get("metadata", {}).get("total_size"), int):
            return int(self.index["metadata"]["total_size"])
        return sum(self.sizes[shard] for shard in self.shards if shard in self.sizes)

    @property
    def quant_method(self) -> str | None:
        """How the checkpoint is quantized (its config's `quantization_config.quant_method`), or None."""
        quantization = (self.config or {}).get("quantization_config")
        return str(quantization.get("quant_method", "unknown")) if isinstance(quantization, dict) else None

    def held_bytes(self) -> float:
        """The weights as vLLM holds them: a quantized checkpoint as stored; an unquantized one at
        16 bits, as vLLM's default `--dtype auto` loads float32 (float16 for float32 checkpoints,
        vllm/config: _get_and_verify_dtype)."""
        if self.quant_method is not None:
            return float(self.weights_bytes)
        config = self.config or {}
        stored = DTYPE_BYTES.get(str(config.get("dtype") or config.get("torch_dtype") or "bfloat16"), 2)  # newer transformers write `dtype`
        return self.weights_bytes * 2 / stored

    def architecture(self, name: str) -> LlamaModel:
        """The model as this checkpoint's config.json describes it (a fine-tune may change the
        vocabulary, untie the embeddings, or extend the context)."""
        config = self.config or {}
        try:
            heads = int(config["num_attention_heads"])
            return LlamaModel(
                name=name,
                hf_repo=self.uri,
                dim=int(config["hidden_size"]),
                n_layers=int(config["num_hidden_layers"]),
                n_heads=heads,
                n_kv_heads=int(config.get("num_key_value_heads", heads)),
                ffn_hidden=int(config["intermediate_size"]),
                vocab_size=int(config["vocab_size"]),
                tied_embeddings=bool(config.get("tie_word_embeddings", False)),
                max_context=int(config.get("max_position_embeddings", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{self.uri}{CONFIG} lacks {exc} or holds a bad value: not a Llama config llamadeploy can size") from exc

    @property
    def shards(self) -> set[str]:
        return set(self.index.get("weight_map", {}).values()) if self.index is not None else {SINGLE}


def read_checkpoint(uri: str, listing: Mapping[str, int], read: Callable[[str], bytes]) -> CheckpointFiles:
    """The checkpoint at `uri` from its listing (name -> bytes) and a reader of its small files."""
    return CheckpointFiles(uri, dict(listing), _json(uri, CONFIG, listing, read), _json(uri, INDEX, listing, read))


def check_checkpoint(files: CheckpointFiles, field: str) -> None:
    """Raise a CheckpointError naming everything missing, or return."""
    problems = files.problems()
    if problems:
        raise CheckpointError(
            f"{field} {files.uri} is not a complete Hugging Face checkpoint: {'; '.join(problems)}. "
            "Upload the whole checkpoint folder (config, tokenizer, every safetensors shard) and run `up` again; nothing was made"
        )


def _json(uri: str, name: str, listing: Mapping[str, int], read: Callable[[str], bytes]) -> Mapping[str, Any] | None:
    if name not in listing:
        return None
    try:
        value = json.loads(read(name))
    except ValueError as exc:
        raise CheckpointError(f"{uri}{name} is not valid JSON ({exc}); upload the checkpoint's own {name}") from exc
    return value if isinstance(value, dict) else None
