"""Tiny randomly initialised models of every supported family, built from configs."""

from __future__ import annotations

import torch
from transformers import (
    AutoModelForCausalLM,
    GemmaConfig,
    Gemma2Config,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    Phi3Config,
    Qwen2Config,
    Qwen3Config,
)

VOCAB = 128
_COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
               num_attention_heads=4, max_position_embeddings=128)

CONFIGS = {
    "llama": lambda: LlamaConfig(**_COMMON, num_key_value_heads=2),
    "mistral": lambda: MistralConfig(**_COMMON, num_key_value_heads=2, sliding_window=None),
    "qwen2": lambda: Qwen2Config(**_COMMON, num_key_value_heads=2, use_sliding_window=True,
                                 sliding_window=6, max_window_layers=2),
    "qwen3": lambda: Qwen3Config(**_COMMON, num_key_value_heads=2, head_dim=8),
    "gemma": lambda: GemmaConfig(**_COMMON, num_key_value_heads=1, head_dim=8),
    "gemma2": lambda: Gemma2Config(**_COMMON, num_key_value_heads=2, head_dim=8, sliding_window=6,
                                   final_logit_softcapping=5.0, attn_logit_softcapping=10.0),
    "phi3": lambda: Phi3Config(**_COMMON, num_key_value_heads=2, pad_token_id=0),
    "gpt2": lambda: GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=4, n_head=4, n_positions=128),
    "gpt_neox": lambda: GPTNeoXConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=4, num_attention_heads=4,
                                      max_position_embeddings=128, rotary_pct=0.5),
}
FAMILIES = sorted(CONFIGS)


def tiny_model(family: str, attn: str = "eager", seed: int = 0):
    torch.manual_seed(seed)
    config = CONFIGS[family]()
    config._attn_implementation = attn
    model = AutoModelForCausalLM.from_config(config, attn_implementation=attn).eval()
    return model


def tiny_tokenizer():
    """A character-level fast tokenizer whose ids are exactly the tiny vocabularies'."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)]
    # every id of the tiny vocabularies decodes to one character (a random model generates any id)
    chars += [chr(0xC0 + i) for i in range(VOCAB - 3 - len(chars))]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )
