"""The Llama catalog: names resolve, parameter counts match the published sizes."""

from __future__ import annotations

import pytest

from orchestrator.errors import UnknownModelError
from orchestrator.sizing.models import known_models, resolve


@pytest.mark.parametrize(
    ("name", "published"),
    [
        ("llama3.1-8b", 8.03e9),
        ("llama3.1-8b-instruct", 8.03e9),
        ("llama3.1-70b", 70.6e9),
        ("llama3.1-70b-instruct", 70.6e9),
        ("llama3.1-405b", 405.9e9),
        ("llama3.1-405b-instruct", 405.9e9),
        ("llama3.3-70b-instruct", 70.6e9),
        ("llama3.2-1b", 1.24e9),
        ("llama3.2-3b-instruct", 3.21e9),
    ],
)
def test_parameter_counts_agree_with_published_sizes_within_one_percent(name: str, published: float) -> None:
    assert resolve(name).model.parameters == pytest.approx(published, rel=0.01)


def test_exact_parameter_count_of_8b_from_its_architecture() -> None:
    model = resolve("llama3.1-8b").model
    # 32 layers x (2x4096^2 + 2x4096x1024 + 3x4096x14336 + 2x4096) + 2x128256x4096 + 4096
    assert model.parameters == 8_030_261_248
    assert (model.dim, model.n_layers, model.n_heads, model.n_kv_heads, model.ffn_hidden) == (4096, 32, 32, 8, 14336)


@pytest.mark.parametrize(
    "name",
    ["llama3.1-70b-instruct", "Llama3.1-70B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "META-LLAMA/llama-3.1-70b-instruct"],
)
def test_descriptor_and_hugging_face_id_resolve_to_the_same_model(name: str) -> None:
    ref = resolve(name)
    assert ref.model.name == "llama3.1-70b-instruct"
    assert ref.hf_repo == "meta-llama/Llama-3.1-70B-Instruct"
    assert ref.checkpoint_quantization == "bf16"


def test_fp8_checkpoint_is_known_as_such() -> None:
    ref = resolve("meta-llama/Llama-3.1-405B-Instruct-FP8")
    assert ref.model.name == "llama3.1-405b-instruct"
    assert ref.checkpoint_quantization == "fp8"
    assert ref.hf_repo == "meta-llama/Llama-3.1-405B-Instruct-FP8"


def test_context_limits_come_from_llama_models() -> None:
    assert resolve("llama3.1-8b-instruct").model.max_context == 131072
    assert resolve("llama-3-8b-instruct").model.max_context == 8192


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve("llama3.1-7b-instruct")
    message = str(caught.value)
    assert "unknown model 'llama3.1-7b-instruct'" in message
    assert "llama3.1-8b-instruct" in message or "llama3.1-70b-instruct" in message
    assert "llamadeploy models" in message


def test_catalog_covers_the_issue_models_and_no_vision_or_moe() -> None:
    names = {m.name for m in known_models()}
    for required in (
        "llama3.1-8b",
        "llama3.1-70b",
        "llama3.1-405b",
        "llama3.1-8b-instruct",
        "llama3.1-70b-instruct",
        "llama3.1-405b-instruct",
        "llama3.2-1b",
        "llama3.2-3b",
        "llama3.3-70b-instruct",
    ):
        assert required in names
    assert not any("vision" in n or "llama-4" in n for n in names)


def test_kv_cache_per_token_of_70b() -> None:
    # 2 (K and V) x 80 layers x 8 kv heads x 128 head dim x 2 bytes
    assert resolve("llama3.1-70b").model.kv_bytes_per_token(2) == 327_680
