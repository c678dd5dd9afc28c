"""Managing installed adapters: list, load, save, merge and unmerge, park (off) and unpark (on), remove."""

from __future__ import annotations

from pathlib import Path

from ...core.errors import NeuroMagicsError
from ...core.offload import refuse_offloaded
from ...core.subject import Subject, with_lock
from .adapter import LoraAdapter
from .intervention import KINDS, AdapterIntervention, adapter_intervention

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
