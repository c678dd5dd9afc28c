"""The subject: a loaded model, its tokenizer, and the layer program it currently runs.

Everything else in neuro_magics takes a Subject. It owns the only mutation we make to
the HF model (the block list and the config entries that must follow it) and can
always restore the original exactly.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .adapters import ArchitectureAdapter, adapter_for_model
from .errors import NeuroMagicsError
from .programs import LayerProgram, block_list_for

_MISSING = object()


@dataclass(frozen=True)
class ModelSummary:
    """What %model shows: the facts a user checks before an experiment."""

    name: str
    architecture: str
    family: str
    n_layers: int
    n_heads: int | None
    n_kv_heads: int | None
    d_model: int
    vocab_size: int
    n_parameters: int
    device: str
    dtype: str
    memory_bytes: int
    program: LayerProgram

    def rows(self) -> list[tuple[str, str]]:
        heads = "?" if self.n_heads is None else str(self.n_heads)
        if self.n_kv_heads is not None and self.n_kv_heads != self.n_heads:
            heads += f" ({self.n_kv_heads} kv heads)"
        program = "identity" if self.program.is_identity else f"{self.program} ({len(self.program)} steps)"
        return [
            ("model", self.name),
            ("architecture", f"{self.architecture} ({self.family})"),
            ("layers", str(self.n_layers)),
            ("heads", heads),
            ("d_model", str(self.d_model)),
            ("vocab", f"{self.vocab_size:,}"),
            ("parameters", f"{self.n_parameters:,} ({self.n_parameters / 1e6:.1f} M)"),
            ("device", self.device),
            ("dtype", self.dtype),
            ("memory", f"{self.memory_bytes / 2**20:.1f} MiB"),
            ("layer program", program),
        ]


class Subject:
    """A causal LM under study.

    ``model`` is the unmodified HF model, ``tokenizer`` its tokenizer, ``program`` the
    layer program every forward (HF's own, ``generate``, and our runner) currently runs.
    """

    def __init__(self, model: nn.Module, tokenizer=None, name: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name or getattr(model.config, "name_or_path", None) or type(model).__name__
        self.adapter: ArchitectureAdapter = adapter_for_model(model)
        self.blocks: nn.ModuleList = self.adapter.block_list(model)
        self.n_layers = len(self.blocks)
        self._original_config = {
            key: getattr(model.config, key, _MISSING) for key in ("num_hidden_layers", "layer_types")
        }
        self._program = LayerProgram.identity(self.n_layers)

    # -- layer programs -------------------------------------------------------------

    @property
    def program(self) -> LayerProgram:
        return self._program

    def set_program(self, program: LayerProgram | Sequence[int]) -> LayerProgram:
        """Run ``program`` from now on (zero-copy). Returns the previous program."""
        if not isinstance(program, LayerProgram):
            program = LayerProgram(tuple(program), self.n_layers)
        elif program.n_layers != self.n_layers:
            raise NeuroMagicsError(
                f"That program was made for a {program.n_layers}-layer model; this one has {self.n_layers}."
            )
        previous = self._program
        self._install(program)
        return previous

    def reset(self) -> None:
        """Restore the original blocks and config exactly."""
        self._install(LayerProgram.identity(self.n_layers))

    @contextlib.contextmanager
    def program_applied(self, program: LayerProgram | Sequence[int]) -> Iterator[LayerProgram]:
        """Run a block of code under ``program``; the previous program comes back after,
        also on an exception or interrupt."""
        previous = self.set_program(program)
        try:
            yield self._program
        finally:
            self._install(previous)

    def _install(self, program: LayerProgram) -> None:
        config = self.model.config
        if program.is_identity:
            self.adapter.set_block_list(self.model, self.blocks)
            for key, value in self._original_config.items():
                if value is _MISSING:
                    config.__dict__.pop(key, None)
                else:
                    setattr(config, key, value)
        else:
            blocks = block_list_for(self.blocks, program.steps)
            # HF decoder loops run ``layers[:config.num_hidden_layers]`` and pick each
            # position's mask and cache type from ``config.layer_types``: both must follow.
            config.num_hidden_layers = len(program)
            layer_types = self._original_config["layer_types"]
            if layer_types is not _MISSING and layer_types is not None:
                config.layer_types = [layer_types[b] for b in program.steps]
            self.adapter.set_block_list(self.model, blocks)
        self._program = program

    # -- facts ----------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.adapter.unembedding_module(self.model).weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.adapter.unembedding_module(self.model).weight.dtype

    @property
    def d_model(self) -> int:
        return self.adapter.unembedding_module(self.model).weight.shape[1]

    @property
    def vocab_size(self) -> int:
        return self.adapter.unembedding_module(self.model).weight.shape[0]

    def summary(self) -> ModelSummary:
        config = self.model.config
        n_heads = _first_attr(config, "num_attention_heads", "n_head")
        parameters = {id(p): p for p in self.model.parameters()}
        buffers = {id(b): b for b in self.model.buffers()}
        memory = sum(t.numel() * t.element_size() for t in [*parameters.values(), *buffers.values()])
        return ModelSummary(
            name=self.name,
            architecture=type(self.model).__name__,
            family=self.adapter.family,
            n_layers=self.n_layers,
            n_heads=n_heads,
            n_kv_heads=_first_attr(config, "num_key_value_heads") or n_heads,
            d_model=self.d_model,
            vocab_size=self.vocab_size,
            n_parameters=sum(p.numel() for p in parameters.values()),
            device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."),
            memory_bytes=memory,
            program=self._program,
        )

    # -- text -----------------------------------------------------------------------

    def encode(self, prompts: str | Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenize one prompt or a batch (left-padded) onto the model's device."""
        if self.tokenizer is None:
            raise NeuroMagicsError("This subject has no tokenizer; pass token ids instead of text.")
        batch = [prompts] if isinstance(prompts, str) else list(prompts)
        if not batch or any(not p for p in batch):
            raise NeuroMagicsError("Empty prompt: give some text to run the model on.")
        tokenizer = self.tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        encoded = tokenizer(batch, return_tensors="pt", padding=True)
        limit = _context_length(self.model.config)
        if limit is not None and encoded["input_ids"].shape[1] > limit:
            raise NeuroMagicsError(
                f"The prompt is {encoded['input_ids'].shape[1]} tokens; this model's context is "
                f"{limit} tokens. Shorten it."
            )
        return {key: value.to(self.device) for key, value in encoded.items()}

    @torch.no_grad()
    def generate(self, prompt: str, max_new_tokens: int = 20, **generate_kwargs) -> str:
        """Greedy continuation of ``prompt`` under the current program (KV cache on)."""
        encoded = self.encode(prompt)
        generate_kwargs.setdefault("do_sample", False)
        output = self.model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            **generate_kwargs,
        )
        return self.tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)

    # -- display --------------------------------------------------------------------

    def __repr__(self) -> str:
        rows = self.summary().rows()
        width = max(len(key) for key, _ in rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self.summary().rows()
        )
        return f"<table class='neuro-magics-model'>{cells}</table>"


def _first_attr(config, *names: str):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def _context_length(config) -> int | None:
    return _first_attr(config, "max_position_embeddings", "n_positions")
