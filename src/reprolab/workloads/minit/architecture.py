"""The Hugging Face architecture of a Mini-T: Llama, Mistral (sliding window) or GPT-2
configs from the params, so that `generate`, PEFT and serving take the model unchanged."""

from __future__ import annotations

from typing import Any


def hf_config(p: Any, tokenizer):
    """The Hugging Face config of a Mini-T with params `p` and this tokenizer."""
    common = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": True,
    }
    if p.arch == "gpt2":
        from transformers import GPT2Config

        return GPT2Config(
            n_positions=p.block_size,
            n_embd=p.n_embd,
            n_layer=p.n_layer,
            n_head=p.n_head,
            n_inner=int(p.mlp_ratio * p.n_embd),
            resid_pdrop=p.dropout,
            embd_pdrop=p.dropout,
            attn_pdrop=p.dropout,
            **common,
        )
    llama_like = {
        "hidden_size": p.n_embd,
        # SwiGLU has three matrices: 2/3 of mlp_ratio keeps the parameter count of a GELU MLP
        "intermediate_size": max(8, round(p.mlp_ratio * p.n_embd * 2 / 3 / 8) * 8),
        "num_hidden_layers": p.n_layer,
        "num_attention_heads": p.n_head,
        "num_key_value_heads": p.n_head,
        "attention_dropout": p.dropout,
        **common,
    }
    if p.arch == "mistral":
        from transformers import MistralConfig

        # attention sees at most block_size tokens back, as in training; generation can run
        # longer than the training context (RoPE positions are relative)
        return MistralConfig(
            sliding_window=p.block_size, max_position_embeddings=32 * p.block_size, **llama_like
        )
    from transformers import LlamaConfig

    return LlamaConfig(max_position_embeddings=p.block_size, **llama_like)


def build_net(config):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(config)
