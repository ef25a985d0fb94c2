"""Sizing against hand-computed numbers."""

from __future__ import annotations

import pytest

from orchestrator.sizing.memory import GIB, layout, requirements, valid_tensor_parallel
from orchestrator.sizing.models import LlamaModel, resolve


def test_8b_bf16_at_8k_by_16() -> None:
    req = requirements(resolve("llama3.1-8b-instruct").model, "bf16", 8192, 16)
    assert req.weights_bytes == 8_030_261_248 * 2  # 14.96 GiB
    assert req.weights_gib == pytest.approx(14.958, abs=1e-3)
    # 128 KiB per token x 8192 x 16 tokens = exactly 16 GiB
    assert req.kv_cache_bytes == 16 * GIB
    # one GPU: 14.958 + 16 + 2 GiB runtime
    assert req.per_gpu_gib(1) == pytest.approx(32.958, abs=1e-3)
    assert req.fits(1, 40)  # A100-40GB: 36 GiB usable
    assert not req.fits(1, 24)  # L4: 21.6 GiB usable
    assert req.per_gpu_gib(2) == pytest.approx(17.479, abs=1e-3)
    assert req.fits(2, 24)


def test_70b_bf16_and_fp8_weights() -> None:
    model = resolve("llama3.1-70b-instruct").model
    bf16 = requirements(model, "bf16", 8192, 1)
    fp8 = requirements(model, "fp8", 8192, 1)
    assert bf16.weights_gib == pytest.approx(131.417, abs=1e-3)  # 70.554e9 x 2 B
    # fp8 at load time quantizes the linear layers only: 68.451e9 x 1 B + (70.554e9 - 68.451e9) x 2 B
    # (embedding, output layer, norms) = 72.657e9 B
    assert fp8.weights_gib == pytest.approx(67.667, abs=1e-3)
    assert bf16.kv_cache_gib == pytest.approx(2.5)  # 320 KiB x 8192
    # H100 (72 GiB usable): bf16 needs 2 GPUs, (131.4+2.5)/2+2 = 69.0; so does fp8: 67.7+2.5+2 = 72.2 > 72
    assert layout(bf16, 80, 8).min_gpus == 2
    assert layout(fp8, 80, 8).min_gpus == 2
    assert layout(bf16, 80, 8).tensor_parallel == 8  # all eight paid-for GPUs are used


def test_405b_fp8_fits_one_h100_node_and_bf16_needs_two() -> None:
    model = resolve("llama3.1-405b-instruct").model
    fp8 = requirements(model, "fp8", 16384, 8, weights="fp8_mixed")  # Meta's FP8 checkpoint, as served
    bf16 = requirements(model, "bf16", 16384, 8)
    # Meta's FP8 checkpoint quantizes the feed-forward layers of blocks 1-124 only: 124 x 3 x 16384 x
    # 53248 = 324.538e9 parameters x 1 B, the other 81.315e9 x 2 B, and a 4-byte scale per row
    # (124 x (2 x 53248 + 16384) x 4 B = 61 MB): 487.23e9 B = 453.77 GiB (not 405.85e9 x 1 B = 378)
    assert fp8.weights_gib == pytest.approx(453.77, abs=0.01)
    # quantized at load time instead, every linear layer is fp8: 401.647e9 x 1 B + 4.207e9 x 2 B
    assert requirements(model, "fp8", 16384, 8).weights_gib == pytest.approx(381.90, abs=0.01)
    assert bf16.weights_gib == pytest.approx(755.96, abs=0.01)
    assert fp8.kv_cache_gib == pytest.approx(63.0)  # 504 KiB x 16384 x 8
    fp8_layout = layout(fp8, 80, 8)
    assert (fp8_layout.min_gpus, fp8_layout.nodes) == (8, 1)  # (453.8+63)/8+2 = 66.6 <= 72
    bf16_layout = layout(bf16, 80, 8)
    # (756+63) GiB over 8 GPUs x 70 GiB room per node = 1.46 -> 2 nodes
    assert (bf16_layout.nodes, bf16_layout.min_gpus, bf16_layout.tensor_parallel) == (2, 16, 8)
    assert layout(bf16, 141, 8).nodes == 1  # H200: (819)/8+2 = 104.4 <= 126.9


def test_an_int4_checkpoint_keeps_embeddings_and_output_in_bf16() -> None:
    model = resolve("llama3.1-8b-instruct").model
    # AWQ: 6.979e9 linear parameters x (0.5 + 2.5/128) B = 3.626e9 B, and the embedding, output layer
    # and norms (8.030e9 - 6.979e9 = 1.051e9) x 2 B = 2.102e9 B: 5.728e9 B = 5.33 GiB (not 8.03e9 x 0.5 B = 3.7)
    assert requirements(model, "int4", 8192, 1).weights_gib == pytest.approx(5.334, abs=1e-3)


def test_no_layout_on_an_instance_too_small() -> None:
    req = requirements(resolve("llama3.1-70b-instruct").model, "bf16", 8192, 16)
    assert layout(req, 24, 1) is None  # one L4 cannot hold 131 GiB


def test_tensor_parallel_degree_must_divide_the_heads() -> None:
    odd = LlamaModel("odd", "x/odd", dim=3072, n_layers=4, n_heads=12, n_kv_heads=4, ffn_hidden=8192, vocab_size=1000, tied_embeddings=False, max_context=4096)
    assert [d for d in (1, 2, 4, 8) if valid_tensor_parallel(odd, d)] == [1, 2, 4]
    req = requirements(odd, "bf16", 4096, 1)
    # an 8-GPU instance still runs it, with the largest degree the heads allow
    assert layout(req, 24, 8).tensor_parallel == 4
