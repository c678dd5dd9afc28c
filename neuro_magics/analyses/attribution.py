"""Attribution: which input tokens and which components made the model say this.

Input attribution works on the residual stream entering the first program step (the token
embeddings, with the family's embedding scale and, for GPT-2, position embeddings). The
scored function is the runner under the subject's layer program and active interventions,
so every method sees the model exactly as it is:

- saliency: the L2 norm of the gradient at each token (unsigned);
- input x gradient: ``sum_d x * grad`` per token;
- integrated gradients (Gauss-Legendre, as Captum's ``IntegratedGradients``, all steps in one
  batch; written here because importing ``captum.attr`` loads IPython and matplotlib, which
  the engine never imports; a test checks it against Captum): the path integral from a
  baseline (pad-token or zero embeddings); its
  completeness gap ``|sum of attributions - (f(x) - f(baseline))|`` is reported. The first
  token keeps its own embedding on the path by default: most models park an outsized
  "attention sink" state there (the default model's residual norm is ~22,000 at position 0),
  and growing it along the path makes the integrand jump: on the default model the gap was
  547% at 32 steps with it moved, 0.7% with it kept;
- occlusion: ``f(x) - f(x with a token or span set to the baseline)``, every span one row of
  one batched run;
- attention rollout (Abnar & Zuidema): ``0.5 (A + I)`` averaged over heads, multiplied over
  the program's steps (it does not depend on the target).

The target is the target token's log-probability, or with a foil ``logit(target) -
logit(foil)``; by default the model's own next token. With ``generate=N`` the model continues
greedily and every generated token is a target: a source x generated-token matrix.

Direct logit attribution splits the (pre-softcap) logit of the target, minus the foil's,
into what the embedding, every head (per source position too), attention bias and MLP wrote
into the residual stream, read through the final norm with its scale frozen at the actual
run (as TransformerLens does): the parts sum to the logit difference.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..core.adapters import weight_matrix
from ..core.errors import NeuroMagicsError
from ..core.results import Result, run_metadata
from ..core.runner import Capture, RunInputs, prepare, run
from ..core.subject import Subject, with_lock
from ..core.sweep import sweep
from ..core import memory

METHODS = ("ig", "saliency", "input_x_grad", "occlusion", "rollout")
BASELINES = ("pad", "zero")
#: Methods that need one backward pass per target (the others score all targets at once).
GRADIENT_METHODS = ("ig", "saliency", "input_x_grad")


@dataclass(frozen=True)
class _Target:
    """One thing to explain: the token ``token_id`` predicted at ``position`` (vs ``foil_id``)."""

    position: int
    token_id: int
    foil_id: int | None


@with_lock
def attribute(
    subject: Subject,
    prompt: str,
    *,
    target: str | None = None,
    foil: str | None = None,
    method: str | Sequence[str] = "all",
    steps: int = 32,
    generate: int = 0,
    baseline: str = "pad",
    keep_first: bool = True,
    spans: Sequence[tuple[int, int]] | None = None,
    dla: bool = True,
    batch_size: int = 64,
    progress: bool = True,
) -> AttributionResult:
    """Attribute the model's next token (or ``target``, or each of ``generate`` greedy tokens)
    to the prompt's tokens by ``method`` (one of ``METHODS``, a list, or "all"), and split its
    logit (minus ``foil``'s) into components by direct logit attribution.

    ``steps``: integrated-gradient steps (one batch). ``baseline``: "pad" (the pad token's
    embedding at every position) or "zero"; ``keep_first``: integrated gradients leave the
    first token (the usual attention sink) as it is, so its IG is 0. ``spans``: ``[(start, end), ...]`` token ranges
    (end exclusive) that occlusion removes together; default every token alone.
    Interrupting keeps the finished targets (the rest are NaN); the model is left untouched.
    """
    methods = _methods(method)
    if subject.tokenizer is None:
        raise NeuroMagicsError("This subject has no tokenizer; attribution needs a text prompt.")
    if not isinstance(prompt, str) or not prompt.strip():
        raise NeuroMagicsError("Empty prompt: give the text whose next token you want explained.")
    if baseline not in BASELINES:
        raise NeuroMagicsError(f"Unknown baseline {baseline!r}: use one of {', '.join(BASELINES)}.")
    if not isinstance(steps, int) or steps < 1:
        raise NeuroMagicsError(f"--steps must be at least 1 (got {steps}).")
    if not isinstance(generate, int) or generate < 0:
        raise NeuroMagicsError(f"--generate must be 0 or more tokens (got {generate}).")
    if batch_size < 1:
        raise NeuroMagicsError(f"batch_size must be at least 1 (got {batch_size}).")
    if generate and (target is not None or foil is not None):
        raise NeuroMagicsError("--generate explains the tokens the model writes itself: drop --target and --foil.")
    target_id = _single_token(subject, target, "target") if target is not None else None
    foil_id = _single_token(subject, foil, "foil") if foil is not None else None
    if target_id is not None and target_id == foil_id:
        raise NeuroMagicsError(
            f"The target and the foil are the same token ({target!r}): logit(target) - logit(foil) is 0 for every "
            "input; pick a foil the model might say instead.")
    prompt_ids = subject.encode(prompt)["input_ids"]
    n_prompt = prompt_ids.shape[1]
    context = subject.context_length
    if generate and context is not None and n_prompt + generate > context:
        raise NeuroMagicsError(f"The prompt ({n_prompt} tokens) plus {generate} generated tokens exceed the "
                               f"{context}-token context: lower --generate.")
    _spans(spans, n_prompt + max(generate - 1, 0))  # checked again below if generation stops early

    # rollout and per-source DLA need the weights HF's eager attention forms; the gradient methods
    # and occlusion run the model's own attention (SDPA's backward is cheaper)
    needs_patterns = dla or "rollout" in methods
    with subject.attention_implementation("eager") if needs_patterns else contextlib.nullcontext():
        generated = _greedy(subject, prompt_ids, generate) if generate else []
        full_ids = torch.cat([prompt_ids, torch.as_tensor([generated], dtype=prompt_ids.dtype,
                                                           device=prompt_ids.device)], dim=1)
        sequence_ids = full_ids[:, : n_prompt + max(len(generated) - 1, 0)]  # the last token is never a source
        n_sources = sequence_ids.shape[1]
        source_spans = _spans(spans, n_sources)
        inputs = prepare(subject, sequence_ids)
        if generate:
            targets = [_Target(n_prompt - 1 + k, token, None) for k, token in enumerate(generated)]
        else:
            if target_id is None:
                with torch.no_grad():
                    logits = run(subject, inputs, logits_at="last").logits[0, -1]
                target_id = int(logits.argmax())
                if target_id == foil_id:
                    raise NeuroMagicsError(
                        f"The model's own next token is the foil {foil!r}: give --target, the token to contrast with it.")
            targets = [_Target(n_prompt - 1, target_id, foil_id)]

        baseline_embeddings = _baseline(subject, sequence_ids, baseline)
        path_start = baseline_embeddings.clone()
        if keep_first:
            path_start[:, 0] = inputs.embeddings[:, 0]
        score = _scorer(subject, inputs, targets)
        gradient_methods = [m for m in methods if m in GRADIENT_METHODS]
        # f(x) comes with the gradient where saliency or input x gradient run and nothing needs it
        # before them; integrated gradients and occlusion need it first, and IG f(baseline) too.
        plain_gradient = bool({"saliency", "input_x_grad"} & set(methods))
        values_from_gradient = plain_gradient and not {"ig", "occlusion"} & set(methods)
        values = np.full(len(targets), np.nan, dtype=np.float32)
        baseline_values = np.full(len(targets), np.nan, dtype=np.float32)
        with torch.no_grad():
            if not values_from_gradient:
                values = score(inputs.embeddings).float()[0].cpu().numpy()
            if "ig" in methods:
                baseline_values = score(path_start).float()[0].cpu().numpy()
        scores = {m: np.full((len(targets), n_sources), np.nan, dtype=np.float32) for m in methods}
        ig_gap = np.full(len(targets), np.nan, dtype=np.float32)
        if "occlusion" in scores:
            scores["occlusion"][:] = _occlusion(score, inputs.embeddings, baseline_embeddings, source_spans,
                                               values, batch_size)
        patterns = _attention_patterns(subject, inputs) if "rollout" in scores or dla else None
        if "rollout" in scores:
            scores["rollout"][:] = _rollout(patterns)[[t.position for t in targets]]

        def work(k: int) -> int:
            one = _scorer(subject, inputs, [targets[k]])
            if plain_gradient:
                gradient, value = _gradient(one, inputs.embeddings)
                if values_from_gradient:
                    values[k] = value
                if "saliency" in scores:
                    scores["saliency"][k] = gradient.norm(dim=-1).cpu().numpy()
                if "input_x_grad" in scores:
                    scores["input_x_grad"][k] = (gradient * inputs.embeddings[0].float()).sum(-1).cpu().numpy()
            if "ig" in scores:
                scores["ig"][k], ig_gap[k] = _integrated_gradients(one, inputs.embeddings, path_start, steps,
                                                                   float(values[k]) - float(baseline_values[k]))
            return 1

        interrupted = False
        if gradient_methods:
            interrupted = sweep(range(len(targets)), work, total=len(targets), desc="attribute", unit="target",
                                progress=progress)
        decomposition = _direct_logit_attribution(subject, inputs, targets[0]) if dla else None

    pieces = subject.token_pieces(full_ids[0].tolist())
    metric = "logprob" if targets[0].foil_id is None else "logit_diff"
    metadata = run_metadata(
        subject, [prompt], target=target, foil=foil, methods=list(methods), steps=steps, generate=generate,
        baseline=baseline, keep_first=keep_first, spans=[list(s) for s in source_spans], interrupted=interrupted,
    )
    return AttributionResult(
        prompt=prompt, tokens=pieces, token_ids=full_ids[0].cpu().numpy(), n_prompt=n_prompt,
        target_positions=[t.position for t in targets], target_ids=[t.token_id for t in targets],
        targets=subject.token_pieces([t.token_id for t in targets]),
        foil=None if foil_id is None else subject.token_pieces([foil_id])[0], foil_id=foil_id,
        metric=metric, methods=list(methods), steps=steps, baseline=baseline, spans=source_spans,
        scores=scores, values=values, baseline_values=baseline_values, ig_gap=ig_gap,
        dla_parts=decomposition, program_steps=list(subject.program.steps), metadata=metadata,
        attention=None if patterns is None or patterns.numel() * 2 > memory.MAX_ATTENTION_BYTES
        else patterns.cpu().numpy().astype(np.float16),
        n_kv_heads=subject.n_kv_heads,
    )


def _single_token(subject: Subject, text: str, role: str) -> int:
    """The id of a one-token ``--target`` / ``--foil``; anything else is one line showing its split."""
    if not isinstance(text, str) or not text:
        raise NeuroMagicsError(f"The {role} is empty: give the next token to explain, e.g. ' Paris' (mind the space).")
    pieces = subject.tokenizer(text, add_special_tokens=False)["input_ids"]
    if not pieces:
        raise NeuroMagicsError(f"The {role} {text!r} encodes to no token: give a word or a piece of one.")
    if len(pieces) != 1:
        split = " + ".join(repr(p) for p in subject.token_pieces(pieces))
        raise NeuroMagicsError(
            f"The {role} {text!r} is {len(pieces)} tokens ({split}); it must be one token: use its first "
            f"piece ({subject.token_pieces(pieces[:1])[0]!r}), or a word that is one token (often with a leading space).")
    return int(pieces[0])


def _methods(method: str | Sequence[str]) -> list[str]:
    chosen = list(METHODS) if method == "all" else [method] if isinstance(method, str) else list(method)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise NeuroMagicsError(f"Unknown method {(unknown or [''])[0]!r}: use one of {', '.join(METHODS)} or all.")
    return list(dict.fromkeys(chosen))


def _spans(spans: Sequence[tuple[int, int]] | None, n_sources: int) -> list[tuple[int, int]]:
    """Occlusion groups: the user's ranges (checked), else every token alone."""
    if spans is None:
        return [(p, p + 1) for p in range(n_sources)]
    checked = []
    for span in spans:
        start, end = (int(v) for v in span)
        if not 0 <= start < end <= n_sources:
            raise NeuroMagicsError(f"Span {start}:{end} is not inside the {n_sources} source tokens: give START:END "
                                   f"with 0 <= START < END <= {n_sources}.")
        checked.append((start, end))
    if not checked:
        raise NeuroMagicsError("No spans given: give START:END token ranges, or leave spans out for every token.")
    return checked


@torch.no_grad()
def _greedy(subject: Subject, prompt_ids: torch.Tensor, n_tokens: int) -> list[int]:
    """The model's own greedy continuation under the current program and interventions
    (stops after an end-of-sequence token, which is kept as a target)."""
    output = subject.model.generate(input_ids=prompt_ids, attention_mask=torch.ones_like(prompt_ids),
                                    max_new_tokens=n_tokens, do_sample=False, pad_token_id=subject.pad_token_id,
                                    use_cache=True)
    return [int(t) for t in output[0, prompt_ids.shape[1]:]]


def _baseline(subject: Subject, sequence_ids: torch.Tensor, baseline: str) -> torch.Tensor:
    """The stream entering step 0 for the baseline input: the pad token at every position
    (position embeddings kept where the family adds them), or zeros."""
    if baseline == "zero":
        return torch.zeros_like(prepare(subject, sequence_ids).embeddings)
    return prepare(subject, torch.full_like(sequence_ids, subject.pad_token_id)).embeddings


def _scorer(subject: Subject, inputs: RunInputs, targets: Sequence[_Target]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``embeddings [rows, T, d] -> [rows, targets]``: each target's log-prob, or its logit
    minus the foil's, from one runner pass under the current program and interventions."""
    positions = torch.as_tensor([t.position for t in targets], device=subject.device)
    token_ids = torch.as_tensor([t.token_id for t in targets], device=subject.device)
    foil_ids = [t.foil_id for t in targets]

    def score(embeddings: torch.Tensor) -> torch.Tensor:
        logits = run(subject, inputs, resid=embeddings, logits_at=positions, grad=torch.is_grad_enabled()).logits
        logits = logits if logits.dtype == torch.float64 else logits.float()
        chosen = logits[:, torch.arange(len(targets)), token_ids]
        if foil_ids[0] is None:
            return chosen - torch.logsumexp(logits, dim=-1)
        return chosen - logits[:, torch.arange(len(targets)), torch.as_tensor(foil_ids, device=logits.device)]

    return score


def _gradient(score: Callable, embeddings: torch.Tensor) -> tuple[torch.Tensor, float]:
    """d score / d embeddings ``[T, d]`` for a one-target scorer (no parameter gradients), and
    the score itself (the same forward: no second pass for f(x))."""
    leaf = embeddings.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = score(leaf).sum()
        (gradient,) = torch.autograd.grad(value, leaf)
    return gradient[0].float(), float(value.detach().float())


def _integrated_gradients(score: Callable, embeddings: torch.Tensor, start: torch.Tensor, steps: int,
                          difference: float) -> tuple[np.ndarray, float]:
    """Integrated gradients from ``start`` to ``embeddings`` by the Gauss-Legendre rule (Captum's
    default), every step one row of a single batch, summed over the embedding dimension; and the
    completeness gap |sum - (f(x) - f(start))| (``difference`` is f(x) - f(start))."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.as_tensor((nodes + 1) / 2, dtype=embeddings.dtype, device=embeddings.device)[:, None, None]
    weights = torch.as_tensor(weights / 2, dtype=torch.float64, device=embeddings.device)[:, None, None]
    change = (embeddings - start).detach()
    path = (start.detach() + alphas * change).requires_grad_(True)  # [steps, T, d]
    with torch.enable_grad():
        (gradients,) = torch.autograd.grad(score(path)[:, 0].sum(), path)
    per_token = ((weights * gradients.double()).sum(0) * change[0].double()).sum(-1)
    return per_token.float().cpu().numpy(), abs(float(per_token.sum()) - difference)


@torch.no_grad()
def _occlusion(score: Callable, embeddings: torch.Tensor, baseline: torch.Tensor, spans: list[tuple[int, int]],
               values: np.ndarray, batch_size: int) -> np.ndarray:
    """``f(x) - f(x with the span set to the baseline)`` per span and target, given whole to
    every token of the span (not divided among them: a span's tokens are occluded together, so
    each is credited with the span's effect); each span is one row of a batched run."""
    n_targets, n_sources = len(values), embeddings.shape[1]
    result = np.zeros((n_targets, n_sources), dtype=np.float32)
    for first in range(0, len(spans), batch_size):
        chunk = spans[first: first + batch_size]
        rows = embeddings.expand(len(chunk), -1, -1).clone()
        for row, (start, end) in enumerate(chunk):
            rows[row, start:end] = baseline[0, start:end]
        occluded = score(rows).float().cpu().numpy()  # [rows, targets]
        for row, (start, end) in enumerate(chunk):
            result[:, start:end] = (values - occluded[row])[:, None]
    return result


@torch.no_grad()
def _attention_patterns(subject: Subject, inputs: RunInputs) -> torch.Tensor:
    """Every step's attention weights ``[steps, heads, query, key]`` (float64), from HF's eager attention."""
    out = run(subject, inputs, capture=Capture(sites=("attn_weights",), dtype=torch.float64), logits_at=None)
    return out.captures["attn_weights"][:, 0]


def _rollout(patterns: torch.Tensor) -> np.ndarray:
    """Attention rollout ``[query, source]``: the product over steps of ``0.5 (mean_h A + I)``."""
    weights = patterns.mean(1)  # [steps, T, T]
    identity = torch.eye(weights.shape[-1], dtype=weights.dtype)
    rollout = identity
    for step_weights in weights:
        rollout = (0.5 * (step_weights + identity)) @ rollout
    return rollout.float().numpy()


# -- direct logit attribution -----------------------------------------------------------------------


@dataclass
class DLAParts:
    """Direct logit attribution of one target, per program step."""

    embed: float
    heads: np.ndarray | None  # [steps, heads]; None where the attention output is not linear in heads
    head_sources: np.ndarray | None  # [steps, heads, sources]: what each head moved from each position;
    # NaN for a head whose output an intervention replaced (it no longer is weights x values); None also
    # for GPT-2, whose blocks take their KV cache by position, so its values cannot be recorded
    attn: np.ndarray  # [steps]: each attention layer's whole output (heads + bias)
    attn_bias: np.ndarray  # [steps]
    mlp: np.ndarray  # [steps]
    bias: float  # the final norm's bias and the unembedding's bias
    other: float  # what interventions added to the stream outside attention and MLP (steering)
    total: float  # the model's (pre-softcap) logit difference at the actual run

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {"dla_attn": self.attn, "dla_attn_bias": self.attn_bias, "dla_mlp": self.mlp,
                  "dla_scalars": np.array([self.embed, self.bias, self.other, self.total], dtype=np.float64)}
        if self.heads is not None:
            arrays["dla_heads"] = self.heads
        if self.head_sources is not None:
            arrays["dla_head_sources"] = self.head_sources
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> DLAParts | None:
        if "dla_scalars" not in arrays:
            return None
        embed, bias, other, total = (float(v) for v in arrays["dla_scalars"])
        return cls(embed=embed, heads=arrays.get("dla_heads"), head_sources=arrays.get("dla_head_sources"),
                   attn=arrays["dla_attn"], attn_bias=arrays["dla_attn_bias"], mlp=arrays["dla_mlp"], bias=bias,
                   other=other, total=total)


def _frozen_readout(subject: Subject, final: torch.Tensor, target: _Target) -> tuple[torch.Tensor, float]:
    """``(r, constant)`` with ``logit difference = final . r + constant``, where ``r`` reads any
    part of the stream through the final norm with its scale frozen at ``final`` [d] (float64).

    LayerNorm: ``w (x - mean x) s + b``; RMS norms: ``w_eff x s``, with the effective weight
    read off the module itself (``norm(ones) * sqrt(1 + eps)``, so Gemma's ``1 + w`` needs no
    special case)."""
    model, adapter = subject.model, subject.adapter
    norm = adapter.final_norm_module(model)
    unembedding = adapter.unembedding_module(model)
    direction = unembedding.weight[target.token_id].double()
    if target.foil_id is not None:
        direction = direction - unembedding.weight[target.foil_id].double()
    x = final.double()
    constant = 0.0
    if isinstance(norm, nn.LayerNorm):
        scale = 1.0 / torch.sqrt(x.var(unbiased=False) + norm.eps)
        weighted = norm.weight.double() * direction
        readout = scale * (weighted - weighted.mean())
        if norm.bias is not None:
            constant += float(norm.bias.double() @ direction)
    else:
        eps = getattr(norm, "variance_epsilon", None)
        eps = getattr(norm, "eps", None) if eps is None else eps
        if eps is None:
            raise NeuroMagicsError(f"Cannot freeze the scale of {type(norm).__name__}: it names no epsilon.")
        with torch.no_grad():
            ones = torch.ones(1, 1, x.shape[-1], device=final.device, dtype=subject.dtype)
            weight = norm(ones)[0, 0].double() * math.sqrt(1.0 + eps)
        scale = 1.0 / torch.sqrt(x.pow(2).mean() + eps)
        readout = scale * weight * direction
    if getattr(unembedding, "bias", None) is not None:
        constant += float(unembedding.bias[target.token_id].double()
                          - (unembedding.bias[target.foil_id].double() if target.foil_id is not None else 0.0))
    return readout, constant


@torch.no_grad()
def _direct_logit_attribution(subject: Subject, inputs: RunInputs, target: _Target) -> DLAParts:
    """One run capturing, at the target's position, each step's attention and MLP outputs, each
    head's output (the output projection's input) and the attention weights; every part is
    then read through the frozen final norm. Per-source head parts use the values each
    attention handed its KV cache."""
    adapter, q = subject.adapter, target.position
    heads_split = adapter.attention == adapter.attn_weights  # Gemma2 norms the attention output first
    record_values = heads_split and not any(args for args, _ in inputs.block_calls)  # GPT-2 passes them by position
    sites = ("attn_out", "mlp_out") + (("heads", "attn_weights") if heads_split else ())
    out = run(subject, inputs, capture=Capture(sites=sites, positions=[q], device=subject.device), logits_at=None,
              record_keys_values=record_values)
    final = out.resid[0, q]
    readout, constant = _frozen_readout(subject, final, target)
    logits = adapter.unembedding_module(subject.model)(adapter.final_norm_module(subject.model)(out.resid[:, q]))[0]
    total = float(logits[target.token_id].double() - (logits[target.foil_id].double() if target.foil_id is not None
                                                      else 0.0))

    def read(tensor: torch.Tensor) -> np.ndarray:
        return (tensor.double() @ readout).cpu().numpy()

    captures = out.captures
    attn = read(captures["attn_out"][:, 0, 0])
    mlp = read(captures["mlp_out"][:, 0, 0])
    embed = float(read(inputs.embeddings[0, q]))
    # Interventions may add to the stream outside attention and MLP (steering at a block's
    # input or at the unembedding): with any active, the remainder is their part.
    decomposed = embed + attn.sum() + mlp.sum() + constant
    other = total - decomposed if subject.interventions else 0.0
    n_steps = len(attn)
    heads = head_sources = None
    attn_bias = np.zeros(n_steps)
    if heads_split:
        steps = tuple(subject.program.steps)
        heads = np.zeros((n_steps, subject.n_heads))
        head_sources = np.zeros((n_steps, subject.n_heads, inputs.n_tokens)) if record_values else None
        for k, block in enumerate(steps):
            projection = adapter.output_projection(subject.blocks[block])
            per_head, bias = _per_head(projection, captures["heads"][k, 0, 0], subject.n_heads)
            heads[k], attn_bias[k] = read(per_head), float(read(bias))
            if record_values:
                values = out.keys_values[k][1][0]  # [kv_heads, T, head_dim]
                values = values.repeat_interleave(subject.n_heads // values.shape[0], dim=0)
                weights = captures["attn_weights"][k, 0, :, 0]  # [heads, T]
                moved = weights[..., None] * values  # [heads, T, head_dim]
                per_source, _ = _per_head(projection, moved.transpose(0, 1), subject.n_heads)  # [T, heads, d]
                head_sources[k] = read(per_source).T
                written = captures["heads"][k, 0, 0].double()  # [heads, head_dim]
                replaced = (moved.sum(1).double() - written).norm(dim=-1) > 0.05 * written.norm(dim=-1) + 1e-5
                head_sources[k, replaced.cpu().numpy()] = np.nan
    return DLAParts(embed=embed, heads=heads, head_sources=head_sources, attn=attn, attn_bias=attn_bias, mlp=mlp,
                    bias=constant, other=float(other), total=total)


def _per_head(projection: nn.Module, split: torch.Tensor, n_heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What each head writes through the unmodified output projection: ``split [..., heads,
    head_dim]`` -> ``[..., heads, d]`` (each head's slice alone, bias removed) and the bias. A
    plain linear projection with no hooks is one einsum with its weight cut into head blocks;
    anything else (a hooked LoRA or ablation, a quantized layer) runs the module itself on each
    head's slice alone, zeros elsewhere (``[..., heads, heads * head_dim]``: H times the work)."""
    head_dim = split.shape[-1]
    bias = projection(torch.zeros(1, n_heads * head_dim, dtype=split.dtype, device=split.device))[0]
    if _plain_linear(projection):
        weight = weight_matrix(projection).detach().to(split.dtype).view(-1, n_heads, head_dim)  # [d, heads, hd]
        return torch.einsum("...hk,dhk->...hd", split, weight), bias
    masked = torch.zeros(*split.shape[:-2], n_heads, n_heads * head_dim, dtype=split.dtype, device=split.device)
    for h in range(n_heads):
        masked[..., h, h * head_dim:(h + 1) * head_dim] = split[..., h, :]
    return projection(masked) - bias, bias


def _plain_linear(module: nn.Module) -> bool:
    """Whether ``module`` computes exactly ``x W^T + b`` from a weight held on a device: a bare
    ``nn.Linear`` or GPT-2's ``Conv1D`` with no hooks on it (accelerate's offloading is a hook)."""
    return ((type(module) is nn.Linear or type(module).__name__ == "Conv1D")
            and not module._forward_hooks and not module._forward_pre_hooks
            and not hasattr(module, "_hf_hook") and module.weight.device.type != "meta")


# -- the result ---------------------------------------------------------------------------------------


@dataclass(kw_only=True, repr=False, eq=False)
class AttributionResult(Result):
    """Attributions of one prompt: ``scores[method]`` is ``[targets, sources]`` (one row per
    explained token; sources are the prompt's tokens, then all generated but the last), and
    ``dla`` the direct logit attribution of the first target. ``attention`` holds every step's
    attention patterns (with DLA or rollout, up to ``MAX_ATTENTION_BYTES``) for the attention
    explorer; ``selected_head`` follows the head clicked in the widget's DLA map.

    ``values`` is the explained metric per target (``metric``: "logprob" or "logit_diff"),
    ``baseline_values`` the same where integrated gradients start (the baseline, with the
    first token kept unless ``keep_first=False``; NaN without integrated gradients), ``ig_gap``
    integrated gradients' completeness gap per target.
    """

    kind: ClassVar[str] = "attribution"

    prompt: str
    tokens: list[str]  # prompt tokens, then every generated token
    token_ids: np.ndarray
    n_prompt: int
    target_positions: list[int]  # the position whose logits predict each target
    target_ids: list[int]
    targets: list[str]
    foil: str | None
    foil_id: int | None
    metric: str
    methods: list[str]
    steps: int
    baseline: str
    spans: list[tuple[int, int]]
    scores: dict[str, np.ndarray]
    values: np.ndarray  # [targets]
    baseline_values: np.ndarray  # [targets]
    ig_gap: np.ndarray  # [targets]
    dla_parts: DLAParts | None
    program_steps: list[int]  # the block each program step ran
    metadata: dict[str, Any]
    attention: np.ndarray | None = None  # [steps, heads, query, key] float16, for the attention explorer
    n_kv_heads: int | None = None
    selected_head: dict[str, int] | None = field(default=None, init=False)  # the DLA head clicked in the widget

    def __post_init__(self) -> None:
        self.tokens, self.token_ids = list(self.tokens), np.asarray(self.token_ids, dtype=np.int64)
        self.n_prompt = int(self.n_prompt)
        self.target_positions = [int(p) for p in self.target_positions]
        self.target_ids, self.targets = [int(i) for i in self.target_ids], list(self.targets)
        self.foil_id = None if self.foil_id is None else int(self.foil_id)
        self.methods, self.steps = list(self.methods), int(self.steps)
        self.spans = [(int(a), int(b)) for a, b in self.spans]
        self.scores = {m: np.asarray(self.scores[m], dtype=np.float32) for m in self.methods}
        self.values = np.asarray(self.values, dtype=np.float32)
        self.baseline_values = np.asarray(self.baseline_values, dtype=np.float32)
        self.ig_gap = np.asarray(self.ig_gap, dtype=np.float32)
        self.program_steps = [int(s) for s in self.program_steps]

    # -- data -------------------------------------------------------------------------------

    @property
    def sources(self) -> list[str]:
        """The source tokens (the columns of every score matrix)."""
        return self.tokens[: self.n_sources]

    @property
    def n_sources(self) -> int:
        return self.scores[self.methods[0]].shape[1]

    @property
    def ig_relative_gap(self) -> np.ndarray:
        """The completeness gap over ``|f(x) - f(baseline)|`` per target."""
        return self.ig_gap / np.maximum(np.abs(self.values - self.baseline_values), 1e-12)

    def to_numpy(self, method: str | None = None) -> np.ndarray:
        """``[targets, sources]`` of one method (default: the first computed)."""
        method = method or self.methods[0]
        if method not in self.scores:
            raise NeuroMagicsError(f"No {method!r} attributions here: this result holds {', '.join(self.methods)}.")
        return self.scores[method]

    def to_pandas(self):
        """One row per (target, source) with every method as a column."""
        import pandas as pd

        n_targets, n_sources = len(self.targets), self.n_sources
        frame = pd.DataFrame({
            "target_index": np.repeat(np.arange(n_targets), n_sources),
            "target": np.repeat(self.targets, n_sources),
            "position": np.tile(np.arange(n_sources), n_targets),
            "token": self.sources * n_targets,
        })
        for method in self.methods:
            frame[method] = self.scores[method].reshape(-1)
        return frame

    @property
    def dla(self):
        """Direct logit attribution: one row per component (``component``: embed, head,
        attn_bias, attn (where heads cannot be split), mlp, bias, other), with ``layer`` (the
        program step), ``block``, ``head`` and ``value``; the values sum to ``dla_total``."""
        import pandas as pd

        parts = self.dla_parts
        if parts is None:
            raise NeuroMagicsError("This result was made without direct logit attribution (dla=False).")
        rows: list[tuple[str, int | None, int | None, int | None, float]] = [("embed", None, None, None, parts.embed)]
        for k, block in enumerate(self.program_steps):
            if parts.heads is not None:
                rows += [("head", k, block, h, float(v)) for h, v in enumerate(parts.heads[k])]
                if parts.attn_bias[k] != 0:
                    rows.append(("attn_bias", k, block, None, float(parts.attn_bias[k])))
            else:
                rows.append(("attn", k, block, None, float(parts.attn[k])))
            rows.append(("mlp", k, block, None, float(parts.mlp[k])))
        if parts.bias != 0:
            rows.append(("bias", None, None, None, parts.bias))
        if parts.other != 0:
            rows.append(("other", None, None, None, parts.other))
        frame = pd.DataFrame(rows, columns=["component", "layer", "block", "head", "value"])
        for column in ("layer", "block", "head"):
            frame[column] = frame[column].astype("Int64")
        return frame

    @property
    def dla_total(self) -> float:
        """The logit (difference) DLA splits: pre-softcap where the family has one."""
        if self.dla_parts is None:
            raise NeuroMagicsError("This result was made without direct logit attribution (dla=False).")
        return self.dla_parts.total

    @property
    def explained(self) -> str:
        what = "log p" if self.metric == "logprob" else "logit diff"
        if len(self.targets) > 1:
            return f"{what} of each of {len(self.targets)} generated tokens"
        return f"{what}({self.targets[0]!r}" + (f" vs {self.foil!r})" if self.foil is not None else ")")

    def __repr__(self) -> str:
        text = f"AttributionResult({self.explained}; {self.n_sources} source tokens; methods {', '.join(self.methods)}"
        if "ig" in self.scores and np.isfinite(self.ig_gap).any():
            text += f"; IG completeness gap {np.nanmax(self.ig_relative_gap):.2%}"
        first = self.scores[self.methods[0]][0]
        if np.isfinite(first).any():
            top = int(np.nanargmax(np.abs(first)))
            text += f"; top {self.methods[0]} source {self.sources[top]!r} ({first[top]:+.3g})"
        if self.dla_parts is not None:
            text += f"; DLA total {self.dla_parts.total:+.3f}"
        return text + ")"

    # -- persistence ----------------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"scores_{m}": self.scores[m] for m in self.methods}
        arrays.update(token_ids=self.token_ids, values=self.values, baseline_values=self.baseline_values,
                      ig_gap=self.ig_gap)
        if self.dla_parts is not None:
            arrays.update(self.dla_parts.arrays())
        if self.attention is not None:
            arrays["attention"] = self.attention
        return arrays

    def _fields(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt, "tokens": self.tokens, "n_prompt": self.n_prompt,
            "target_positions": self.target_positions, "target_ids": self.target_ids, "targets": self.targets,
            "foil": self.foil, "foil_id": self.foil_id, "metric": self.metric, "methods": self.methods,
            "steps": self.steps, "baseline": self.baseline, "spans": [list(s) for s in self.spans],
            "program_steps": self.program_steps, "n_kv_heads": self.n_kv_heads,
        }

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any],
                 metadata: dict[str, Any]) -> AttributionResult:
        return cls(**fields, token_ids=arrays["token_ids"],
                   scores={m: arrays[f"scores_{m}"] for m in fields["methods"]}, values=arrays["values"],
                   baseline_values=arrays["baseline_values"], ig_gap=arrays["ig_gap"],
                   dla_parts=DLAParts.from_arrays(arrays), attention=arrays.get("attention"), metadata=metadata)
