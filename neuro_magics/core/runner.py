"""The residual-stream runner: every analysis is this plus a schedule.

``prepare`` lets HF's own forward build exactly what it hands each decoder block
(embedding output, masks, rotary tables, position ids) by swapping the blocks for
recorders for one cheap pass. ``run`` then calls the real, unmodified blocks of any
layer program from any step, given the residual state entering it, with edits
(replace / add / zero at a step, site and positions) and captures (which steps and
sites to keep, on which device, in which dtype), on a whole batch at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from .adapters import CACHE_KEYWORDS, cache_keyword
from .errors import NeuroMagicsError
from .interventions import main_output, replacing_output
from .programs import LayerProgram
from .subject import Subject, with_lock

#: Sites a run can capture or edit, each named by the adapter record of every family: the
#: stream entering / leaving a step, the attention and MLP contributions added to it, the MLP
#: neuron activations (input of its down-projection), the per-head attention outputs (input
#: of the attention output projection, seen as ``[batch, tokens, heads, head_dim]``) and the
#: attention weights ``[batch, heads, query, key]`` (capture only; they exist under eager
#: attention alone).
SITES = ("resid_pre", "resid_post", "attn_out", "mlp_out", "neurons", "heads", "attn_weights")


@dataclass
class RunInputs:
    """A tokenized batch plus what HF hands each original block for it."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    embeddings: torch.Tensor  # the residual stream entering step 0
    block_calls: list[tuple[tuple, dict]]  # per original block: (args after hidden, kwargs)

    @property
    def batch_size(self) -> int:
        return self.input_ids.shape[0]

    @property
    def n_tokens(self) -> int:
        return self.input_ids.shape[1]


@dataclass(frozen=True)
class Edit:
    """Change one site (the stream or a contribution to it) at one step, in one index operation.

    The edited cells are ``tensor[rows, positions]`` (``tensor[rows, positions, heads]`` at
    the ``heads`` site); ``None`` means all. Given indices pair up element-wise and
    broadcast as torch advanced indexing does, so one Edit carries a whole batch of cells:
    ``rows=[0, 1, 2], positions=[4, 7, 9]`` edits three cells, ``rows=[0, 1], positions=[4]``
    two. ``value`` broadcasts against the indexed cells, e.g. ``[cells, features]`` for one
    value per cell, or ``[cells, tokens, head_dim]`` for whole heads of several rows.
    """

    step: int
    site: str = "resid_pre"
    op: Literal["replace", "add", "zero"] = "replace"
    value: torch.Tensor | None = None
    positions: Sequence[int] | torch.Tensor | None = None
    rows: Sequence[int] | torch.Tensor | None = None
    heads: Sequence[int] | torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.site not in SITES:
            raise NeuroMagicsError(f"Unknown site {self.site!r}: use one of {', '.join(SITES)}.")
        if self.site == "attn_weights":
            raise NeuroMagicsError("attn_weights can be captured, not edited: edit heads or attn_out instead.")
        if self.heads is not None and self.site != "heads":
            raise NeuroMagicsError(f"heads= selects heads at the heads site, not at {self.site}.")
        if self.op not in ("replace", "add", "zero"):
            raise NeuroMagicsError(f"Unknown edit {self.op!r}: use replace, add or zero.")
        if self.op != "zero" and self.value is None:
            raise NeuroMagicsError(f"A {self.op} edit needs a value.")

    def apply(self, tensor: torch.Tensor) -> torch.Tensor:
        """A new tensor with the edit applied (the input is left untouched)."""
        parts = (self.rows, self.positions, self.heads) if self.site == "heads" else (self.rows, self.positions)
        index = tuple(slice(None) if p is None else torch.as_tensor(p, device=tensor.device) for p in parts)
        edited = tensor.clone()
        if self.op == "zero":
            edited[index] = 0
        else:
            value = self.value.to(device=tensor.device, dtype=tensor.dtype)
            edited[index] = value if self.op == "replace" else edited[index] + value
        return edited


@dataclass(frozen=True)
class Capture:
    """Which activations to keep, and where: CPU and a lower dtype keep memory flat."""

    sites: tuple[str, ...] = ("resid_post",)
    steps: Sequence[int] | None = None  # program positions; None = every step run
    positions: Sequence[int] | None = None  # token (query) positions; None = all
    device: torch.device | str | None = "cpu"
    dtype: torch.dtype | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.sites if s not in SITES]
        if unknown:
            raise NeuroMagicsError(f"Unknown site {unknown[0]!r}: use one of {', '.join(SITES)}.")


@dataclass
class RunOutput:
    resid: torch.Tensor  # residual stream after the last step run
    logits: torch.Tensor | None  # [batch, scored positions, vocab]
    captures: dict[str, torch.Tensor] = field(default_factory=dict)  # site -> [steps, batch, pos, ...]
    captured_steps: tuple[int, ...] = ()
    keys_values: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # step -> (K, V)


class _RecordingDone(Exception):
    """Raised by the last recorder: nothing after the blocks is needed to prepare a run."""


class _CallRecorder(nn.Module):
    """Stands in for a block during ``prepare``: records its call. It hands on a one-element
    tuple, which both bodies that index a block's output (``outputs[0]``: GPT-2 and GPT-NeoX in
    some transformers versions) and bodies that pass it straight to the next block accept; the
    last recorder stops the forward, so the final norm never sees it."""

    def __init__(self, index: int, sink: dict, block: nn.Module, last: bool):
        super().__init__()
        self.index = index
        self.sink = sink
        self.last = last
        for attribute in ("attention_type", "layer_type", "is_sliding", "sliding_window"):
            if hasattr(block, attribute):
                setattr(self, attribute, getattr(block, attribute))

    def forward(self, hidden_states, *args, **kwargs):
        self.sink.setdefault("embeddings", hidden_states)
        self.sink[self.index] = (args, kwargs)
        if self.last:
            raise _RecordingDone
        return (hidden_states,)


def position_ids_for(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as HF's generate computes them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


@with_lock
@torch.no_grad()
def prepare(subject: Subject, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> RunInputs:
    """Record, for a batch, what HF's forward hands every original block."""
    model, adapter = subject.model, subject.adapter
    input_ids = input_ids.to(subject.device)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    attention_mask = attention_mask.to(subject.device)
    position_ids = position_ids_for(attention_mask)
    sink: dict = {}
    last = subject.n_layers - 1
    recorders = nn.ModuleList(_CallRecorder(i, sink, b, i == last) for i, b in enumerate(subject.blocks))
    with subject.program_applied(LayerProgram.identity(subject.n_layers)):
        adapter.set_block_list(model, recorders)
        try:
            adapter.body_module(model)(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
            )
        except _RecordingDone:
            pass
        finally:
            adapter.set_block_list(model, subject.blocks)
    return RunInputs(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        embeddings=sink["embeddings"],
        block_calls=[sink[i] for i in range(subject.n_layers)],
    )


@with_lock
def run(
    subject: Subject,
    inputs: RunInputs,
    *,
    program: LayerProgram | Sequence[int] | None = None,
    start: int = 0,
    stop: int | None = None,
    resid: torch.Tensor | None = None,
    edits: Sequence[Edit] = (),
    capture: Capture | None = None,
    logits_at: Literal["last", "all"] | torch.Tensor | None = "last",
    grad: bool = False,
    record_keys_values: bool = False,
    from_position: int = 0,
    keys_values: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> RunOutput:
    """Run program steps ``start..stop-1`` on ``resid`` (default: the embeddings).

    The loop's step counter is the one iteration tracker: every site hook sits on a module
    of an original block (shared by all its occurrences in the program) and reads the step
    being run from it, so nothing counts calls. ``logits_at`` picks the positions to unembed (only when the run reaches the end of
    the program): ``"last"``, ``"all"``, ``None``, a 1-D tensor of positions, or a
    ``[batch, k]`` tensor of positions per row. Unembedding every position costs more
    than several blocks, so score only what you need.

    ``record_keys_values`` keeps each step's attention keys and values (as the attention
    module hands them to its KV cache). A run whose rows equal such a run before
    ``from_position`` can compute only the positions from there on: pass ``resid`` for
    those positions and the recorded ``keys_values``; each attention then sees the recorded
    keys and values of the earlier positions first (HF's own cache interface), and the
    recorded block inputs (rotary tables, position ids, mask rows) are cut to match.
    """
    steps = tuple(subject.program if program is None else program)
    stop = len(steps) if stop is None else stop
    if not 0 <= start <= stop <= len(steps):
        raise NeuroMagicsError(f"Steps {start}:{stop} are outside this {len(steps)}-step program.")
    if resid is None:
        if start != 0:
            raise NeuroMagicsError("Starting mid-program needs the residual state entering that step.")
        resid = inputs.embeddings
    bad_blocks = [b for b in steps if not 0 <= b < subject.n_layers]
    if bad_blocks:
        raise NeuroMagicsError(f"Block {bad_blocks[0]} is out of range: this model has blocks 0-{subject.n_layers - 1}.")

    by_step: dict[tuple[int, str], list[Edit]] = {}
    for edit in edits:
        by_step.setdefault((edit.step, edit.site), []).append(edit)
    capture_steps = set(range(start, stop) if capture is None or capture.steps is None else capture.steps)
    stored: dict[str, list[torch.Tensor]] = {site: [] for site in (capture.sites if capture else ())}
    captured_steps: list[int] = []
    current = {"step": -1}

    def keep(site: str, tensor: torch.Tensor) -> None:
        if capture is None or site not in stored or current["step"] not in capture_steps:
            return
        if capture.positions is not None:
            positions = list(capture.positions)
            tensor = tensor[:, :, positions] if site == "attn_weights" else tensor[:, positions]
        stored[site].append(tensor.detach().to(device=capture.device, dtype=capture.dtype or tensor.dtype))

    def edited(site: str, tensor: torch.Tensor) -> torch.Tensor:
        for edit in by_step.get((current["step"], site), ()):
            tensor = edit.apply(tensor)
        return tensor

    hooked_sites = {e.site for e in edits} | set(stored)
    with torch.set_grad_enabled(grad), _site_hooks(
        subject, {steps[k] for k in range(start, stop)}, hooked_sites, keep, edited
    ):
        hidden = resid
        cache = None
        if record_keys_values or from_position:
            if from_position and keys_values is None:
                raise NeuroMagicsError("Starting at a later position needs the keys and values of the earlier ones.")
            cache = _StepCache(current, keys_values if from_position else None, from_position)
        for k in range(start, stop):
            current["step"] = k
            args, kwargs = inputs.block_calls[steps[k]]
            if cache is not None:
                if args:
                    raise NeuroMagicsError(
                        f"{subject.adapter.family} blocks take positional inputs: keys and values cannot be passed in.")
                kwargs = _cut_block_inputs(kwargs, from_position, inputs.n_tokens, hidden)
                for name in CACHE_KEYWORDS:  # a recorded `cache=None` must not shadow ours
                    kwargs.pop(name, None)
                kwargs[cache_keyword(subject.blocks[steps[k]])] = cache
            hidden = edited("resid_pre", hidden)
            keep("resid_pre", hidden)
            output = subject.blocks[steps[k]](hidden, *args, **kwargs)
            hidden = main_output(output)
            hidden = edited("resid_post", hidden)
            keep("resid_post", hidden)
            if k in capture_steps and capture is not None:
                captured_steps.append(k)
        logits = None
        if stop == len(steps) and logits_at is not None:
            logits = unembed(subject, hidden, logits_at)

    captures = {site: torch.stack(tensors) for site, tensors in stored.items() if tensors}
    return RunOutput(resid=hidden, logits=logits, captures=captures, captured_steps=tuple(captured_steps),
                     keys_values={} if cache is None or from_position else cache.recorded)


class _StepCache:
    """HF's KV-cache interface, keyed by the runner's step: records each step's keys and
    values, or prepends a recorded run's keys and values of the positions before ``start``."""

    def __init__(self, current: dict, prefix: dict | None, start: int):
        self.current, self.prefix, self.start = current, prefix, start
        self.recorded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int, *args, **kwargs):
        step = self.current["step"]
        if self.prefix is None:
            self.recorded[step] = (keys.detach(), values.detach())
            return keys, values
        old_keys, old_values = self.prefix[step]
        rows = keys.shape[0]
        keys = torch.cat([old_keys[..., : self.start, :].expand(rows, -1, -1, -1), keys], dim=-2)
        values = torch.cat([old_values[..., : self.start, :].expand(rows, -1, -1, -1), values], dim=-2)
        return keys, values


def _cut_block_inputs(kwargs: dict, start: int, n_tokens: int, hidden: torch.Tensor) -> dict:
    """A block's recorded keyword inputs for query positions ``start..`` (keys: all positions)."""
    kwargs = dict(kwargs)
    if not start:
        return kwargs
    for name, value in kwargs.items():
        if name == "position_embeddings" and value is not None:
            kwargs[name] = tuple(t[:, start:] for t in value)
        elif name == "position_ids" and value is not None:
            kwargs[name] = value[:, start:]
        elif name == "cache_position" and value is not None:
            kwargs[name] = value[start:]
    mask = kwargs.get("attention_mask")
    if isinstance(mask, torch.Tensor) and mask.ndim == 4:
        kwargs["attention_mask"] = mask[:, :, start:, :]
    elif mask is None:  # SDPA's implicit causal mask would align queries to the first key: spell it out
        kwargs["attention_mask"] = torch.ones(n_tokens, n_tokens, dtype=torch.bool, device=hidden.device).tril()[
            None, None, start:]
    else:
        raise NeuroMagicsError(f"Cannot start at position {start} with a {type(mask).__name__} attention mask.")
    return kwargs


def unembed(
    subject: Subject, resid: torch.Tensor, positions: Literal["last", "all"] | torch.Tensor = "all"
) -> torch.Tensor:
    """Final norm + unembedding (+ softcap) at the chosen positions: the logit lens."""
    if isinstance(positions, str):
        if positions == "last":
            resid = resid[:, -1:]
        elif positions != "all":
            raise NeuroMagicsError(f"logits_at must be 'last', 'all' or positions, not {positions!r}.")
    elif positions.ndim == 1:
        resid = resid[:, positions.to(resid.device)]
    else:
        index = positions.to(resid.device)
        resid = torch.gather(resid, 1, index[..., None].expand(-1, -1, resid.shape[-1]))
    normed = subject.adapter.final_norm_module(subject.model)(resid)
    return subject.adapter.unembed(subject.model, normed)


@contextlib.contextmanager
def _site_hooks(subject: Subject, blocks: set[int], sites: set[str], keep, edited) -> Iterator[None]:
    """Hooks on the modules behind the sites a run touches, in the blocks it calls. They are
    removed on the way out, also after an exception or interrupt."""
    adapter = subject.adapter
    handles = []
    try:
        for block_index in sorted(blocks):
            block = subject.blocks[block_index]
            if "attn_out" in sites:
                handles.append(adapter.submodule(block, adapter.attention).register_forward_hook(
                    _output_hook("attn_out", keep, edited)))
            if "mlp_out" in sites:
                handles.append(adapter.submodule(block, adapter.mlp).register_forward_hook(
                    _output_hook("mlp_out", keep, edited)))
            if "neurons" in sites:
                handles.append(adapter.submodule(block, adapter.neurons).register_forward_pre_hook(
                    _input_hook("neurons", keep, edited)))
            if "heads" in sites:
                handles.append(adapter.output_projection(block).register_forward_pre_hook(
                    _heads_hook(subject.n_heads, keep, edited)))
            if "attn_weights" in sites:
                handles.append(adapter.attention_module(block).register_forward_hook(_weights_hook(keep)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _output_hook(site: str, keep, edited):
    def edit_and_keep(tensor: torch.Tensor) -> torch.Tensor:
        new = edited(site, tensor)
        keep(site, new)
        return new

    return replacing_output(edit_and_keep)


def _input_hook(site: str, keep, edited):
    def hook(module, args):
        tensor = args[0]
        new = edited(site, tensor)
        keep(site, new)
        return None if new is tensor else (new, *args[1:])

    return hook


def _heads_hook(n_heads: int, keep, edited):
    """The output projection's input, split per head: ``[batch, tokens, heads, head_dim]``."""

    def hook(module, args):
        joined = args[0]
        split = joined.view(*joined.shape[:-1], n_heads, -1)
        new = edited("heads", split)
        keep("heads", new)
        return None if new is split else (new.reshape(joined.shape), *args[1:])

    return hook


def _weights_hook(keep):
    def hook(module, args, output):
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if weights is None:
            raise NeuroMagicsError(
                f"{type(module).__name__} returned no attention weights: capture attn_weights under eager attention."
            )
        keep("attn_weights", weights)

    return hook
