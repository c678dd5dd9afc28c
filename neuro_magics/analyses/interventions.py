"""Ablation and steering: the builders of the two intervention kinds.

Ablation also masks dimensions of each layer's MLP output (``mask_mlp_dims``), e.g. the
neurons of a functional network (``mask_network``): zero them, keep only them, or add a
value to them.

Both build a :class:`~neuro_magics.core.interventions.Intervention` (hooks on the ORIGINAL
blocks' modules, so they act at every occurrence of a block under any layer program; layer
numbers here are original block indices) and install it on the subject unless
``install=False``. Whatever they compute from the model (mean activations, contrast
vectors) goes into the intervention's spec as numbers, and the hooks are built from that
spec alone: a replayed intervention is the same one, bit for bit.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import NeuroMagicsError, NeuroMagicsWarning
from ..core.paths import read_user_text
from ..core.programs import explicit_layer_word, parse_ranges
from ..core.interventions import Hook, Intervention, main_input, main_output, rebuilder, replacing_input, replacing_output
from ..core.runner import position_ids_for
from ..core.subject import Subject, with_lock
from ..core.reading import CONTRAST_PREFIX

ABLATION_MODES = ("zero", "mean")
#: How ``mask_mlp_dims`` changes the chosen MLP-output dimensions: zero them, zero every
#: other dimension of their layers, or add ``value`` to them (the seed paper's amplification).
MASK_MODES = ("zero", "keep-only", "amplify")

#: What mean ablation averages over by default: every token of this neutral English text,
#: run through the model as it is when the ablation is built.
REFERENCE_TEXT = (
    "The library opens at nine in the morning and closes at six in the evening. Visitors can borrow up to "
    "five books at a time, and most books may be kept for three weeks. The reading room on the first floor "
    "is quiet, and there are tables by the windows where students work in the afternoon. On Saturdays a "
    "volunteer reads stories to children, and in winter the library lends board games as well as books."
)


# -- parsing --------------------------------------------------------------------------------------


#: Plain ASCII digits: str.isdigit() also accepts "²" or "①", which int() rejects.
_DIGITS = re.compile(r"[0-9]+")


def _pairs_spec(spec: str | Sequence[tuple[int, int]], separator: str, what: str, example: str) -> list[tuple[int, int]]:
    if not isinstance(spec, str):
        return [(int(a), int(b)) for a, b in spec]
    pairs = []
    for part in spec.split(","):
        pieces = part.strip().split(separator)
        if len(pieces) != 2 or not all(_DIGITS.fullmatch(p.strip()) for p in pieces):
            raise NeuroMagicsError(f"Cannot read {part.strip()!r} as {what}: write LAYER{separator}INDEX, e.g. {example}.")
        pairs.append((int(pieces[0]), int(pieces[1])))
    return pairs


def _check_layer(subject: Subject, block: int, what: str) -> None:
    if not 0 <= block < subject.n_layers:
        raise NeuroMagicsError(f"{what}: block {block} is out of range; this model has blocks 0-{subject.n_layers - 1}.")


def _by_layer(pairs: Sequence[tuple[int, int]]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for layer, index in pairs:
        grouped.setdefault(layer, []).append(index)
    return grouped


# -- ablation -------------------------------------------------------------------------------------


@with_lock
def ablate(
    subject: Subject,
    *,
    heads: str | Sequence[tuple[int, int]] | None = None,
    blocks: str | Sequence[int] | None = None,
    neurons: str | Sequence[tuple[int, int]] | None = None,
    mode: str = "zero",
    reference_text: str = REFERENCE_TEXT,
    install: bool = True,
    layers: str | Sequence[int] | None = None,
) -> Intervention:
    """Knock out attention heads (``"9.6,9.9"``: block.head), whole blocks (``"3"`` or
    ``"3-5"``: the block's attention and MLP contributions) and/or MLP neurons
    (``"5:123"``: block:neuron), replacing them with zero or with their mean over every
    token of ``reference_text`` (default: ``REFERENCE_TEXT``, run through the model as it is
    now). Blocks are original layers: the knock-out acts at every step that runs them.
    ``layers`` is the old spelling of ``blocks``, accepted only under the identity program.
    With ``install=False`` the intervention is returned without being installed."""
    if mode not in ABLATION_MODES:
        raise NeuroMagicsError(f"Unknown ablation mode {mode!r}: use zero or mean.")
    layers = explicit_layer_word(subject.program, layers, blocks, old="--layers", new="--blocks")
    if heads is None and layers is None and neurons is None:
        raise NeuroMagicsError("Say what to ablate: --heads 9.6,9.9, --blocks 3 or --neurons 5:123.")
    head_pairs = [] if heads is None else _pairs_spec(heads, ".", "a head", "9.6")
    neuron_pairs = [] if neurons is None else _pairs_spec(neurons, ":", "a neuron", "5:123")
    if layers is None:
        layer_list: list[int] = []
    elif isinstance(layers, str):
        layer_list = parse_ranges(layers, subject.n_layers)
    else:
        layer_list = [int(layer) for layer in layers]
    heads_per_layer = subject.n_heads
    for layer, head in head_pairs:
        _check_layer(subject, layer, f"head {layer}.{head}")
        if not 0 <= head < heads_per_layer:
            raise NeuroMagicsError(
                f"Head {layer}.{head} is out of range: layers have heads 0-{heads_per_layer - 1}.")
    for layer in layer_list:
        _check_layer(subject, layer, "--blocks")
    adapter = subject.adapter
    for layer, neuron in neuron_pairs:
        _check_layer(subject, layer, f"neuron {layer}:{neuron}")
        width = _neuron_count(subject, layer)
        if not 0 <= neuron < width:
            raise NeuroMagicsError(f"Neuron {layer}:{neuron} is out of range: layer {layer} has neurons 0-{width - 1}.")
    if mode == "mean" and not (reference_text and reference_text.strip()):
        raise NeuroMagicsError("Mean ablation needs a reference text to average over.")

    head_modules = {layer: adapter.output_projection(subject.blocks[layer]) for layer in _by_layer(head_pairs)}
    neuron_modules = {layer: adapter.submodule(subject.blocks[layer], adapter.neurons) for layer in _by_layer(neuron_pairs)}
    contribution_modules = {(part, layer): adapter.submodule(subject.blocks[layer], path)
                            for layer in layer_list for part, path in (("attention", adapter.attention), ("mlp", adapter.mlp))}
    means = None
    if mode == "mean":
        averages = _mean_activations(
            subject, reference_text, inputs_of=[*head_modules.values(), *neuron_modules.values()],
            outputs_of=list(contribution_modules.values()),
        )
        n = subject.n_heads
        means = {
            **{f"heads:{layer}": averages[head_modules[layer]].view(n, -1)[heads_here].tolist()
               for layer, heads_here in _by_layer(head_pairs).items()},
            **{f"neurons:{layer}": averages[neuron_modules[layer]][columns].tolist()
               for layer, columns in _by_layer(neuron_pairs).items()},
            **{f"{part}:{layer}": averages[module].tolist() for (part, layer), module in contribution_modules.items()},
        }

    parts = []
    if head_pairs:
        parts.append("heads " + ",".join(f"{a}.{b}" for a, b in head_pairs))
    if layer_list:
        parts.append("blocks " + ",".join(map(str, layer_list)))
    if neuron_pairs:
        parts.append("neurons " + ",".join(f"{a}:{b}" for a, b in neuron_pairs))
    description = f"{mode}-ablate {'; '.join(parts)}"
    if mode == "mean":
        description += " (mean over the reference text)"
    arguments = {
        "heads": [list(pair) for pair in head_pairs], "layers": layer_list,
        "neurons": [list(pair) for pair in neuron_pairs], "mode": mode,
        "reference_text": reference_text if mode == "mean" else None, "means": means,
    }
    intervention = _ablation(subject, arguments, description)
    return intervention.install(subject) if install else intervention


@rebuilder("ablate")
def _ablation(subject: Subject, arguments: dict[str, Any], description: str) -> Intervention:
    """The ablation hooks, from the spec's arguments alone (means as recorded numbers)."""
    adapter, means = subject.adapter, arguments["means"]

    def mean(key: str) -> torch.Tensor | None:
        return None if means is None else torch.tensor(means[key], dtype=subject.dtype, device=subject.device)

    hooks = []
    for layer, heads in _by_layer(arguments["heads"]).items():
        hooks.append(Hook(subject.adapter.output_projection(subject.blocks[layer]), "pre",
                          _replace_input_heads(heads, subject.n_heads, mean(f"heads:{layer}"))))
    for layer, columns in _by_layer(arguments["neurons"]).items():
        module = adapter.submodule(subject.blocks[layer], adapter.neurons)
        hooks.append(Hook(module, "pre", _replace_input_columns(columns, mean(f"neurons:{layer}"))))
    for layer in arguments["layers"]:
        for part, path in (("attention", adapter.attention), ("mlp", adapter.mlp)):
            module = adapter.submodule(subject.blocks[layer], path)
            hooks.append(Hook(module, "forward", _replace_output(mean(f"{part}:{layer}"))))
    for layer, dims in arguments.get("mlp_dims", ()):
        module = adapter.submodule(subject.blocks[layer], adapter.mlp)
        hooks.append(Hook(module, "forward", _mask_output_dims(dims, arguments["mode"], arguments.get("value"))))
    return Intervention("ablate", description, arguments, hooks)


def _neuron_count(subject: Subject, layer: int) -> int:
    module = subject.adapter.submodule(subject.blocks[layer], subject.adapter.neurons)
    if isinstance(module, nn.Linear):
        return module.in_features
    return module.weight.shape[0]  # GPT-2's Conv1D stores [in, out]


@torch.no_grad()
def _mean_activations(subject: Subject, text: str, inputs_of: Sequence[nn.Module],
                      outputs_of: Sequence[nn.Module]) -> dict[nn.Module, torch.Tensor]:
    """Mean over all tokens (and all occurrences) of each module's input / output vector."""
    sums: dict[nn.Module, list] = {m: [0.0, 0] for m in [*inputs_of, *outputs_of]}

    def add(module, tensor):
        flat = tensor.detach().reshape(-1, tensor.shape[-1])
        sums[module][0] = sums[module][0] + flat.sum(0)
        sums[module][1] += flat.shape[0]

    handles = []
    try:
        for module in inputs_of:
            handles.append(module.register_forward_pre_hook(lambda m, args: add(m, args[0])))
        for module in outputs_of:
            handles.append(module.register_forward_hook(
                lambda m, args, out: add(m, main_output(out))))
        ids = subject.tokenizer(text, return_tensors="pt")["input_ids"].to(subject.device)
        subject.model(ids[:, :subject.context_length], use_cache=False)  # a long reference is cut to the context
    finally:
        for handle in handles:
            handle.remove()
    return {module: total / count for module, (total, count) in sums.items()}


def _replace_input_heads(heads: list[int], n: int, mean: torch.Tensor | None):
    def hook(module, args):
        tensor = args[0]
        split = tensor.clone().view(*tensor.shape[:-1], n, -1)
        if mean is None:
            split[..., heads, :] = 0
        else:
            split[..., heads, :] = mean.to(device=tensor.device, dtype=tensor.dtype)
        return (split.view_as(tensor), *args[1:])

    return hook


def _replace_input_columns(columns: list[int], mean: torch.Tensor | None):
    def hook(module, args):
        tensor = args[0].clone()
        tensor[..., columns] = 0 if mean is None else mean.to(device=tensor.device, dtype=tensor.dtype)
        return (tensor, *args[1:])

    return hook


def _replace_output(mean: torch.Tensor | None):
    def replaced(tensor: torch.Tensor) -> torch.Tensor:
        return (torch.zeros_like(tensor) if mean is None
                else mean.to(device=tensor.device, dtype=tensor.dtype).expand_as(tensor).clone())

    return replacing_output(replaced)


def _mask_output_dims(dims: list[int], mode: str, value: float | None):
    """Zero ``dims`` of a module's output, zero all but them, or add ``value`` to them."""
    indices: dict[torch.device, torch.Tensor] = {}

    def masked(tensor: torch.Tensor) -> torch.Tensor:
        index = indices.get(tensor.device)
        if index is None:
            index = indices[tensor.device] = torch.tensor(dims, dtype=torch.long, device=tensor.device)
        if mode == "zero":
            new = tensor.index_fill(-1, index, 0)
        elif mode == "keep-only":
            keep = torch.zeros(tensor.shape[-1], dtype=torch.bool, device=tensor.device)
            keep[index] = True
            new = tensor.masked_fill(~keep, 0)
        else:
            new = tensor.clone()
            new[..., index] += value
        return new

    return replacing_output(masked)


# -- MLP-output dimensions and functional networks -------------------------------------------------


@with_lock
def mask_mlp_dims(
    subject: Subject,
    dims: Mapping[int, Sequence[int]],
    *,
    mode: str = "zero",
    value: float | None = None,
    label: str = "chosen dims",
    install: bool = True,
) -> Intervention:
    """Mask dimensions of each layer's MLP output (the MLP block's contribution to the
    residual stream, the module the adapter names ``mlp``), at every position and every
    occurrence of the block: ``dims`` maps an original block index to its dimensions.

    ``mode``: ``zero`` them; ``keep-only`` zeroes every other dimension of the layers in
    ``dims`` (a layer with no dimensions loses its whole MLP output); ``amplify`` adds
    ``value`` to them. ``label`` names the set in the description (what %model shows)."""
    if mode not in MASK_MODES:
        raise NeuroMagicsError(f"Unknown mask mode {mode!r}: use zero, keep-only or amplify.")
    if mode == "amplify":
        if value is None or not math.isfinite(value):
            raise NeuroMagicsError("--mode amplify needs a finite --value V: the amount added to each dimension.")
    elif value is not None:
        raise NeuroMagicsError(f"--value goes with --mode amplify, not {mode}.")
    width = subject.d_model
    layers: list[list] = []
    for layer, chosen in sorted((int(k), v) for k, v in dims.items()):
        _check_layer(subject, layer, "mask")
        chosen = sorted({int(d) for d in chosen})
        if chosen and not (0 <= chosen[0] and chosen[-1] < width):
            raise NeuroMagicsError(f"MLP-output dimension {chosen[-1] if chosen[-1] >= width else chosen[0]} of block "
                                   f"{layer} is out of range: the MLP output has dimensions 0-{width - 1}.")
        if chosen or mode == "keep-only":
            layers.append([layer, chosen])
    total = sum(len(chosen) for _, chosen in layers)
    if not total and mode != "keep-only":
        raise NeuroMagicsError(f"{label} holds no dimension: there is nothing to mask.")
    if not layers:
        raise NeuroMagicsError("keep-only needs at least one layer to act on.")
    n_layers = sum(bool(chosen) for _, chosen in layers)
    where = f"{total} MLP-output dims in {n_layers} layer{'s' if n_layers != 1 else ''}"
    if mode == "zero":
        description = f"zero-ablate {label}: {where}"
    elif mode == "keep-only":
        description = f"keep only {label}: {where}; the rest of the MLP output of layers " \
                      f"{_layer_span([layer for layer, _ in layers])} zeroed"
    else:
        description = f"add {value:g} to {label}: {where}"
    arguments = {"heads": [], "layers": [], "neurons": [], "mode": mode, "reference_text": None, "means": None,
                 "mlp_dims": layers, "value": None if value is None else float(value)}
    intervention = _ablation(subject, arguments, description)
    return intervention.install(subject) if install else intervention


@with_lock
def mask_network(
    subject: Subject,
    networks,
    network: int | Sequence[int] | str = "key",
    *,
    mode: str = "zero",
    value: float | None = None,
    install: bool = True,
) -> Intervention:
    """Mask a functional network's neurons (``networks`` from ``nm.networks``): ``network`` is
    ``"key"`` (every network's neurons), an index, or ``"0,3"``; ``mode`` as in
    ``mask_mlp_dims`` (``keep-only`` acts on every layer the networks were found in)."""
    facts = networks.metadata
    if facts.get("model") != subject.name or networks.d_model != subject.d_model or \
            max(networks.blocks) >= subject.n_layers:
        raise NeuroMagicsError(f"These networks were found on {facts.get('model', 'another model')}, not {subject.name}: "
                               "find networks on this model first.")
    dims = networks.dims_by_block(network)
    name = "key networks" if isinstance(network, str) and network.strip() == "key" else f"network {network}"
    label = f"{name} at z > {networks.threshold:g}"
    if mode != "keep-only" and not any(dims.values()):
        raise NeuroMagicsError(f"{name} has no neuron above z = {networks.threshold:g}: nothing to mask; re-cut the "
                               "networks with result.with_threshold(T) for a lower T.")
    return mask_mlp_dims(subject, dims, mode=mode, value=value, label=label, install=install)


def _layer_span(layers: Sequence[int]) -> str:
    if list(layers) == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0])
    return ",".join(map(str, layers))


# -- steering -------------------------------------------------------------------------------------


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Contrast pairs from a JSONL file: one ``{"positive": ..., "negative": ...}`` per line."""
    path = Path(path)
    if not path.is_file():
        raise NeuroMagicsError(f"No file {str(path)!r}: give a JSONL file of {{\"positive\": ..., \"negative\": ...}} lines.")
    pairs = []
    text = read_user_text(path, "UTF-8 JSON lines")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            pair = (record["positive"], record["negative"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise NeuroMagicsError(
                f"{path}:{number} is not a {{\"positive\": ..., \"negative\": ...}} JSON line.") from None
        pairs.append(_text_pair(pair, f"{path}:{number}"))
    if not pairs:
        raise NeuroMagicsError(f"{path} holds no contrast pairs: write one {{\"positive\": ..., \"negative\": ...}} per line.")
    return pairs


def _text_pair(pair: Any, where: str) -> tuple[str, str]:
    """A contrast pair of two non-empty texts: a number (``{"positive": 1}``) would steer on the
    text "1", which nobody means."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise NeuroMagicsError(f"{where}: a contrast pair is two texts (positive, negative), got {pair!r}.")
    for side, text in zip(("positive", "negative"), pair):
        if not isinstance(text, str) or not text.strip():
            raise NeuroMagicsError(f"{where}: the {side} side must be a non-empty text in quotes, not {text!r}.")
    return pair[0], pair[1]


@with_lock
def steer(
    subject: Subject,
    *,
    block: int | None = None,
    coef: float,
    layer: int | None = None,
    pos: str | None = None,
    neg: str | None = None,
    pairs: str | Path | Sequence[tuple[str, str]] | None = None,
    vector: torch.Tensor | None = None,
    vector_name: str | None = None,
    install: bool = True,
) -> Intervention:
    """Add ``coef * v`` to the residual stream entering original block ``block``, at every
    position (prompt and generated tokens) and every step that runs the block.

    ``v`` is ``vector`` if given, else the mean over contrast pairs of the difference of
    the stream entering ``block`` at the last token (``pos``/``neg`` is one pair; ``pairs`` a
    JSONL file or a list; see ``contrast_vector``). ``block == n_layers`` adds to the final-normed stream right
    before the unembedding, where the shift in logits is exactly ``coef * W_U v``. ``vector_name`` says
    what a given ``vector`` is in ``%model`` (e.g. an SAE feature; default "a given vector").
    ``layer`` is the old spelling of ``block``, accepted only under the identity program.
    """
    layer = explicit_layer_word(subject.program, layer, block, old="--layer", new="--block")
    if layer is None:
        raise NeuroMagicsError("Steering needs --block N: the block whose input is steered.")
    if not math.isfinite(coef):
        raise NeuroMagicsError(f"--coef must be a finite number (got {coef}).")
    if not 0 <= layer <= subject.n_layers:
        raise NeuroMagicsError(
            f"--block {layer} is out of range: use 0-{subject.n_layers - 1} (a block's input) or "
            f"{subject.n_layers} (right before the unembedding).")
    sources = sum(x is not None for x in (vector, pairs)) + (pos is not None or neg is not None)
    if sources != 1:
        raise NeuroMagicsError("Give exactly one of --pos TEXT --neg TEXT, --pairs FILE.jsonl or a vector.")
    if vector is None:
        if pairs is None:
            if not (pos and pos.strip() and neg and neg.strip()):
                raise NeuroMagicsError("Steering needs both --pos and --neg texts, e.g. --pos \"Love\" --neg \"Hate\".")
            pairs = [(pos, neg)]
        elif isinstance(pairs, (str, Path)):
            pairs = read_pairs(pairs)
        elif not pairs:
            raise NeuroMagicsError("No contrast pairs given.")
        pairs = [_text_pair(pair, f"Pair {number}") for number, pair in enumerate(pairs, 1)]
        vector = contrast_vector(subject, layer, pairs)
        what = f"pos/neg {pairs[0][0]!r}/{pairs[0][1]!r}" if len(pairs) == 1 else f"mean difference of {len(pairs)} pairs"
    else:
        vector = torch.as_tensor(vector)
        if vector.shape != (subject.d_model,):
            raise NeuroMagicsError(f"A steering vector must have shape ({subject.d_model},), got {tuple(vector.shape)}.")
        what = vector_name or "a given vector"
    vector = vector.to(device=subject.device, dtype=subject.dtype)
    shift = coef * vector
    if not torch.isfinite(shift).all():
        raise NeuroMagicsError(f"--coef {coef:g} x |v| = {vector.norm():.3g} does not fit in {subject.dtype}: "
                               "use a smaller coefficient.")
    where = "right before the unembedding" if layer == subject.n_layers else f"into block {layer}"
    typical = _typical_norm(subject, layer) if subject.tokenizer is not None else math.inf
    if float(shift.double().norm()) > DWARFING_RATIO * typical:
        warnings.warn(NeuroMagicsWarning(
            f"The shift |{coef:g} x v| = {float(shift.double().norm()):.3g} is over {DWARFING_RATIO}x the typical "
            f"stream norm {where} ({typical:.3g}): the model will mostly see the vector; a smaller --coef keeps "
            "the text's own signal."))
    description = f"add {coef:g} x ({what}) {where} (|v| = {vector.norm():.3g})"
    arguments = {"layer": int(layer), "coef": float(coef), "vector": vector.tolist(),
                 "pairs": None if pairs is None else [list(pair) for pair in pairs]}
    intervention = _steering(subject, arguments, description)
    return intervention.install(subject) if install else intervention


@rebuilder("steer")
def _steering(subject: Subject, arguments: dict[str, Any], description: str) -> Intervention:
    """The steering hook, from the spec's arguments alone (the vector as recorded numbers)."""
    vector = torch.tensor(arguments["vector"], dtype=subject.dtype, device=subject.device)
    hook = _steering_hook(subject, arguments["layer"], arguments["coef"] * vector)
    return Intervention("steer", description, arguments, [hook], vector=vector)


#: A steering shift this many times the stream's typical norm drowns the text: warn.
DWARFING_RATIO = 10


@torch.no_grad()
def _typical_norm(subject: Subject, layer: int) -> float:
    """Median norm of the stream at the steering site over the reference text, leaving out
    the first token (an attention sink with an outsized norm in many models)."""
    norms: list[torch.Tensor] = []

    def grab(module, args, kwargs):
        if not norms:
            norms.append(main_input(args, kwargs)[0, 1:].float().norm(dim=-1))

    ids = subject.tokenizer(REFERENCE_TEXT, return_tensors="pt")["input_ids"][:, :128].to(subject.device)
    handle = _steering_site(subject, layer).register_forward_pre_hook(grab, with_kwargs=True)
    try:
        subject.model(ids, use_cache=False)
    finally:
        handle.remove()
    return float(norms[0].median())


def _steering_site(subject: Subject, layer: int) -> nn.Module:
    if layer == subject.n_layers:
        return subject.adapter.unembedding_module(subject.model)
    return subject.blocks[layer]


def _steering_hook(subject: Subject, layer: int, shift: torch.Tensor) -> Hook:
    def shifted(tensor: torch.Tensor) -> torch.Tensor:  # on the block's device (models spread over GPUs)
        return tensor + shift.to(device=tensor.device, dtype=tensor.dtype)

    return Hook(_steering_site(subject, layer), "pre_kwargs", replacing_input(shifted))


@with_lock
@torch.no_grad()
def contrast_vector(subject: Subject, layer: int, pairs: Sequence[tuple[str, str]]) -> torch.Tensor:
    """Mean over pairs of (positive - negative) stream entering ``layer`` at the last token,
    each text read after ``CONTRAST_PREFIX`` (first occurrence of the block; other
    installed interventions stay active)."""
    texts = [text for pair in pairs for text in pair]
    if any(not (t and t.strip()) for t in texts):
        raise NeuroMagicsError("A contrast text is empty: every pair needs a positive and a negative text.")
    encoded = subject.encode([CONTRAST_PREFIX + text for text in texts])
    seen: list[torch.Tensor] = []

    def grab(module, args, kwargs):
        if not seen:
            seen.append(main_input(args, kwargs)[:, -1].detach())

    handle = _steering_site(subject, layer).register_forward_pre_hook(grab, with_kwargs=True)
    try:
        subject.model(**encoded, position_ids=position_ids_for(encoded["attention_mask"]), use_cache=False)
    finally:
        handle.remove()
    states = seen[0].float()
    return (states[0::2] - states[1::2]).mean(0)
