"""Where each architecture family keeps its parts.

Every supported causal LM is an embedding, a list of decoder blocks on the residual
stream, a final norm and an unembedding. An adapter only *names* those parts, and inside
a block the modules behind every runner site (attention and MLP contributions, MLP
neurons, attention weights, per-head outputs); the engine then drives the unmodified
Hugging Face modules, so numbers match HF's own forward by construction.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

from .errors import UnsupportedArchitectureError


@dataclass(frozen=True)
class ArchitectureAdapter:
    """Attribute paths of one architecture family, relative to the CausalLM model."""

    family: str
    body: str  # the base model holding the blocks, e.g. "model"
    blocks: str  # the ModuleList attribute on the body, e.g. "layers"
    final_norm: str  # attribute on the body
    attention: str  # on a block: module whose output[0] is the attention contribution
    mlp: str  # on a block: module whose output is the MLP contribution
    neurons: str  # on a block: module whose *input* is the MLP neuron activations
    attn_weights: str  # on a block: attention module returning (output, weights [batch, heads, q, k])
    heads: str  # on a block: the attention output projection, whose *input* is the heads' outputs, concatenated

    def body_module(self, model: nn.Module) -> nn.Module:
        return getattr(model, self.body)

    def block_list(self, model: nn.Module) -> nn.ModuleList:
        return getattr(self.body_module(model), self.blocks)

    def set_block_list(self, model: nn.Module, blocks: nn.ModuleList) -> None:
        setattr(self.body_module(model), self.blocks, blocks)

    def final_norm_module(self, model: nn.Module) -> nn.Module:
        return getattr(self.body_module(model), self.final_norm)

    def unembedding_module(self, model: nn.Module) -> nn.Module:
        """HF's own accessor: the attribute's name differs between versions (GPT-NeoX's
        ``embed_out`` became ``lm_head`` in transformers 5.13)."""
        return model.get_output_embeddings()

    def unembed(self, model: nn.Module, normed: torch.Tensor) -> torch.Tensor:
        """Logits from final-normed residual states, with the family's softcap if any."""
        logits = self.unembedding_module(model)(normed)
        softcap = getattr(model.config, "final_logit_softcapping", None)
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    def attention_module(self, block: nn.Module) -> nn.Module:
        """The module of ``block`` that returns ``(attn_output, attn_weights)``."""
        return self.submodule(block, self.attn_weights)

    def output_projection(self, block: nn.Module) -> nn.Module:
        """The attention output projection of ``block``: splitting its input gives each head's output."""
        return self.submodule(block, self.heads)

    def submodule(self, block: nn.Module, path: str) -> nn.Module:
        module = block
        for part in path.split("."):
            module = getattr(module, part)
        return module


_LLAMA_LIKE = dict(
    body="model",
    blocks="layers",
    final_norm="norm",
    attention="self_attn",
    mlp="mlp",
    neurons="mlp.down_proj",
    attn_weights="self_attn",
    heads="self_attn.o_proj",
)

ADAPTERS: dict[str, ArchitectureAdapter] = {
    "llama": ArchitectureAdapter(family="llama", **_LLAMA_LIKE),
    "mistral": ArchitectureAdapter(family="mistral", **_LLAMA_LIKE),
    "qwen2": ArchitectureAdapter(family="qwen2", **_LLAMA_LIKE),
    "qwen3": ArchitectureAdapter(family="qwen3", **_LLAMA_LIKE),
    "gemma": ArchitectureAdapter(family="gemma", **_LLAMA_LIKE),
    # Gemma2 normalises each sub-layer's output before adding it to the residual stream:
    # the contribution is the output of that post-norm.
    "gemma2": ArchitectureAdapter(
        family="gemma2",
        **{**_LLAMA_LIKE, "attention": "post_attention_layernorm", "mlp": "post_feedforward_layernorm"},
    ),
    "phi3": ArchitectureAdapter(family="phi3", **_LLAMA_LIKE),
    "gpt2": ArchitectureAdapter(
        family="gpt2",
        body="transformer",
        blocks="h",
        final_norm="ln_f",
        attention="attn",
        mlp="mlp",
        neurons="mlp.c_proj",
        attn_weights="attn",
        heads="attn.c_proj",
    ),
    "gpt_neox": ArchitectureAdapter(
        family="gpt_neox",
        body="gpt_neox",
        blocks="layers",
        final_norm="final_layer_norm",
        attention="attention",
        mlp="mlp",
        neurons="mlp.dense_4h_to_h",
        attn_weights="attention",
        heads="attention.dense",
    ),
}


# Every name a decoder block has taken its KV cache under, newest first (transformers 5.25
# renamed ``past_key_values`` to ``cache``; GPT-NeoX says ``layer_past``).
CACHE_KEYWORDS = ("cache", "past_key_values", "past_key_value", "layer_past")


def cache_keyword(block: nn.Module) -> str:
    """The keyword under which this block's forward takes a KV cache, read from the installed
    transformers' signature (so a rename is followed, not guessed per family)."""
    parameters = inspect.signature(type(block).forward).parameters
    for name in CACHE_KEYWORDS:
        if name in parameters:
            return name
    raise UnsupportedArchitectureError(
        f"{type(block).__name__}.forward takes no KV cache under any known name ({', '.join(CACHE_KEYWORDS)}).")


def linear_modules(block: nn.Module) -> dict[str, nn.Module]:
    """Every weight matrix of a block by its path in the block: ``nn.Linear`` and GPT-2's ``Conv1D``."""
    return {name: module for name, module in block.named_modules()
            if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"}


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """A linear module's weight as ``[out, in]`` (GPT-2's ``Conv1D`` stores ``[in, out]``): a view,
    so writing into it writes the parameter."""
    return module.weight if isinstance(module, nn.Linear) else module.weight.T


def supported_families() -> list[str]:
    return sorted(ADAPTERS)


def adapter_for_config(config) -> ArchitectureAdapter:
    """The adapter for a config, or one sentence naming what is not supported."""
    model_type = getattr(config, "model_type", None)
    if model_type in ADAPTERS:
        return ADAPTERS[model_type]
    architecture = (getattr(config, "architectures", None) or [model_type or type(config).__name__])[0]
    raise UnsupportedArchitectureError(
        f"{architecture} (model_type {model_type!r}) is not supported yet; supported families: "
        f"{', '.join(supported_families())}."
    )


def adapter_for_model(model: nn.Module) -> ArchitectureAdapter:
    adapter = adapter_for_config(model.config)
    if model.get_output_embeddings() is None or not hasattr(model, adapter.body):
        raise UnsupportedArchitectureError(
            f"{type(model).__name__} is not a causal LM with an unembedding; load it with "
            "AutoModelForCausalLM."
        )
    return adapter
