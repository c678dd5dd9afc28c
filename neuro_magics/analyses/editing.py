"""Knowledge editing with ROME (Meng et al. 2022, "Locating and Editing Factual Associations in GPT").

The MLP down projection of one block is read as a linear key-value memory: its input at the
subject's last token is the *key* k*, its output the *value*. ROME

1. takes k* as the mean key over the prompt behind a few context prefixes;
2. optimises a shift ``delta`` of that block's MLP output at the subject's last token so that
   the model predicts the new target (all its tokens), with a penalty on ``|delta|``;
3. writes the rank-one update ``W' = W + delta (C^-1 k*)^T / (k*^T C^-1 k*)``, where C is the
   second moment ``E[k k^T]`` of the block's keys over a corpus: then ``W' k* = W k* + delta``
   exactly, and any key k with ``k^T C^-1 k* = 0`` is mapped as before.

C is measured on the built-in calibration text (cached per model state and block). That text
is smaller than the MLP's width, so C is regularised by ``DAMPING`` times its mean diagonal.
The edited *block* (an original layer: under a duplicated program the update acts at every
step that runs it) defaults to the block that ran at causal tracing's peak MLP effect at the
subject's last token.

An edit is an :class:`~neuro_magics.core.interventions.Intervention` of kind ``"edit"`` whose
spec holds the two rank-one factors: edits stack, ``undo_edit`` reverts the last and
``reset_interventions(subject, "edit")`` all of them, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.adapters import weight_matrix
from ..core.errors import NeuroMagicsError
from ..core.offload import refuse_offloaded
from ..core.interventions import Intervention, WeightChange, active_interventions, rebuilder
from ..core.programs import explicit_layer_word
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.subject import Subject, with_lock
from .diffing import DEFAULT_NEW_TOKENS, DiffResult, compare
from ..core.answers import subject_positions
from ..core.corpus import calibration_passages
from ..core.probe_sets import Probe, ProbeItem, TeacherForcedBatch, teacher_forced_batch, teacher_forced_logprobs
from ..core.corpus import calibration_batches, calibration_forward

#: Contexts the key and the value are averaged over (ROME uses short generated texts).
CONTEXT_PREFIXES = ("", "The following is true. ", "I read this yesterday. ", "Here is a short note. ",
                    "According to many people, ")
#: Default generalisation prompts: the fact behind contexts not used to compute the edit.
PARAPHRASE_CONTEXTS = ("Yesterday it rained all afternoon. ", "Quick question for you: ")
#: C + DAMPING * mean(diag C) * I: the shipped corpus has fewer tokens than the MLP is wide.
DAMPING = 0.05
VALUE_STEPS = 25
VALUE_LEARNING_RATE = 0.5
VALUE_WEIGHT_DECAY = 0.5
CLAMP_NORM = 4.0  # |delta| at most this many times |W k*|, as in ROME


# -- input ---------------------------------------------------------------------------------------


def fact_template(prompt: str, subject_text: str) -> str:
    """The prompt with ``{}`` where the subject goes (given so, or found in the prompt)."""
    if not subject_text or not subject_text.strip():
        raise NeuroMagicsError('--subject is needed: the words the fact is about, e.g. --subject "LeBron James".')
    if not prompt or not prompt.strip():
        raise NeuroMagicsError('--prompt is needed, e.g. --prompt "{} plays the sport of".')
    if prompt.count("{}") > 1:
        raise NeuroMagicsError(f"The prompt {prompt!r} has {prompt.count('{}')} {{}}: write {{}} once, where the subject goes.")
    if "{}" in prompt:
        return prompt
    if subject_text not in prompt:
        raise NeuroMagicsError(f"The subject {subject_text!r} does not occur in the prompt {prompt!r}: "
                               "write it there, or {} where it goes.")
    return prompt.replace(subject_text, "{}", 1)


def target_tokens(subject: Subject, target: str) -> list[int]:
    if not target or not target.strip():
        raise NeuroMagicsError('--target is needed: the new answer, e.g. --target " football".')
    return subject.tokenizer(target, add_special_tokens=False)["input_ids"]


def _mlp_down(subject: Subject, block: int) -> torch.nn.Module:
    return subject.adapter.submodule(subject.blocks[block], subject.adapter.neurons)


# -- the key, its statistics and the value ---------------------------------------------------------


def _key_batch(subject: Subject, texts: Sequence[str], subject_text: str, target: str):
    """Teacher-forced prompts + target, and where each row's subject ends (padded positions)."""
    batch = teacher_forced_batch(subject, Probe("edit", tuple(ProbeItem(t, target, "logprob") for t in texts)))
    lengths = batch.attention_mask.sum(-1)
    ends = [batch.n_tokens - int(lengths[row]) + subject_positions(subject, text, subject_text)[-1]
            for row, text in enumerate(texts)]
    return batch, torch.tensor(ends, device=subject.device)


@torch.no_grad()
def subject_key(subject: Subject, block: int, texts: Sequence[str], subject_text: str, target: str) -> torch.Tensor:
    """k*: the mean input of ``block``'s MLP down projection at the subject's last token of ``texts``."""
    batch, ends = _key_batch(subject, texts, subject_text, target)
    keys = []

    def grab(module, args):  # indexed on the module's device (a model spread over GPUs)
        where = args[0].device
        keys.append(args[0][torch.arange(len(ends), device=where), ends.to(where)].float().to(subject.device))

    handle = _mlp_down(subject, block).register_forward_pre_hook(grab)
    try:
        teacher_forced_logprobs(subject, batch)
    finally:
        handle.remove()
    return keys[0].mean(0)


@with_lock
@torch.no_grad()
def key_second_moment(subject: Subject, block: int, corpus: str = "builtin") -> torch.Tensor:
    """C = E[k k^T] of ``block``'s down-projection inputs over every token of the corpus, plus
    ``DAMPING`` x its mean diagonal on the diagonal (float64). Cached on the subject for its
    current state, one at a time: a d_ff x d_ff matrix is large."""
    return subject.cache("editing.key_second_moment", (block, corpus),
                         lambda: _key_second_moment(subject, block, corpus), entries=1)


@torch.no_grad()
def _key_second_moment(subject: Subject, layer: int, corpus: str) -> torch.Tensor:
    total, count = None, 0
    real: list[torch.Tensor] = []  # the running batch's attention mask, as booleans

    def add(module, args):
        nonlocal total, count
        x = args[0].detach()[real[0].to(args[0].device)].double()  # [real tokens, d_ff]
        total = x.T @ x if total is None else total + x.T @ x
        count += x.shape[0]

    handle = _mlp_down(subject, layer).register_forward_pre_hook(add)
    try:
        batches = calibration_batches(subject, calibration_passages(corpus))
        with ProgressBar(len(batches), "key statistics", "batch", leave=False) as bar:
            for ids, mask in batches:
                real[:] = [mask.bool()]
                calibration_forward(subject, ids, mask)
                bar.update()
    finally:
        handle.remove()
    moment = total / count
    moment += DAMPING * moment.diagonal().mean() * torch.eye(moment.shape[0], dtype=moment.dtype, device=moment.device)
    return moment


@with_lock
def optimise_value(subject: Subject, block: int, texts: Sequence[str], subject_text: str, target: str,
                   steps: int = VALUE_STEPS) -> tuple[torch.Tensor, float]:
    """The shift of ``block``'s MLP output at the subject's last token that makes ``target``
    likely after every text (Adam, ROME's norm penalty and clamp). Returns it and the final
    mean log p(target)."""
    batch, ends = _key_batch(subject, texts, subject_text, target)
    rows = torch.arange(len(ends), device=ends.device)
    module = _mlp_down(subject, block)
    with torch.no_grad():
        outputs = []
        handle = module.register_forward_hook(
            lambda m, a, o: outputs.append(o[rows.to(o.device), ends.to(o.device)].float().to(subject.device)))
        try:
            teacher_forced_logprobs(subject, batch)
        finally:
            handle.remove()
        original = outputs[0].mean(0)
    delta = torch.zeros_like(original, requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=VALUE_LEARNING_RATE)
    limit = CLAMP_NORM * original.norm()

    def shift(module, args, output):
        at = (rows.to(output.device), ends.to(output.device))
        output = output.clone()
        output[at] = output[at] + delta.to(device=output.device, dtype=output.dtype)
        return output

    handle = module.register_forward_hook(shift)
    logprob = float("nan")
    try:
        with ProgressBar(steps, "optimise value", "step", leave=False) as bar:
            for _ in range(steps):
                with torch.enable_grad():
                    logprobs = teacher_forced_logprobs(subject, batch)
                    loss = -logprobs.mean() + VALUE_WEIGHT_DECAY * delta.norm() ** 2 / original.norm() ** 2
                    (delta.grad,) = torch.autograd.grad(loss, [delta])
                logprob = float(logprobs.detach().mean())
                bar.update()
                if logprob > -0.05:
                    break
                optimiser.step()
                with torch.no_grad():
                    if delta.norm() > limit:
                        delta.mul_(limit / delta.norm())
            else:  # the fit of the shift returned, not of the one before its last update
                with torch.no_grad():
                    logprob = float(teacher_forced_logprobs(subject, batch).mean())
    finally:
        handle.remove()
    return delta.detach(), logprob


def rank_one_factors(key: torch.Tensor, delta: torch.Tensor, moment: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, w)`` with ``W' = W + u w^T``: ``w = C^-1 k*``, ``u = delta / (k*^T C^-1 k*)``."""
    key = key.to(device=moment.device, dtype=torch.float64)  # the moment stays on its block's device
    direction = torch.linalg.solve(moment, key)
    return (delta.to(device=moment.device, dtype=torch.float64) / (key @ direction)), direction


@rebuilder("edit")
def _edit(subject: Subject, arguments: dict[str, Any], description: str) -> Intervention:
    """The rank-one update, from the spec's factors alone."""
    block = int(arguments["block"] if "block" in arguments else arguments["layer"])  # "layer": saved before the rename
    if not 0 <= block < subject.n_layers:
        raise NeuroMagicsError(f"This edit is at block {block}; this model has blocks 0-{subject.n_layers - 1}.")
    module = _mlp_down(subject, block)

    def apply() -> None:
        weight = weight_matrix(module)
        u = torch.tensor(arguments["u"], dtype=torch.float64, device=weight.device)
        w = torch.tensor(arguments["w"], dtype=torch.float64, device=weight.device)
        weight.copy_((weight.double() + torch.outer(u, w)).to(weight.dtype))

    return Intervention("edit", description, arguments, hooks=[], weights=WeightChange([module.weight], apply))


# -- block choice --------------------------------------------------------------------------------


def traced_block(subject: Subject, text: str, subject_text: str) -> int:
    """The block that ran at the step whose MLP (window) restores the most of the fact at the
    subject's last token in causal tracing (``nm.trace`` maps steps). A trace cut short by
    Ctrl-C chooses nothing: a block picked from part of the map would be an edit the user stopped."""
    from .tracing import TRACE_SITES, trace

    traced = trace(subject, text, subject_text)
    if traced.metadata.get("interrupted"):
        raise NeuroMagicsError("Interrupted during causal tracing, before a block was chosen: nothing was edited. "
                               "Run it again, or give --block N to skip the tracing.")
    effect = traced.effect[TRACE_SITES.index("mlp_out"), :, traced.subject_positions[-1]]
    if not np.isfinite(effect).any():
        raise NeuroMagicsError("Causal tracing found no MLP effect at the subject's last token: give --block N.")
    return int(subject.program.steps[int(np.nanargmax(effect))])


# -- the report ----------------------------------------------------------------------------------


GROUPS = ("prompt", "paraphrase", "neighbour")


@dataclass(repr=False, eq=False)
class EditResult(Result):
    """One ROME edit: per report prompt, log p of the new target and of the prompt's own old
    answer (its greedy continuation before, as many tokens as the target), before and after;
    the key, the value shift, and the before/after diff of the generations."""

    kind = "edit"

    block: int  # the original block whose MLP was edited
    subject_text: str
    template: str
    target: str
    target_pieces: list[str]
    prompts: list[str]
    groups: list[str]  # GROUPS per prompt
    old_answers: list[str]
    new_before: np.ndarray  # [prompts] mean log p(target token)
    new_after: np.ndarray
    old_before: np.ndarray
    old_after: np.ndarray
    key: np.ndarray  # k* [d_mlp]
    delta: np.ndarray  # the value shift [d_model]: W' k* = W k* + delta
    fit_logprob: float  # mean log p(target) reached by the value optimisation
    diff: DiffResult | None
    metadata: dict[str, Any]

    @property
    def layer(self) -> int:
        """``block``, where the program the edit was made under ran every block at its own index;
        elsewhere "layer" would name a block and a step at once, so it is refused."""
        program = list(self.metadata.get("program", []))
        if program != list(range(len(program))):
            raise NeuroMagicsError(f"layer is ambiguous: this edit was made under the program {program}; use block "
                                   "(the original layer whose MLP was edited).")
        return self.block

    def _in_group(self, group: str) -> np.ndarray:
        """A mask over the prompts: which belong to ``group``."""
        return np.array([g == group for g in self.groups])

    def success(self, group: str, after: bool = True) -> float:
        """Fraction of a group's prompts where the new target beats the old answer (for
        neighbours: where it does NOT, i.e. specificity)."""
        chosen = self._in_group(group)
        if not chosen.any():
            return float("nan")
        new, old = (self.new_after, self.old_after) if after else (self.new_before, self.old_before)
        wins = new[chosen] > old[chosen]
        return float((~wins if group == "neighbour" else wins).mean())

    @property
    def efficacy(self) -> float:
        return self.success("prompt")

    @property
    def generalisation(self) -> float:
        return self.success("paraphrase")

    @property
    def specificity(self) -> float:
        return self.success("neighbour")

    def summary_rows(self) -> list[tuple[str, str, str]]:
        names = {"prompt": "efficacy: p(new) > p(old)", "paraphrase": "paraphrases: p(new) > p(old)",
                 "neighbour": "neighbours unchanged: p(new) < p(own old)"}
        return [(names[g], f"{self.success(g, False):.0%}", f"{self.success(g):.0%}") for g in GROUPS
                if self._in_group(g).any()]

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"prompt": self.prompts, "group": self.groups, "old_answer": self.old_answers,
                             "logp_new_before": self.new_before, "logp_new_after": self.new_after,
                             "logp_old_before": self.old_before, "logp_old_after": self.old_after})

    def to_numpy(self) -> np.ndarray:
        """[prompts, 4]: log p(new) before, after, log p(old) before, after."""
        return np.stack([self.new_before, self.new_after, self.old_before, self.old_after], axis=1)

    def __repr__(self) -> str:
        parts = [f"{name} {self.success(g):.0%}" for name, g in
                 (("efficacy", "prompt"), ("paraphrases", "paraphrase"), ("specificity", "neighbour"))
                 if self._in_group(g).any()]
        return (f"EditResult(block {self.block}: {self.template.replace('{}', self.subject_text)!r} -> "
                f"{self.target!r} ({'+'.join(map(repr, self.target_pieces))}); {', '.join(parts)})")

    _ARRAYS = ("new_before", "new_after", "old_before", "old_after", "key", "delta")
    _FIELDS = ("block", "subject_text", "template", "target", "target_pieces", "prompts", "groups", "old_answers",
               "fit_logprob")

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        if self.diff is not None:
            arrays.update({f"diff_{k}": v for k, v in self.diff._arrays().items()})
        return arrays

    def _fields(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in self._FIELDS}
        fields["diff"] = None if self.diff is None else {"fields": self.diff._fields(), "metadata": self.diff.metadata}
        return fields

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> EditResult:
        saved = fields.pop("diff")
        if "layer" in fields:  # saved before "layer" became "block"
            fields["block"] = fields.pop("layer")
        diff = None if saved is None else DiffResult._rebuild(
            {k[len("diff_"):]: v for k, v in arrays.items() if k.startswith("diff_")}, saved["fields"], saved["metadata"])
        return cls(**fields, **{name: arrays[name] for name in cls._ARRAYS}, diff=diff, metadata=metadata)


# -- entry points --------------------------------------------------------------------------------


def _old_answers(subject: Subject, prompts: Sequence[str], n_tokens: int) -> tuple[list[str], TeacherForcedBatch]:
    """Each prompt's greedy continuation of ``n_tokens`` tokens (the answer the edit competes with),
    and the batch that scores exactly those tokens after their prompt: the text decoded and
    tokenized again (after the space a probe item adds) would be other tokens."""
    encoded = subject.encode(list(prompts))
    width = encoded["input_ids"].shape[1]
    with torch.no_grad():
        output = subject.model.generate(**encoded, max_new_tokens=n_tokens, min_new_tokens=n_tokens,
                                        do_sample=False, pad_token_id=subject.pad_token_id)
    continuations = output[:, width:]
    mask = torch.cat([encoded["attention_mask"], torch.ones_like(continuations[:, :-1])], dim=1)
    positions = (width - 1 + torch.arange(n_tokens, device=output.device)).expand(len(prompts), -1)
    batch = TeacherForcedBatch(output[:, :-1], mask, positions, continuations, torch.ones_like(continuations).bool())
    return [subject.tokenizer.decode(row) for row in continuations.tolist()], batch


@torch.no_grad()
def _logprobs(subject: Subject, prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    items = tuple(ProbeItem(p, a, "logprob") for p, a in zip(prompts, answers))
    return teacher_forced_logprobs(subject, teacher_forced_batch(subject, Probe("edit", items))).cpu().numpy()


def _check_reaches_prediction(subject: Subject, block: int, text: str, subject_text: str, *, traced: bool) -> None:
    """A block that runs only at the program's last step writes its MLP output at the subject's
    token where no later block reads it: unless the subject ends the prompt, the edit could not
    change the prediction (its value shift comes out exactly 0), so it is refused."""
    steps = [k for k, b in enumerate(subject.program) if b == block]
    if steps == [len(subject.program) - 1] and not text.rstrip().endswith(subject_text):
        found = f"Causal tracing peaked at block {block}, which" if traced else f"Block {block}"
        raise NeuroMagicsError(
            f"{found} runs only at the last step: its MLP output at the subject's token reaches no later block, "
            "so the edit could not change the prediction; give an earlier --block.")


@with_lock
def edit(
    subject: Subject,
    prompt: str,
    subject_text: str,
    target: str,
    *,
    block: int | str | None = None,
    layer: int | str | None = None,
    paraphrases: Sequence[str] | None = None,
    neighbours: Sequence[str] = (),
    diff: bool = True,
    max_new_tokens: int = DEFAULT_NEW_TOKENS,
    corpus: str = "builtin",
    install: bool = True,
) -> EditResult:
    """Make the model answer ``target`` to ``prompt`` about ``subject_text`` (ROME).

    ``prompt`` holds ``{}`` where the subject goes, or contains ``subject_text``. ``block``:
    the original block whose MLP is edited (it acts at every step that runs it), or ``"auto"``
    (the default: causal tracing). ``layer`` is its old spelling, accepted only under the
    identity program. ``paraphrases``: other prompts for the same
    fact (default: the prompt behind unrelated contexts); ``neighbours``: other subjects put
    in the same prompt, which should keep their answers. Reports log p(new) and p(old) before
    and after and, with ``diff``, the before/after generations. Edits stack; ``undo_edit``
    reverts the last. With ``install=False`` the model is left unedited.
    """
    if subject.tokenizer is None:
        raise NeuroMagicsError("Editing reads prompts: the subject needs a tokenizer.")
    refuse_offloaded(subject.model, "Editing (ROME)")
    template = fact_template(prompt, subject_text)
    new_ids = target_tokens(subject, target)
    if isinstance(neighbours, str):
        neighbours = [neighbours]
    if any(not n or not n.strip() or n == subject_text for n in neighbours):
        raise NeuroMagicsError("Each --neighbour is another subject for the same prompt, e.g. \"Michael Jordan\".")
    block = explicit_layer_word(subject.program, layer, block, old="--layer", new="--block")
    block = "auto" if block is None else block
    if isinstance(block, str):
        if block != "auto":
            raise NeuroMagicsError(f"--block must be a block index or auto (got {block!r}).")
    elif isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < subject.n_layers:
        raise NeuroMagicsError(f"--block must be auto or a block 0-{subject.n_layers - 1} (got {block}).")
    text = template.replace("{}", subject_text)
    paraphrases = [c + text for c in PARAPHRASE_CONTEXTS] if paraphrases is None else list(paraphrases)
    for paraphrase in paraphrases:
        if subject_text not in paraphrase:
            raise NeuroMagicsError(f"The paraphrase {paraphrase!r} does not mention the subject {subject_text!r}.")
    prompts = [text, *paraphrases, *(template.replace("{}", n) for n in neighbours)]
    groups = ["prompt"] + ["paraphrase"] * len(paraphrases) + ["neighbour"] * len(neighbours)
    contexts = [c + text for c in CONTEXT_PREFIXES]
    subject.encode(prompts + contexts)  # the context limit, before any work
    if block != "auto":
        _check_reaches_prediction(subject, block, text, subject_text, traced=False)

    if block == "auto":
        block = traced_block(subject, text, subject_text)
        _check_reaches_prediction(subject, block, text, subject_text, traced=True)
    old, old_batch = _old_answers(subject, prompts, len(new_ids))
    with torch.no_grad():
        new_before = _logprobs(subject, prompts, [target] * len(prompts))
        old_before = teacher_forced_logprobs(subject, old_batch).cpu().numpy()
    key = subject_key(subject, block, contexts, subject_text, target)
    delta, fit = optimise_value(subject, block, contexts, subject_text, target)
    u, w = rank_one_factors(key, delta, key_second_moment(subject, block, corpus))
    pieces = subject.token_pieces(new_ids)
    description = f"ROME at block {block}: {text!r} -> {target!r}" + (
        f" ({len(pieces)} tokens: {' + '.join(map(repr, pieces))})" if len(pieces) > 1 else "")
    intervention = _edit(subject, {"block": block, "subject": subject_text, "template": template, "target": target,
                                   "u": u.cpu().tolist(), "w": w.cpu().tolist()}, description)
    with intervention.applied(subject):
        new_after = _logprobs(subject, prompts, [target] * len(prompts))
        with torch.no_grad():
            old_after = teacher_forced_logprobs(subject, old_batch).cpu().numpy()
        metadata = run_metadata(subject, prompts, block=block, subject_text=subject_text, target=target, corpus=corpus)
    comparison = None
    if diff:
        comparison = compare(subject, lambda: intervention.applied(subject), prompts, max_new_tokens=max_new_tokens,
                             label_after=f"edit {subject_text} -> {target.strip()}")
    if install:
        intervention.install(subject)
    return EditResult(
        block=block, subject_text=subject_text, template=template, target=target, target_pieces=pieces,
        prompts=prompts, groups=groups, old_answers=old, new_before=new_before, new_after=new_after,
        old_before=old_before, old_after=old_after, key=key.cpu().numpy(), delta=delta.cpu().numpy(),
        fit_logprob=fit, diff=comparison, metadata=metadata,
    )


@with_lock
def undo_edit(subject: Subject) -> Intervention:
    """Revert the most recent edit (bit-identical); returns it."""
    edits = active_interventions(subject, "edit")
    if not edits:
        raise NeuroMagicsError("No edit to undo: nothing was edited (or everything was reset).")
    subject.remove_intervention(edits[-1])
    return edits[-1]
