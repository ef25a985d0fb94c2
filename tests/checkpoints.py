"""A fine-tune's files, as the tests put them in a cloud's storage or on the Hub."""

from __future__ import annotations

import json
from typing import Any


def checkpoint_files(config: dict[str, Any] | None = None, shards: int = 2) -> dict[str, bytes]:
    """A Hugging Face-format checkpoint of Llama 3.2 1B's architecture, as a fine-tune leaves it:
    config, tokenizer, a safetensors index and its shards (a few bytes each: nothing here reads tensors)."""
    config = config or {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    }
    names = [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
    index = {"metadata": {"total_size": 2471645184}, "weight_map": {f"model.layers.{i}.mlp.up_proj.weight": names[i % shards] for i in range(16)}}
    return {
        "config.json": json.dumps(config).encode(),
        "tokenizer.json": b"{}",
        "tokenizer_config.json": b"{}",
        "model.safetensors.index.json": json.dumps(index).encode(),
        **dict.fromkeys(names, b"shard"),
    }
