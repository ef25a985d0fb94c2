"""The Llama models llamadeploy can size and serve, built from the `llama-models` package.

llama-models is Meta's own record of each checkpoint's architecture, so parameter counts and
KV-cache sizes come from the real dimensions rather than from the marketing size in a name.
It is imported on first use only: `llamadeploy --help` must stay fast.

Covered: the dense text models of Llama 3, 3.1, 3.2 and 3.3. Left out on purpose: vision
models (their cross-attention layers are not in the text architecture), Llama 4 (mixture of
experts: llama-models carries no dimensions for it), Meta's int4 mobile checkpoints (not
servable by vLLM), and Llama 2 (llama-models' Llama 2 dimensions disagree with the
published sizes).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from orchestrator.errors import NoCheckpointError, UnknownModelError

if TYPE_CHECKING:
    from llama_models.sku_types import Model

# Llama 3.2 1B and 3B share one matrix between the token embedding and the output layer
# (`tie_word_embeddings: true` in their Hugging Face configs); llama-models does not say so.
_TIED_EMBEDDINGS = ("Llama3.2-1B", "Llama3.2-3B")
_SERVED_FAMILIES = ("llama3", "llama3_1", "llama3_2", "llama3_3")
# Checkpoint variants that describe Meta's own sharding, not a different model.
_SKIPPED_VARIANTS = ("bf16-mp16",)


@dataclass(frozen=True)
class LlamaModel:
    """One Llama architecture, with what sizing needs to know about it."""

    name: str
    hf_repo: str
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_hidden: int
    vocab_size: int
    tied_embeddings: bool
    max_context: int

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @cached_property
    def parameters(self) -> int:
        """Parameter count from the architecture (attention, SwiGLU MLP, norms, embeddings)."""
        attention = 2 * self.dim * self.dim + 2 * self.dim * self.n_kv_heads * self.head_dim
        mlp = 3 * self.dim * self.ffn_hidden
        norms = 2 * self.dim
        embeddings = self.vocab_size * self.dim * (1 if self.tied_embeddings else 2)
        return self.n_layers * (attention + mlp + norms) + embeddings + self.dim

    @property
    def embedding_parameters(self) -> int:
        """The token embedding and the output layer (one matrix when they are tied)."""
        return self.vocab_size * self.dim * (1 if self.tied_embeddings else 2)

    @property
    def linear_parameters(self) -> int:
        """The attention and MLP projections: what weight quantization compresses."""
        return self.parameters - self.embedding_parameters - (2 * self.n_layers + 1) * self.dim

    def kv_bytes_per_token(self, bytes_per_value: float) -> float:
        """Bytes of K and V cache one token takes across all layers."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * bytes_per_value


@dataclass(frozen=True)
class ModelRef:
    """What a name in a stack file resolved to: the architecture and the checkpoint to load."""

    model: LlamaModel
    hf_repo: str
    checkpoint_quantization: str

    def checkpoint(self, quantization: str) -> Checkpoint:
        """The checkpoint vLLM loads to serve this model at `quantization`, or NoCheckpointError.

        bf16 and fp8 checkpoints load as they are; a bf16 checkpoint serves fp8 by quantizing at
        load time (vLLM's `--quantization fp8`, LMI's `OPTION_QUANTIZE=fp8`). int4 has no load-time
        path in vLLM or LMI (they quantize at load to fp8 and bitsandbytes only: djl-serving
        serving/docs/lmi/user_guides/vllm_user_guide.md, "runtime quantization"; vLLM's
        get_quant_config raises "Cannot find the config file for awq" on a bf16 checkpoint), so it
        serves a checkpoint quantized ahead of time, which vLLM detects from its config.
        """
        if quantization == self.checkpoint_quantization:
            return Checkpoint(self.hf_repo, quantization, None)
        if quantization == "fp8" and self.checkpoint_quantization == "bf16":
            return Checkpoint(self.hf_repo, "bf16", "fp8")
        prequantized = INT4_CHECKPOINTS.get(self.model.name) if quantization == "int4" else None
        if prequantized is None:
            known = ", ".join(sorted(INT4_CHECKPOINTS))
            raise NoCheckpointError(
                f"no {quantization} checkpoint of {self.model.name} is known: vLLM quantizes at load time to fp8 only, and int4 needs a "
                f"checkpoint quantized ahead of time (known for {known}); use quantization: fp8, or a model with an int4 checkpoint"
            )
        return Checkpoint(prequantized, "int4", None)


@dataclass(frozen=True)
class Checkpoint:
    """The files vLLM loads: the repository, how its weights are stored, and what vLLM does at load."""

    repo: str
    stored_as: str  # bf16 | fp8 | int4
    load_quantization: str | None  # `--quantization` applied while loading ("fp8"), or None


# Llama 3.1 Instruct quantized to 4 bits with AWQ (GEMM kernels, zero point, group size 128; the
# embeddings and the output layer stay bf16), published by Hugging Face's hugging-quants
# organisation: huggingface/blog llama31.md ("The Hugging Quants organization contains quantized
# checkpoints for the 70B and 8B version as well"); the 8B one is in vLLM 0.11.0's own benchmark
# configs (.buildkite/nightly-benchmarks/tests/serving-tests-cpu-snc*.json).
INT4_CHECKPOINTS = {
    "llama3.1-8b-instruct": "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
    "llama3.1-70b-instruct": "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
    "llama3.1-405b-instruct": "hugging-quants/Meta-Llama-3.1-405B-Instruct-AWQ-INT4",
}


def resolve(name: str) -> ModelRef:
    """Find a model by llama-models descriptor or Hugging Face repo id, in any letter case."""
    aliases = _aliases()
    ref = aliases.get(name.strip().lower())
    if ref is not None:
        return ref
    close = difflib.get_close_matches(name.strip().lower(), list(aliases), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownModelError(f"unknown model {name!r}; {hint}run `llamadeploy models` to list the known models")


def known_models() -> list[LlamaModel]:
    """Every model the catalog covers, each once, in llama-models' order."""
    seen: dict[str, LlamaModel] = {}
    for ref in _aliases().values():
        seen.setdefault(ref.model.name, ref.model)
    return list(seen.values())


@lru_cache(maxsize=1)
def _aliases() -> dict[str, ModelRef]:
    from llama_models.sku_list import all_registered_models
    from llama_models.sku_types import CheckpointQuantizationFormat, is_multimodal

    checkpoint_formats = {
        CheckpointQuantizationFormat.bf16: "bf16",
        CheckpointQuantizationFormat.fp8_mixed: "fp8",
    }
    aliases: dict[str, ModelRef] = {}
    canonical: dict[str, LlamaModel] = {}
    for sku in all_registered_models():
        checkpoint = checkpoint_formats.get(sku.quantization_format)
        if sku.model_family.value not in _SERVED_FAMILIES or is_multimodal(sku.core_model_id) or checkpoint is None or sku.variant in _SKIPPED_VARIANTS:
            continue
        core_name = sku.core_model_id.value
        model = canonical.get(core_name)
        if model is None and checkpoint == "bf16":
            model = canonical[core_name] = _from_sku(sku)
        if model is None:
            continue
        ref = ModelRef(model, sku.huggingface_repo or model.hf_repo, checkpoint)
        aliases.setdefault(core_name.lower(), ModelRef(model, model.hf_repo, "bf16"))
        aliases.setdefault(sku.descriptor().lower(), ref)
        if sku.huggingface_repo:
            aliases.setdefault(sku.huggingface_repo.lower(), ref)
    return aliases


def _from_sku(sku: Model) -> LlamaModel:
    args = sku.arch_args
    dim = args["dim"]
    hidden = int(2 * 4 * dim / 3)
    if args.get("ffn_dim_multiplier"):
        hidden = int(args["ffn_dim_multiplier"] * hidden)
    multiple = args["multiple_of"]
    hidden = multiple * ((hidden + multiple - 1) // multiple)
    core_name = sku.core_model_id.value
    return LlamaModel(
        name=core_name.lower(),
        hf_repo=sku.huggingface_repo or "",
        dim=dim,
        n_layers=args["n_layers"],
        n_heads=args["n_heads"],
        n_kv_heads=args.get("n_kv_heads") or args["n_heads"],
        ffn_hidden=hidden,
        vocab_size=args["vocab_size"],
        tied_embeddings=core_name.startswith(_TIED_EMBEDDINGS),
        max_context=sku.max_seq_length,
    )
