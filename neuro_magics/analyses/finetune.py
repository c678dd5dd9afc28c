"""%finetune: small LoRA fine-tunes, kept as an intervention on the Subject.

A LoRA adapter (Hu et al. 2021) adds ``scaling * B (A dropout(x))`` to the output of chosen
linear modules. Here it is a forward hook on each ORIGINAL module, with A and B held by the
adapter, not by the model. Why not peft's injection (``get_peft_model``): it replaces modules
inside the blocks, which a layer program's per-occurrence views of a block would not see, and
it changes the module tree the user holds. With hooks the tree stays the user's, every
occurrence of a block under a program shares its hooks (the adapter acts at each), the
adapter composes with the other interventions, and removing it is exact.

peft is used for what it is the standard for: ``LoraConfig`` (targets, rank, alpha, dropout,
rsLoRA), its default target modules per architecture, and the files
(``adapter_config.json`` + ``adapter_model.safetensors`` with peft's key names), so our
adapters load in peft and adapters trained with peft load here.

Every installed adapter lives in a file: a fine-tune writes its adapter into the cache,
content-addressed, and the intervention's spec records the folder and the sha256 of its
weights, so every result's metadata can replay it. Merging writes ``scaling * B A`` into the
base weights as a weight change (the Subject keeps the replaced values, so unmerging is
bit-identical); turning adapters off parks them on the Subject (they keep their weights, and
%model and results list them as parked) until turned on or reset.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..core.adapters import linear_modules, weight_matrix
from ..core.errors import NeuroMagicsError, check_seed
from ..core.files import move_folder_into_place, replacing_folder, staged_folder
from ..core.offload import refuse_offloaded
from ..core.interventions import Hook, Intervention, WeightChange, rebuilder
from ..core.loading import cache_dir
from ..core.paths import check_folder_target, read_user_text, user_path
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.subject import Subject, with_lock

WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
#: The kinds of the two ways an adapter is active: hooked (``lora``) or written into the weights.
KINDS = ("lora", "lora_merged")
#: peft's key prefix for a causal LM (``PeftModelForCausalLM.base_model.model``).
_PEFT_PREFIX = "base_model.model."


# -- the adapter: config + A, B per module -------------------------------------------------------


@dataclass(eq=False)
class LoraAdapter:
    """LoRA weights for some linear modules of a model's blocks, named ``"<block>.<path>"``
    (e.g. ``"3.self_attn.q_proj"``): ``A[name]`` is ``[rank, in]``, ``B[name]`` is ``[out, rank]``."""

    rank: int
    alpha: float
    A: dict[str, torch.Tensor]
    B: dict[str, torch.Tensor]
    dropout: float = 0.0
    use_rslora: bool = False
    steps: int = 0
    interrupted: bool = False
    base_model: str = ""
    path: Path | None = field(default=None, repr=False)  # the folder it lives in
    sha256: str | None = field(default=None, repr=False)  # of its weights file

    @property
    def scaling(self) -> float:
        """peft's: ``alpha / rank`` (rsLoRA: ``alpha / sqrt(rank)``)."""
        return self.alpha / (math.sqrt(self.rank) if self.use_rslora else self.rank)

    @property
    def targets(self) -> list[str]:
        return list(self.A)

    def delta(self, name: str) -> torch.Tensor:
        """The update ``scaling * B @ A`` of one module's weight, ``[out, in]``."""
        return self.scaling * (self.B[name] @ self.A[name])

    def describe(self) -> str:
        paths = sorted({name.split(".", 1)[1].rsplit(".", 1)[-1] for name in self.targets})
        stopped = ", interrupted" if self.interrupted else ""
        where = f" ({self.path.name})" if self.path is not None else ""
        return (f"LoRA r={self.rank} alpha={self.alpha:g} on {len(self.targets)} modules ({','.join(paths)}), "
                f"{self.steps} steps{stopped}{where}")

    # -- files in peft's format ------------------------------------------------------------------

    def save(self, subject: Subject, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``adapter_config.json`` and ``adapter_model.safetensors`` as peft does; the
        folder can be loaded with ``PeftModel.from_pretrained(model, folder)``. Written beside
        ``folder`` and swapped in, so an interrupted save leaves the old folder whole."""
        folder = check_folder_target(folder, "save", overwrite=overwrite)
        with replacing_folder(folder) as staging:
            self._write(subject, staging)
        self.path, self.sha256 = folder.resolve(), weights_sha256(folder / WEIGHTS_FILE)
        return self.path

    def _write(self, subject: Subject, folder: Path) -> None:
        from peft import LoraConfig
        from safetensors.torch import save_file

        tensors = {}
        for name in self.targets:
            key = _PEFT_PREFIX + module_path(subject, name)
            tensors[f"{key}.lora_A.weight"] = self.A[name].detach().float().cpu().contiguous()
            tensors[f"{key}.lora_B.weight"] = self.B[name].detach().float().cpu().contiguous()
        save_file(tensors, str(folder / WEIGHTS_FILE),
                  metadata={"format": "pt", "steps": str(self.steps), "interrupted": str(int(self.interrupted))})
        config = LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout, use_rslora=self.use_rslora,
                            target_modules=sorted({name.split(".", 1)[1] for name in self.targets}),
                            task_type="CAUSAL_LM", base_model_name_or_path=self.base_model or subject.name,
                            fan_in_fan_out=subject.adapter.family == "gpt2")
        config.save_pretrained(str(folder))

    @classmethod
    def load(cls, subject: Subject, folder: str | Path) -> LoraAdapter:
        """Read a peft LoRA folder (ours or one trained with peft) for ``subject``'s model."""
        from safetensors.torch import load_file

        folder = user_path(folder, "adapter")
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise NeuroMagicsError(f"{str(folder)!r} is not a LoRA adapter folder: it needs {CONFIG_FILE} and "
                                   f"{WEIGHTS_FILE} (what peft's save_pretrained writes).")
        try:
            config = _lora_config(folder)
            tensors = load_file(str(folder / WEIGHTS_FILE))
            from safetensors import safe_open

            with safe_open(str(folder / WEIGHTS_FILE), "pt") as handle:
                info = handle.metadata() or {}
        except Exception as error:  # noqa: BLE001 - any unreadable file is one line
            raise NeuroMagicsError(f"Could not read the adapter in {str(folder)!r}: {str(error).splitlines()[0]}.") from None
        unsupported = [name for name, value in (
            ("DoRA (use_dora)", getattr(config, "use_dora", False)),
            ("per-module ranks (rank_pattern)", getattr(config, "rank_pattern", None)),
            ("per-module alphas (alpha_pattern)", getattr(config, "alpha_pattern", None)),
            ("trained full modules (modules_to_save)", getattr(config, "modules_to_save", None)),
            ("LoRA biases (lora_bias)", getattr(config, "lora_bias", False)),
        ) if value]
        if str(getattr(config, "peft_type", "LORA")).rsplit(".", 1)[-1] != "LORA":
            unsupported.append(f"peft type {config.peft_type}")
        if unsupported:
            raise NeuroMagicsError(f"The adapter in {str(folder)!r} uses {unsupported[0]}, which neuro_magics does not "
                                   "apply: load it with peft instead.")
        A, B = {}, {}
        for key, value in tensors.items():
            stripped = key.removeprefix(_PEFT_PREFIX)
            for suffix, store in ((".lora_A.weight", A), (".lora_B.weight", B)):
                if stripped.endswith(suffix):
                    store[block_name(subject, stripped.removesuffix(suffix))] = value
                    break
            else:
                raise NeuroMagicsError(f"The adapter in {str(folder)!r} holds {key!r}, not a LoRA A/B weight: "
                                       "load it with peft instead.")
        if set(A) != set(B) or not A:
            raise NeuroMagicsError(f"The adapter in {str(folder)!r} does not hold an A and a B for every module.")
        adapter = cls(rank=int(config.r), alpha=float(config.lora_alpha), A=A, B=B,
                      dropout=float(config.lora_dropout), use_rslora=bool(config.use_rslora),
                      steps=int(info.get("steps", 0)), interrupted=info.get("interrupted") == "1",
                      base_model=str(config.base_model_name_or_path or ""))
        adapter.path, adapter.sha256 = folder.resolve(), weights_sha256(folder / WEIGHTS_FILE)
        adapter.check_fits(subject)
        return adapter

    def check_fits(self, subject: Subject) -> None:
        """Every target is a linear module of ``subject``'s blocks, of the shape A and B expect."""
        modules = subject.block_matrices()
        for name in self.targets:
            if name not in modules:
                raise NeuroMagicsError(f"This adapter targets {name!r}, which {subject.name} does not have: it was "
                                       f"trained for another model ({self.base_model or 'unknown'}).")
            out_features, in_features = weight_matrix(modules[name]).shape
            if self.A[name].shape != (self.rank, in_features) or self.B[name].shape != (out_features, self.rank):
                raise NeuroMagicsError(f"This adapter's weights for {name!r} do not fit {subject.name}'s module "
                                       f"[{out_features} x {in_features}]: it was trained for another model.")

    def cache(self, subject: Subject) -> Path:
        """Save into the cache under the sha256 of its weights (idempotent) and return the folder."""
        root = cache_dir() / "adapters"
        with staged_folder(root, "adapter") as staging:
            self._write(subject, staging)
            digest = weights_sha256(staging / WEIGHTS_FILE)
            target = root / f"{_slug(subject.name)}-{digest[:16]}"
            if not (target.is_dir() and (target / WEIGHTS_FILE).is_file()
                    and weights_sha256(target / WEIGHTS_FILE) == digest):
                move_folder_into_place(staging, target)
        self.path, self.sha256 = target.resolve(), digest
        return target


# Keys a newer peft writes that change nothing while another key is off (or at all).
_INERT_KEYS = {"peft_version": None, "qalora_group_size": "use_qalora"}


def _lora_config(folder: Path):
    """The folder's LoraConfig under the installed peft. A config written by a newer peft holds
    keys an older one does not know (its own from_pretrained then fails): keys left at nothing
    (None, False, empty) or inert are dropped; any other is refused, since it may switch on a
    method this peft cannot apply."""
    import dataclasses

    import peft
    from peft import LoraConfig

    data = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    known = {field.name for field in dataclasses.fields(LoraConfig)}
    for key, value in data.items():
        if key in known or value in (None, False, [], {}, ""):
            continue
        if key in _INERT_KEYS and (_INERT_KEYS[key] is None or not data.get(_INERT_KEYS[key])):
            continue
        raise NeuroMagicsError(f"The adapter in {str(folder)!r} sets {key!r}, which peft {peft.__version__} does not "
                               "know: upgrade peft (pip install -U peft) to load it.")
    return LoraConfig(**{key: value for key, value in data.items() if key in known})


def weights_sha256(path: Path) -> str:
    """sha256 of an adapter weights file's tensors (names, dtypes, shapes, bytes, in name order)
    and its step count: safetensors writes its metadata in no fixed order, so the file's own
    bytes are not reproducible."""
    from safetensors import safe_open

    digest = hashlib.sha256()
    with safe_open(str(path), "pt") as handle:
        info = handle.metadata() or {}
        digest.update(f"steps={info.get('steps', '')};interrupted={info.get('interrupted', '')}".encode())
        for key in sorted(handle.keys()):
            tensor = handle.get_tensor(key).contiguous()
            digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}:".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name.rsplit("/", 1)[-1])[:40] or "model"


def module_path(subject: Subject, name: str) -> str:
    """``"3.self_attn.q_proj"`` -> the module's path in the model, ``"model.layers.3.self_attn.q_proj"``."""
    return f"{subject.adapter.body}.{subject.adapter.blocks}.{name}"


def block_name(subject: Subject, path: str) -> str:
    """The reverse of ``module_path``; a module outside the blocks is refused."""
    prefix = f"{subject.adapter.body}.{subject.adapter.blocks}."
    if not path.startswith(prefix):
        raise NeuroMagicsError(f"This adapter targets {path!r}, outside {subject.name}'s decoder blocks "
                               f"({prefix}N...): load it with peft instead.")
    return path.removeprefix(prefix)


def default_modules(subject: Subject) -> list[str]:
    """peft's default LoRA targets for the architecture (q_proj, v_proj for Llama), else the
    attention's input projections."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    names = DEFAULTS.get(getattr(subject.model.config, "model_type", ""))
    if names:
        return list(names)
    attention = subject.adapter.attn_weights
    output = subject.adapter.heads.rsplit(".", 1)[-1]
    return sorted({name.rsplit(".", 1)[-1] for name in linear_modules(subject.blocks[0])
                   if name.startswith(attention + ".") and not name.endswith("." + output)})


def resolve_targets(subject: Subject, modules: Sequence[str] | str | None) -> list[str]:
    """The ``"<block>.<path>"`` names a LoRA on ``modules`` covers: each entry matches module
    paths that end with it (peft's rule), in every block."""
    if isinstance(modules, str):
        modules = [m.strip() for m in modules.split(",") if m.strip()]
    wanted = list(default_modules(subject) if modules is None else modules)
    if not wanted:
        raise NeuroMagicsError("--modules is empty: name linear modules, e.g. --modules q_proj,v_proj.")
    available = subject.block_matrices()
    targets = []
    for entry in wanted:
        found = [name for name in available if name.split(".", 1)[1] == entry or name.endswith("." + entry)]
        if not found:
            names = sorted({name.split(".", 1)[1] for name in available})
            raise NeuroMagicsError(f"No linear module {entry!r} in {subject.name}'s blocks: use one of "
                                   f"{', '.join(sorted({n.rsplit('.', 1)[-1] for n in names}))}.")
        targets += [name for name in found if name not in targets]
    return sorted(targets, key=lambda name: (int(name.split(".", 1)[0]), name))


# -- the intervention ------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class AdapterIntervention(Intervention):
    """An installed adapter: hooked (kind ``lora``) or merged into the weights (``lora_merged``)."""

    adapter: LoraAdapter | None = field(default=None, repr=False)


def _lora_hook(A: torch.Tensor, B: torch.Tensor, scaling: float, dropout: float, training: Callable[[], bool]):
    """peft's LoRA forward on the module's own output: ``out + B(A(dropout(x))) * scaling``."""

    def hook(module, args, output):
        x = args[0].to(A.dtype)
        if dropout and training():
            x = F.dropout(x, dropout, training=True)
        # on the module's device (a model spread over GPUs); differentiable, so training still reaches A and B
        return (output + F.linear(F.linear(x, A.to(x.device)), B.to(x.device)) * scaling).to(output.dtype)

    return hook


def adapter_intervention(subject: Subject, adapter: LoraAdapter, *, merged: bool = False,
                         training: Callable[[], bool] = lambda: False) -> AdapterIntervention:
    """The intervention of ``adapter`` on ``subject`` (not installed). Its spec records the
    adapter's folder and the sha256 of its weights: save or cache the adapter first."""
    adapter.check_fits(subject)
    modules = subject.block_matrices()
    arguments = {"adapter": None if adapter.path is None else str(adapter.path), "sha256": adapter.sha256}
    kind = "lora_merged" if merged else "lora"
    description = ("merged " if merged else "") + adapter.describe()
    if merged:
        chosen = [modules[name] for name in adapter.targets]

        def apply() -> None:
            for name, module in zip(adapter.targets, chosen):
                weight = weight_matrix(module)
                weight.add_(adapter.delta(name).to(weight.device, weight.dtype))

        change = WeightChange([module.weight for module in chosen], apply)
        return AdapterIntervention(kind, description, arguments, hooks=[], weights=change, adapter=adapter)
    device = subject.device
    hooks = []
    for name in adapter.targets:
        A, B = adapter.A[name], adapter.B[name]
        if A.device != device:
            A, B = A.to(device), B.to(device)
        hooks.append(Hook(modules[name], "forward", _lora_hook(A, B, adapter.scaling, adapter.dropout, training)))
    return AdapterIntervention(kind, description, arguments, hooks=hooks, adapter=adapter)


def _from_spec(subject: Subject, arguments: dict[str, Any], merged: bool) -> AdapterIntervention:
    path = arguments.get("adapter")
    if not path or not (Path(path) / WEIGHTS_FILE).is_file():
        raise NeuroMagicsError(f"The adapter folder {path!r} this result records is gone: save the adapter there "
                               "again to replay it.")
    adapter = LoraAdapter.load(subject, path)
    if arguments.get("sha256") and adapter.sha256 != arguments["sha256"]:
        raise NeuroMagicsError(f"The adapter in {path!r} changed since this was recorded (sha256 differs): "
                               "it cannot be replayed exactly.")
    return adapter_intervention(subject, adapter, merged=merged)


@rebuilder("lora")
def _hooked(subject: Subject, arguments: dict[str, Any], description: str) -> AdapterIntervention:
    return _from_spec(subject, arguments, merged=False)


@rebuilder("lora_merged")
def _merged(subject: Subject, arguments: dict[str, Any], description: str) -> AdapterIntervention:
    return _from_spec(subject, arguments, merged=True)


# -- managing installed adapters ------------------------------------------------------------------

def active_adapters(subject: Subject) -> list[AdapterIntervention]:
    """The installed adapters, hooked or merged, oldest first."""
    return [i for i in subject.interventions if i.kind in KINDS]


def parked_adapters(subject: Subject) -> list[LoraAdapter]:
    """The adapters turned off with ``adapters_off`` (what ``adapters_on`` puts back)."""
    return [i.adapter for i in _parked_adapter_interventions(subject)]


def _parked_adapter_interventions(subject: Subject) -> list[AdapterIntervention]:
    return [i for i in subject.parked if i.kind in KINDS]


@with_lock
def load_adapter(subject: Subject, folder: str | Path, *, install: bool = True) -> AdapterIntervention:
    """A peft LoRA folder (``adapter_config.json`` + ``adapter_model.safetensors``) as an intervention."""
    intervention = adapter_intervention(subject, LoraAdapter.load(subject, folder))
    return intervention.install(subject) if install else intervention


@with_lock
def save_adapter(subject: Subject, folder: str | Path, *, overwrite: bool = False) -> Path:
    """Write the last installed adapter to ``folder`` in peft's format."""
    active = active_adapters(subject)
    if not active:
        raise NeuroMagicsError("No adapter is installed: fine-tune one (%%finetune --lora) or load one first.")
    adapter = active[-1].adapter
    copy = LoraAdapter(**{name: getattr(adapter, name) for name in (
        "rank", "alpha", "A", "B", "dropout", "use_rslora", "steps", "interrupted", "base_model")})
    return copy.save(subject, folder, overwrite=overwrite)


@with_lock
def merge_adapters(subject: Subject) -> int:
    """Write every hooked adapter into the base weights (a weight change the Subject can undo
    bit for bit); returns how many. The order of the interventions is kept."""
    return _switch(subject, "lora", merged=True)


@with_lock
def unmerge_adapters(subject: Subject) -> int:
    """Take merged adapters out of the weights (bit-identical) and hook them again."""
    return _switch(subject, "lora_merged", merged=False)


def _switch(subject: Subject, kind: str, merged: bool) -> int:
    if merged:
        refuse_offloaded(subject.model, "Merging adapters")
    program, before = subject.program, list(subject.interventions)
    after = [adapter_intervention(subject, i.adapter, merged=merged) if i.kind == kind else i for i in before]
    changed = sum(a is not b for a, b in zip(after, before))
    if changed:
        subject.set_state(program, after)
    return changed


@with_lock
def adapters_off(subject: Subject) -> int:
    """Switch the installed adapters off but keep them, parked on the Subject (``adapters_on``
    puts them back; ``reset_interventions`` drops them); returns how many."""
    active = active_adapters(subject)
    for intervention in active:
        subject.park(intervention)
    return len(active)


@with_lock
def adapters_on(subject: Subject) -> int:
    """Install the adapters turned off with ``adapters_off`` again (merged ones merged), all or none."""
    program, active, parked = subject.program, subject.interventions, subject.parked
    adapters = _parked_adapter_interventions(subject)
    try:
        for intervention in adapters:
            subject.unpark(intervention)
    except BaseException:
        subject.set_state(program, active, parked)
        raise
    return len(adapters)


@with_lock
def remove_adapters(subject: Subject) -> int:
    """Remove every adapter, installed or turned off; the base is bit-identical afterwards."""
    return subject.remove_interventions("lora") + subject.remove_interventions("lora_merged")


# -- training ---------------------------------------------------------------------------------------


@dataclass(repr=False, eq=False)
class FinetuneResult(Result):
    """A LoRA fine-tune: its loss per step and the adapter it installed (in ``adapter_path``)."""

    kind = "finetune"

    loss: np.ndarray  # [steps done] training loss (mean next-token cross-entropy of the batch)
    rank: int
    alpha: float
    targets: list[str]
    steps: int  # requested
    interrupted: bool
    adapter_path: str | None  # the folder the installed adapter lives in (None: nothing installed)
    sha256: str | None
    seconds: float
    n_tokens: int
    metadata: dict[str, Any]
    adapter: LoraAdapter | None = field(default=None, repr=False)

    @property
    def steps_done(self) -> int:
        return len(self.loss)

    def to_numpy(self) -> np.ndarray:
        return self.loss

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"step": np.arange(1, self.steps_done + 1), "loss": self.loss})

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"loss": self.loss}

    def _fields(self) -> dict[str, Any]:
        return {"rank": self.rank, "alpha": self.alpha, "targets": self.targets, "steps": self.steps,
                "interrupted": self.interrupted, "adapter_path": self.adapter_path, "sha256": self.sha256,
                "seconds": self.seconds, "n_tokens": self.n_tokens}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> FinetuneResult:
        return cls(loss=arrays["loss"], metadata=metadata, **fields)

    def __repr__(self) -> str:
        stopped = f", interrupted after {self.steps_done}" if self.interrupted else ""
        loss = f"loss {self.loss[0]:.3f} -> {self.loss[-1]:.3f}" if self.steps_done else "no step done"
        where = f"adapter in {self.adapter_path}" if self.adapter_path else "no adapter installed"
        return (f"FinetuneResult(LoRA r={self.rank} alpha={self.alpha:g} on {len(self.targets)} modules, "
                f"{self.steps} steps{stopped}: {loss} on {self.n_tokens} tokens in {self.seconds:.1f} s; {where})")


def training_chunks(subject: Subject, texts: Sequence[str], context: int) -> torch.Tensor:
    """The texts' tokens (joined by the end-of-sequence token) as equal windows of ``context``
    tokens (fewer when all the text is shorter); the last window ends at the last token."""
    if subject.tokenizer is None:
        raise NeuroMagicsError("This subject has no tokenizer: load the model with its tokenizer to fine-tune.")
    ids: list[int] = []
    eos = subject.tokenizer.eos_token_id
    for k, text in enumerate(texts):
        if k and eos is not None:
            ids.append(int(eos))
        ids += list(subject.tokenizer(text)["input_ids"])
    if len(ids) < 2:
        raise NeuroMagicsError("The text is one token long: give more text to fine-tune on.")
    width = min(context, len(ids))
    starts = list(range(0, len(ids) - width + 1, width))
    if starts[-1] != len(ids) - width:
        starts.append(len(ids) - width)
    return torch.tensor([ids[s:s + width] for s in starts], dtype=torch.long)


def _read_texts(text: str | Sequence[str] | None, file: str | Path | None) -> list[str]:
    if (text is None) == (file is None):
        raise NeuroMagicsError("Give the text to fine-tune on either in the cell (text) or with --file, not both.")
    if file is not None:
        path = user_path(file, "--file")
        if not path.is_file():
            raise NeuroMagicsError(f"No file {str(path)!r}: give a UTF-8 text file to fine-tune on.")
        text = read_user_text(path)
    texts = [text] if isinstance(text, str) else [str(t) for t in text]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise NeuroMagicsError("The text is empty: give some text to fine-tune on (the cell, or --file PATH).")
    return texts


def _check_number(name: str, value, *, integer: bool, low: float, low_open: bool = False, high: float | None = None,
                  high_open: bool = False) -> None:
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    ok = ok and not isinstance(value, bool) and math.isfinite(value) and (value > low if low_open else value >= low)
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        kind = "whole number" if integer else "number"
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        upper = "" if high is None else f" and {'below' if high_open else 'at most'} {high:g}"
        raise NeuroMagicsError(f"--{name} must be a {kind} {bound}{upper} (got {value!r}).")


@with_lock
def finetune(
    subject: Subject,
    text: str | Sequence[str] | None = None,
    *,
    file: str | Path | None = None,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    steps: int = 100,
    lr: float = 1e-3,
    modules: Sequence[str] | str | None = None,
    context: int = 128,
    batch_size: int = 4,
    seed: int = 0,
    use_rslora: bool = False,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> FinetuneResult:
    """Fine-tune a LoRA adapter on ``text`` (or a UTF-8 ``file``) and install it.

    The text is cut into windows of ``context`` tokens; each of ``steps`` AdamW steps (no
    weight decay) takes ``batch_size`` windows in a seeded order and minimises the causal-LM
    loss of the model as it is now (program and interventions included) with the adapter on
    ``modules`` (default: peft's targets for the architecture, q_proj and v_proj on Llama).
    Only A and B train: the base parameters are frozen for the duration and left bit for bit.
    A is initialised as peft does (Kaiming-uniform), B at zero, so zero steps change nothing.
    Ctrl-C keeps the steps finished: the adapter of the last whole step is installed (none if
    no step finished) and the result says ``interrupted``. ``on_step(step, loss)`` is called
    after each step. Seeded: the same call gives the same adapter.

    Measured (default model, fp32, CPU, one thread on a shared 2-core machine): rank 8 on q_proj and
    v_proj (60 modules), 4 windows of 128 tokens per step, costs about 4 s of CPU per step (the
    forward and backward through the frozen model; our loop adds nothing measurable): 30 steps took
    218 s wall (110 s CPU) and took the loss on 20 encyclopedic texts from 2.53 to 0.43. The README
    example (2 steps, one 32-token window) takes about 1 s.
    """
    _check_number("rank", rank, integer=True, low=1)
    _check_number("steps", steps, integer=True, low=0)
    _check_number("context", context, integer=True, low=2)
    _check_number("batch", batch_size, integer=True, low=1)
    check_seed(seed)
    _check_number("lr", lr, integer=False, low=0, low_open=True)
    _check_number("alpha", alpha, integer=False, low=0, low_open=True)
    _check_number("dropout", dropout, integer=False, low=0, high=1, high_open=True)
    if subject.context_length is not None and context > subject.context_length:
        raise NeuroMagicsError(f"--context {context} is longer than this model's {subject.context_length} tokens: "
                               "pick a shorter window.")
    targets = resolve_targets(subject, modules)
    modules_by_name = subject.block_matrices()
    smallest = min(targets, key=lambda name: min(weight_matrix(modules_by_name[name]).shape))
    full_rank = min(weight_matrix(modules_by_name[smallest]).shape)
    if rank > full_rank:
        raise NeuroMagicsError(f"--rank {rank} is more than {smallest} can hold (min(in, out) = {full_rank}): "
                               f"a LoRA above that rank adds nothing; use --rank {full_rank} or less.")
    texts = _read_texts(text, file)
    chunks = training_chunks(subject, texts, context).to(subject.device)
    metadata = run_metadata(subject, analysis="finetune", rank=rank, alpha=alpha, dropout=dropout, steps=steps, lr=lr,
                            modules=targets, context=context, batch_size=batch_size, seed=seed, use_rslora=use_rslora,
                            n_tokens=int(chunks.numel()), text_sha256=hashlib.sha256(
                                "\x00".join(texts).encode("utf-8")).hexdigest())

    generator = torch.Generator().manual_seed(seed)
    A, B = {}, {}
    for name in targets:
        out_features, in_features = weight_matrix(modules_by_name[name]).shape
        bound = 1.0 / math.sqrt(in_features)  # kaiming_uniform_(a=sqrt(5)), as peft initialises A
        A[name] = ((torch.rand(rank, in_features, generator=generator) * 2 - 1) * bound).to(subject.device)
        B[name] = torch.zeros(out_features, rank, device=subject.device)
    parameters = [t.requires_grad_() for name in targets for t in (A[name], B[name])]
    live = LoraAdapter(rank=rank, alpha=float(alpha), A=A, B=B, dropout=float(dropout), use_rslora=use_rslora,
                       base_model=subject.name)
    committed = {"A": {n: t.detach().clone() for n, t in A.items()}, "B": {n: t.detach().clone() for n, t in B.items()}}
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    losses: list[float] = []
    interrupted = False
    started = time.perf_counter()
    # By owner and name: accelerate swaps an offloaded module's parameter objects on every forward.
    frozen = [(module, name, p.requires_grad) for module in subject.model.modules()
              for name, p in module.named_parameters(recurse=False)]
    training = {"on": True}
    hooked = adapter_intervention(subject, live, training=lambda: training["on"])
    devices = [subject.device] if subject.device.type == "cuda" else []
    try:
        for module, name, _ in frozen:
            getattr(module, name).requires_grad_(False)
        with torch.random.fork_rng(devices=devices), hooked.applied(subject), torch.enable_grad(), ProgressBar(
                steps, f"LoRA r={rank}, {len(targets)} modules", "step", enabled=progress) as bar:
            torch.manual_seed(seed)
            order, cursor = torch.randperm(len(chunks), generator=generator), 0
            for step in range(steps):
                rows = []
                while len(rows) < min(batch_size, len(chunks)):
                    if cursor == len(order):
                        order, cursor = torch.randperm(len(chunks), generator=generator), 0
                    rows.append(int(order[cursor]))
                    cursor += 1
                batch = chunks[rows]
                loss = subject.model(input_ids=batch, labels=batch, use_cache=False).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                value = float(loss.detach())
                # The adapter of the last whole step: an interrupt inside the next one never shows.
                committed = {"A": {n: t.detach().clone() for n, t in A.items()},
                             "B": {n: t.detach().clone() for n, t in B.items()}}
                losses.append(value)
                bar.set_postfix(f"loss {value:.4f}")
                bar.update()
                if on_step is not None:
                    on_step(step + 1, value)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        training["on"] = False
        for module, name, requires_grad in frozen:
            getattr(module, name).requires_grad_(requires_grad)
    adapter = LoraAdapter(rank=rank, alpha=float(alpha), A=committed["A"], B=committed["B"], dropout=float(dropout),
                          use_rslora=use_rslora, steps=len(losses), interrupted=interrupted, base_model=subject.name)
    installed = None
    if losses or not interrupted:
        adapter.cache(subject)
        installed = adapter_intervention(subject, adapter).install(subject)
    return FinetuneResult(
        loss=np.asarray(losses, dtype=np.float32), rank=rank, alpha=float(alpha), targets=targets, steps=steps,
        interrupted=interrupted, adapter_path=None if installed is None else str(adapter.path),
        sha256=None if installed is None else adapter.sha256, seconds=time.perf_counter() - started,
        n_tokens=int(chunks.numel()), metadata=metadata, adapter=adapter if installed is not None else None,
    )

