"""The subject: a loaded model, its tokenizer, and its whole state: the layer program it
currently runs, every intervention (active, in order, or parked), and every cache an
analysis keeps.

Everything else in neuro_magics takes a Subject. It owns every mutation we make to the HF
model (the block list and the config entries that must follow it; hooks and weight writes of
interventions; the attention implementation) and can always restore the original exactly.
Every weight write through the Subject moves its *weight version*, and a cache entry is only
found again under the program, interventions and weight version it was computed with; a user
who edits weights in place says so with ``subject.touch()``. One re-entrant lock serialises
everything that runs or changes the model: with ipykernel 7 a widget's comm messages are
handled on a subshell thread, beside the running cell.
"""

from __future__ import annotations

import contextlib
import functools
import html
import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from .adapters import ArchitectureAdapter, adapter_for_model, linear_modules
from .errors import NeuroMagicsError
from .interventions import Intervention, register
from .programs import LayerProgram, block_list_for

_MISSING = object()
#: Entries a cache namespace keeps (least recently used dropped first) unless told otherwise.
CACHE_ENTRIES = 8

_Function = TypeVar("_Function", bound=Callable)


def with_lock(function: _Function) -> _Function:
    """Run ``function(subject, ...)`` (or a Subject method) holding ``subject.lock``, so that
    no other thread runs or changes the model meanwhile."""

    @functools.wraps(function)
    def locked(*args, **kwargs):
        subject = args[0] if args else kwargs["subject"]
        with subject.lock:
            if subject.released:
                raise NeuroMagicsError(
                    f"{subject.name} was unloaded (%unload_model): load it again with %load_model.")
            return function(*args, **kwargs)

    return locked  # type: ignore[return-value]


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
    interventions: tuple[str, ...]
    parked: tuple[str, ...] = ()
    fidelity: str | None = None

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
            *[("interventions" if k == 0 else "", f"{k + 1}. {line}") for k, line in enumerate(self.interventions)],
            *([] if self.interventions else [("interventions", "none")]),
            *[("parked" if k == 0 else "", f"{k + 1}. {line} (off)") for k, line in enumerate(self.parked)],
            *([("at load", self.fidelity)] if self.fidelity else []),
        ]


class Subject:
    """A causal LM under study.

    ``model`` is the unmodified HF model, ``tokenizer`` its tokenizer (never changed by us),
    ``program`` the layer program every forward (HF's own, ``generate``, and our runner)
    currently runs, ``interventions`` the active ablations, steering vectors, ... in the
    order they were installed, ``parked`` the interventions switched off but kept (adapters
    after ``adapters_off``), ``weight_version`` the number every weight write moves, and
    ``lock`` the re-entrant lock every engine entry point that runs or changes the model holds.
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
        # Each with its hook handles, the (parameter, value it replaced) pairs of its weight change,
        # and the weight versions before and after its write (None without a weight change).
        self._interventions: list[tuple[Intervention, list, list, tuple[int, int] | None]] = []
        self._parked: list[Intervention] = []
        self._version_numbers = itertools.count(1)
        self._weight_version = 0
        self._caches: dict[str, OrderedDict] = {}
        self.lock = threading.RLock()
        self.released = False
        self.fidelity = None  # core.fidelity.Fidelity, set by load_model: does our runner match HF's forward?

    def release(self) -> None:
        """Drop the model, its tokenizer and every cache (waiting for any running action), so the
        memory is freed even where an old output or a widget still refers to this Subject; every
        later action on it says the model was unloaded."""
        with self.lock:
            self.released = True
            self.model = self.tokenizer = self.blocks = None
            self._interventions, self._parked = [], []
            self._caches.clear()

    # -- weight version and caches ----------------------------------------------------

    @property
    def weight_version(self) -> int:
        """A number that changes with every weight write through the Subject (an edit, a
        pruning, a merged adapter, ``touch()``); taking off the last write puts it back,
        since the restore is bit-identical."""
        return self._weight_version

    @with_lock
    def touch(self) -> int:
        """Say that you changed weights in place yourself (``W.data[...] = ...``), so no cache
        returns numbers of the weights before; returns the new weight version."""
        self._weight_version = next(self._version_numbers)
        return self._weight_version

    @with_lock
    def cache(self, namespace: str, key: Hashable, compute: Callable[[], Any] | None = None, *,
              model_state: bool = True, entries: int = CACHE_ENTRIES) -> Any:
        """``compute()``, remembered in ``namespace`` under ``key`` and (with ``model_state``)
        the model's state: program, interventions and weight version, so an entry is never
        found for a model that computes differently. The ``entries`` most recently used are
        kept; ``reset`` and ``release`` clear them all. Without ``compute``: the remembered
        value, or None."""
        if model_state:
            key = (key, self.state_key())
        remembered = self._caches.setdefault(namespace, OrderedDict())
        if key in remembered:
            remembered.move_to_end(key)
            return remembered[key]
        if compute is None:
            return None
        value = compute()
        remembered[key] = value
        while len(remembered) > entries:
            remembered.popitem(last=False)
        return value

    def cached(self, namespace: str) -> int:
        """How many entries ``namespace`` holds (0 after ``reset``)."""
        return len(self._caches.get(namespace, ()))

    def state_key(self) -> tuple:
        """What the model computes with, as a hashable value: the program, every active
        intervention's spec and the weight version."""
        specs = json.dumps([intervention.spec for intervention in self.interventions], sort_keys=True, default=str)
        return tuple(self._program.steps), specs, self._weight_version

    def clear_caches(self) -> None:
        """Forget every cached value (``reset`` and ``release`` do it too)."""
        with self.lock:
            self._caches.clear()

    # -- attention ----------------------------------------------------------------------

    @contextlib.contextmanager
    def attention_implementation(self, name: str) -> Iterator[None]:
        """Run HF's ``name`` attention ("eager" forms the attention weights SDPA and flash never
        materialise) inside the block, masks included (build inputs inside it); the model's own
        implementation comes back after, also on an exception or interrupt. Holds the lock."""
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        if name != "eager" and name not in ALL_ATTENTION_FUNCTIONS:
            raise NeuroMagicsError(f"No attention implementation {name!r}: use 'eager' or one of "
                                   f"{', '.join(sorted(k for k in ALL_ATTENTION_FUNCTIONS if '|' not in k))}.")
        with self.lock:
            config = self.model.config
            previous = config._attn_implementation
            config._attn_implementation = name
            try:
                yield
            finally:
                config._attn_implementation = previous

    # -- layer programs -------------------------------------------------------------

    @property
    def program(self) -> LayerProgram:
        return self._program

    @with_lock
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

    @with_lock
    def reset(self) -> None:
        """Restore the original blocks and config exactly and forget every cache (interventions
        stay: see ``remove_interventions``)."""
        self._install(LayerProgram.identity(self.n_layers))
        self._caches.clear()

    @contextlib.contextmanager
    def program_applied(self, program: LayerProgram | Sequence[int]) -> Iterator[LayerProgram]:
        """Run a block of code under ``program``; the previous program comes back after,
        also on an exception or interrupt. Holds the lock throughout."""
        with self.lock:
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

    # -- interventions --------------------------------------------------------------

    @property
    def interventions(self) -> tuple[Intervention, ...]:
        """The active interventions, oldest first."""
        return tuple(entry[0] for entry in self._interventions)

    @property
    def parked(self) -> tuple[Intervention, ...]:
        """Interventions switched off but kept (``unpark`` installs one again), oldest first.
        They change nothing the model computes; %model and every result's metadata list them."""
        return tuple(self._parked)

    @with_lock
    def add_intervention(self, intervention: Intervention) -> None:
        """Register ``intervention``'s hooks and write its weight change (all or none), and keep
        it active until removed. Parameters it rewrites are kept aside first."""
        if any(intervention is active for active in self.interventions):
            raise NeuroMagicsError(f"{intervention!r} is already active; reset it before installing it again.")
        if any(intervention is parked for parked in self._parked):
            raise NeuroMagicsError(f"{intervention!r} is parked; switch it on again (unpark) instead.")
        own = {id(module) for module in (*self.model.modules(), *self.blocks.modules())}
        own_parameters = {id(p) for p in (*self.model.parameters(), *self.blocks.parameters())}
        foreign_weights = intervention.weights is not None and any(
            id(p) not in own_parameters for p in intervention.weights.parameters)
        if foreign_weights or any(id(hook.module) not in own for hook in intervention.hooks):
            raise NeuroMagicsError(f"{intervention!r} was built for another model; build it again for {self.name}.")
        if intervention.weights is not None and any(p.device.type == "meta" for p in intervention.weights.parameters):
            raise NeuroMagicsError(f"{intervention!r} rewrites weights that accelerate keeps offloaded (device_map), "
                                   "where a write would be lost; load the model without offloading to install it.")
        handles = register(intervention.hooks)
        try:
            originals = _write_weights(intervention)
        except BaseException:
            for handle in handles:
                handle.remove()
            raise
        versions = None
        if originals:
            versions = (self._weight_version, next(self._version_numbers))
            self._weight_version = versions[1]
        self._interventions.append((intervention, handles, originals, versions))

    @with_lock
    def remove_intervention(self, intervention: Intervention) -> None:
        """Remove one active intervention exactly (the others keep their order). Its kept-aside
        weights are copied back; weight changes installed after it are taken off first and
        written again afterwards, so each restore is bit-identical. Taking off the last weight
        write, with nothing written since, puts the weight version back to what it was."""
        index = next((k for k, entry in enumerate(self._interventions) if entry[0] is intervention), None)
        if index is None:
            raise NeuroMagicsError(f"{intervention!r} is not active on {self.name}.")
        later = [entry for entry in self._interventions[index + 1:] if entry[2]] if self._interventions[index][2] else []
        with torch.no_grad():
            for _, _, originals, _ in reversed(later):
                _restore_weights(originals)
            _, handles, originals, versions = self._interventions.pop(index)
            for handle in handles:
                handle.remove()
            _restore_weights(originals)
            for position, (active, active_handles, _, _) in enumerate(self._interventions):
                if any(active is entry[0] for entry in later):
                    self._interventions[position] = (active, active_handles, _write_weights(active), None)
        if versions is not None:
            untouched = not later and self._weight_version == versions[1]
            self._weight_version = versions[0] if untouched else next(self._version_numbers)
            for position, entry in enumerate(self._interventions):
                if entry[3] is None and entry[2]:  # rewritten: taking it off gives weights never numbered
                    self._interventions[position] = (*entry[:3], (next(self._version_numbers), self._weight_version))

    @with_lock
    def remove_interventions(self, kind: str | None = None) -> int:
        """Remove the interventions of ``kind`` (all when None), active ones newest first and
        parked ones alike; returns how many."""
        doomed = [i for i in reversed(self.interventions) if kind is None or i.kind == kind]
        for intervention in doomed:
            self.remove_intervention(intervention)
        parked = [i for i in self._parked if kind is None or i.kind == kind]
        self._parked = [i for i in self._parked if not (kind is None or i.kind == kind)]
        return len(doomed) + len(parked)

    @with_lock
    def park(self, intervention: Intervention) -> None:
        """Switch an active intervention off (removed exactly) but keep it, listed as parked,
        until ``unpark`` installs it again or ``remove_interventions`` drops it."""
        self.remove_intervention(intervention)
        self._parked.append(intervention)

    @with_lock
    def unpark(self, intervention: Intervention) -> None:
        """Install a parked intervention again (after the active ones)."""
        index = next((k for k, parked in enumerate(self._parked) if parked is intervention), None)
        if index is None:
            raise NeuroMagicsError(f"{intervention!r} is not parked on {self.name}.")
        self._parked.pop(index)
        try:
            self.add_intervention(intervention)
        except BaseException:
            self._parked.insert(index, intervention)
            raise

    @with_lock
    def set_state(self, program: LayerProgram, interventions: Sequence[Intervention],
                  parked: Sequence[Intervention] | None = None) -> None:
        """Run ``program`` with exactly ``interventions`` active, in that order, and ``parked``
        kept off (None: the parked ones stay as they are); what replaying a result does. All or
        nothing: a failure puts the previous state back."""
        previous_program, previous_interventions = self._program, self.interventions
        previous_parked = list(self._parked)
        parked = previous_parked if parked is None else parked
        try:
            self.remove_interventions()
            self.set_program(program)
            for intervention in interventions:
                self.add_intervention(intervention)
            self._parked = list(parked)
        except BaseException:
            self.remove_interventions()
            self._install(previous_program)
            for intervention in previous_interventions:
                self.add_intervention(intervention)
            self._parked = list(previous_parked)
            raise

    # -- facts ----------------------------------------------------------------------

    def block_matrices(self) -> dict[str, nn.Module]:
        """Every weight matrix of every original block, named ``"<block>.<path>"`` (e.g.
        ``"3.mlp.down_proj"``): what pruning, quantizing, LoRA and model diffs address."""
        return {f"{index}.{name}": module for index, block in enumerate(self.blocks)
                for name, module in linear_modules(block).items()}

    @property
    def device(self) -> torch.device:
        """Where the unembedding runs (accelerate's execution device when it keeps it offloaded)."""
        module = self.adapter.unembedding_module(self.model)
        if module.weight.device.type == "meta":
            return torch.device(module._hf_hook.execution_device)
        return module.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.adapter.unembedding_module(self.model).weight.dtype

    @property
    def d_model(self) -> int:
        return self.adapter.unembedding_module(self.model).weight.shape[1]

    @property
    def vocab_size(self) -> int:
        return self.adapter.unembedding_module(self.model).weight.shape[0]

    @property
    def n_heads(self) -> int:
        """Query heads per attention layer."""
        if self._n_heads is None:
            raise NeuroMagicsError(f"{type(self.model).__name__} does not say how many attention heads it has.")
        return self._n_heads

    @property
    def _n_heads(self) -> int | None:
        heads = _first_attr(self.model.config, "num_attention_heads", "n_head")
        return None if heads is None else int(heads)

    @property
    def n_kv_heads(self) -> int:
        """Key/value heads per attention layer (fewer than ``n_heads`` with grouped-query attention)."""
        return int(_first_attr(self.model.config, "num_key_value_heads") or self.n_heads)

    @property
    def head_dim(self) -> int:
        """Width of one head (the config's ``head_dim`` where it has one: Gemma's is not d_model / heads)."""
        return int(_first_attr(self.model.config, "head_dim") or self.d_model // self.n_heads)

    @property
    def context_length(self) -> int | None:
        """The longest sequence the model's positions cover (None if the config does not say)."""
        limit = _first_attr(self.model.config, "max_position_embeddings", "n_positions", "n_ctx")
        return None if limit is None else int(limit)

    @property
    def eos_token_ids(self) -> list[int]:
        """Tokens that end a generation: the generation config's, else the tokenizer's."""
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if eos is None and self.tokenizer is not None:
            eos = self.tokenizer.eos_token_id
        return [] if eos is None else [int(eos)] if isinstance(eos, int) else [int(e) for e in eos]

    @property
    def pad_token_id(self) -> int:
        """The id batches are padded with: the tokenizer's pad token, else its end-of-sequence
        token, else the generation config's, else 0 (padding is masked out, so any id works)."""
        candidates = [getattr(self.tokenizer, "pad_token_id", None), getattr(self.tokenizer, "eos_token_id", None),
                      getattr(getattr(self.model, "generation_config", None), "pad_token_id", None),
                      *self.eos_token_ids]
        return next((int(c) for c in candidates if isinstance(c, int)), 0)

    def token_pieces(self, ids: Sequence[int]) -> list[str]:
        """Each token id as the text it stands for."""
        return [self.tokenizer.decode([int(i)]) for i in ids]

    def summary(self) -> ModelSummary:
        n_heads = self._n_heads
        parameters = {id(p): p for p in self.model.parameters()}
        buffers = {id(b): b for b in self.model.buffers()}
        memory = sum(t.numel() * t.element_size() for t in [*parameters.values(), *buffers.values()])
        return ModelSummary(
            name=self.name,
            architecture=type(self.model).__name__,
            family=self.adapter.family,
            n_layers=self.n_layers,
            n_heads=n_heads,
            n_kv_heads=None if n_heads is None else self.n_kv_heads,
            d_model=self.d_model,
            vocab_size=self.vocab_size,
            n_parameters=sum(p.numel() for p in parameters.values()),
            device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."),
            memory_bytes=memory,
            program=self._program,
            interventions=tuple(repr(i) for i in self.interventions),
            parked=tuple(repr(i) for i in self._parked),
            fidelity=None if self.fidelity is None else self.fidelity.line(),
        )

    # -- text -----------------------------------------------------------------------

    def encode(self, prompts: str | Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenize one prompt or a batch, left-padded (``left_padded``) onto the model's device:
        ``input_ids`` and ``attention_mask``. The padding is done here, so the user's tokenizer
        (pad token, padding side) is never changed."""
        if self.tokenizer is None:
            raise NeuroMagicsError("This subject has no tokenizer; pass token ids instead of text.")
        batch = [prompts] if isinstance(prompts, str) else list(prompts)
        if not batch or any(not p for p in batch):
            raise NeuroMagicsError("Empty prompt: give some text to run the model on.")
        input_ids, attention_mask = self.left_padded(self.tokenizer(batch, padding=False)["input_ids"],
                                                     what="The prompt")
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def check_context(self, n_tokens: int, *, room: int = 0, what: str = "The text", advice: str = "Shorten it.") -> None:
        """Refuse, in one line, ``n_tokens`` (plus ``room`` still to generate) over the model's context."""
        limit = self.context_length
        if limit is not None and n_tokens + room > limit:
            more = f" and {room} more to generate" if room else ""
            raise NeuroMagicsError(f"{what} is {n_tokens} tokens{more}; this model's context is {limit} tokens. {advice}")

    def left_padded(self, rows: Sequence[Sequence[int]], *, room: int = 0, what: str = "The text",
                    advice: str = "Shorten it.") -> tuple[torch.Tensor, torch.Tensor]:
        """Token-id rows as one batch ``(input_ids, attention_mask)`` on the model's device, each row
        right-aligned after ``pad_token_id`` padding (mask 0), so every row's last token is at the
        last position and generation continues each row from there. Refused in one line, before
        any work, when the longest row plus ``room`` (tokens still to generate) is over the
        model's context; ``what`` names the rows and ``advice`` what to do."""
        width = max((len(row) for row in rows), default=0)
        self.check_context(width, room=room, what=what, advice=advice)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for index, row in enumerate(rows):
            if len(row):
                input_ids[index, width - len(row):] = torch.as_tensor(list(row), dtype=torch.long)
                attention_mask[index, width - len(row):] = 1
        return input_ids.to(self.device), attention_mask.to(self.device)

    @with_lock
    @torch.no_grad()
    def generate(self, prompt: str, max_new_tokens: int = 20, **generate_kwargs) -> str:
        """Greedy continuation of ``prompt`` under the current program (KV cache on)."""
        encoded = self.encode(prompt)
        generate_kwargs.setdefault("do_sample", False)
        output = self.model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.pad_token_id,
            **generate_kwargs,
        )
        return self.tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)

    # -- display --------------------------------------------------------------------

    def __repr__(self) -> str:
        if self.released:
            return f"{self.name} (unloaded)"
        rows = self.summary().rows()
        width = max(len(key) for key, _ in rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)

    def _repr_html_(self) -> str:
        if self.released:
            return f"<p>{html.escape(repr(self))}</p>"
        cells = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self.summary().rows()
        )
        return f"<table class='neuro-magics-model'>{cells}</table>"


@torch.no_grad()
def _write_weights(intervention: Intervention) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """Keep the parameters ``intervention`` rewrites aside, then let it write them; a failure
    half-way copies them back. Returns the kept values (empty without a weight change)."""
    change = intervention.weights
    if change is None:
        return []
    originals = [(p, p.detach().clone()) for p in {id(p): p for p in change.parameters}.values()]
    try:
        change.apply()
    except BaseException:
        _restore_weights(originals)
        raise
    return originals


@torch.no_grad()
def _restore_weights(originals: list[tuple[nn.Parameter, torch.Tensor]]) -> None:
    for parameter, value in originals:
        parameter.copy_(value)


def _first_attr(config, *names: str):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None
