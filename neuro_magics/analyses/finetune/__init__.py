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

The package, one concern per module: ``targets`` (which modules, and their names), ``adapter``
(``LoraAdapter``: A, B, scaling), ``files`` (peft's files, their hash, the content-addressed
cache), ``intervention`` (hooked or merged, rebuilt on replay), ``manage`` (list, load, save,
merge, park, remove), ``config`` (``FinetuneConfig``), ``data`` (the text as token windows),
``training`` (``finetune``) and ``result`` (``FinetuneResult``).
"""

from ...core.adapters import weight_matrix  # noqa: F401 (tests/test_files.py reads it here)
from .adapter import LoraAdapter
from .config import FinetuneConfig
from .data import training_chunks
from .files import CONFIG_FILE, WEIGHTS_FILE, weights_sha256
from .intervention import KINDS, AdapterIntervention, adapter_intervention
from .manage import (active_adapters, adapters_off, adapters_on, load_adapter, merge_adapters, parked_adapters,
                     remove_adapters, save_adapter, unmerge_adapters)
from .result import FinetuneResult
from .targets import block_name, default_modules, module_path, resolve_targets
from .training import finetune

__all__ = ["CONFIG_FILE", "KINDS", "WEIGHTS_FILE", "AdapterIntervention", "FinetuneConfig", "FinetuneResult", "LoraAdapter",
           "active_adapters", "adapter_intervention", "adapters_off", "adapters_on", "block_name", "default_modules",
           "finetune", "load_adapter", "merge_adapters", "module_path", "parked_adapters", "remove_adapters",
           "resolve_targets", "save_adapter", "training_chunks", "unmerge_adapters", "weights_sha256"]
