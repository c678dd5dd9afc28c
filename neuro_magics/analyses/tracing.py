"""Causal tracing (Meng et al., ROME): where does the model recall a fact about a subject?

The corrupt run is the same prompt with Gaussian noise (``noise`` x the standard deviation
of the subject's own token embeddings) added to the subject's embeddings, several noise
samples at once. Restoring one clean state shows where the fact lives: the residual
stream entering a step at one position, or the attention / MLP contributions of a window
of steps centred on it. Like patching, every cell starts from the cached corrupt state at
the first step it changes, and a step's cells run as rows of one batched forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.answers import answer_token_ids, encode_one, metric_values, subject_positions, top_tokens
from ..core.errors import NeuroMagicsError
from ..core.results import Result, run_metadata
from ..core.runner import Capture, Edit, prepare, run
from ..core.subject import Subject, with_lock
from ..core.sweep import sweep

TRACE_SITES = ("resid_pre", "attn_out", "mlp_out")


@with_lock
@torch.no_grad()
def trace(
    subject: Subject,
    prompt: str,
    subject_text: str,
    *,
    answer: str | None = None,
    noise: float = 3.0,
    samples: int = 5,
    window: int = 10,
    seed: int = 0,
    top_k: int = 5,
    batch_size: int = 64,
    progress: bool = True,
) -> TraceResult:
    """Normalised restoration effect on p(answer) per step x position for the residual stream,
    attention windows and MLP windows. ``answer`` defaults to the model's clean top token."""
    if samples < 1 or window < 1 or not noise > 0:
        raise NeuroMagicsError("samples and window must be at least 1 and noise positive.")
    if not 1 <= top_k <= subject.vocab_size:
        raise NeuroMagicsError(f"top_k must be between 1 and {subject.vocab_size} (got {top_k}).")
    if batch_size < 1:
        raise NeuroMagicsError(f"batch_size must be at least 1 (got {batch_size}).")
    ids = encode_one(subject, prompt, "clean")
    positions = subject_positions(subject, prompt, subject_text)
    given_answer = answer_token_ids(subject, [answer]) if answer is not None else None
    inputs = prepare(subject, ids)
    clean = run(subject, inputs, capture=Capture(sites=TRACE_SITES, device=subject.device), logits_at="last")
    answer_ids = given_answer or [int(clean.logits[0, -1].argmax())]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    embeddings = inputs.embeddings.expand(samples, -1, -1).clone()
    scale = noise * float(embeddings[0, positions].float().std())
    shape = (samples, len(positions), embeddings.shape[-1])
    embeddings[:, positions] += scale * torch.randn(shape, generator=generator).to(embeddings)
    corrupt = run(subject, inputs, resid=embeddings, capture=Capture(sites=("resid_pre",), device=subject.device),
                  logits_at="last")
    clean_prob = metric_values(clean.logits[:, -1], answer_ids, "prob").item()
    corrupt_prob = metric_values(corrupt.logits[:, -1], answer_ids, "prob").mean().item()
    if clean_prob == corrupt_prob:
        raise NeuroMagicsError("Noising the subject does not change p(answer), so there is nothing to trace.")

    n_steps, n_tokens = len(subject.program), ids.shape[1]
    probs = np.full((len(TRACE_SITES), n_steps, n_tokens), np.nan, dtype=np.float32)
    cells_per_run = max(1, batch_size // samples)
    batches = [(s, step, list(range(first, min(first + cells_per_run, n_tokens))))
               for s in range(len(TRACE_SITES)) for step in range(n_steps) for first in range(0, n_tokens, cells_per_run)]

    def work(batch: tuple[int, int, list[int]]) -> int:
        s, step, cols = batch
        logits = _restored_logits(subject, inputs, clean.captures, corrupt.captures["resid_pre"],
                                  TRACE_SITES[s], step, cols, window)
        probs[s, step, cols] = metric_values(logits, answer_ids, "prob").view(len(cols), samples).mean(1).cpu().numpy()
        return len(cols)

    interrupted = sweep(batches, work, total=probs.size, desc="causal trace", progress=progress)

    ids_k, probs_k = top_tokens(clean.logits[:, -1], top_k)
    corrupt_k = top_tokens(corrupt.logits[:, -1].float().softmax(-1).mean(0, keepdim=True).log(), top_k)
    return TraceResult(
        tokens=subject.token_pieces(ids[0].tolist()), subject_positions=positions, answer=subject.token_pieces(answer_ids)[0],
        steps=list(subject.program.steps), clean_prob=clean_prob, corrupt_prob=corrupt_prob, probs=probs,
        clean_topk=(subject.token_pieces(ids_k[0].tolist()), probs_k[0].tolist()),
        corrupt_topk=(subject.token_pieces(corrupt_k[0][0].tolist()), corrupt_k[1][0].tolist()),
        metadata=run_metadata(subject, [prompt], subject_text=subject_text, noise=noise, noise_std=scale / noise,
                              samples=samples, window=window, seed=seed, interrupted=interrupted),
    )


def _restored_logits(subject, inputs, clean_states, corrupt_pre, site, step, cols, window) -> torch.Tensor:
    """One batched run: rows are (cell, noise sample); each cell restores ``site`` at ``cols[c]``
    (for attn/mlp over the window of steps centred on ``step``)."""
    samples = corrupt_pre.shape[1]
    if site == "resid_pre":
        start, steps = step, [step]
    else:
        start = max(0, step - window // 2)
        steps = list(range(start, min(len(subject.program), step - (-window // 2))))
    resid = corrupt_pre[start].repeat(len(cols), 1, 1)
    # Row c * samples + s restores position cols[c]: one edit per step carries every cell.
    rows = torch.arange(len(cols) * samples, device=resid.device)
    positions = torch.as_tensor(cols, device=resid.device).repeat_interleave(samples)
    if site == "resid_pre":
        resid[rows, positions] = clean_states[site][step][0, positions]
        edits = []
    else:
        edits = [Edit(step=k, site=site, op="replace", value=clean_states[site][k][0, positions], rows=rows,
                      positions=positions) for k in steps]
    return run(subject, inputs, start=start, resid=resid, edits=edits, logits_at="last").logits[:, -1]


@dataclass(kw_only=True, repr=False, eq=False)
class TraceResult(Result):
    """Causal-tracing effects ``[site, step, position]`` for resid_pre, attention and MLP windows.

    ``probs[site, step, position]`` is p(answer) with that clean state restored into the
    noised run; ``effect`` normalises it between the noised and the clean probability.
    """

    kind = "trace"

    tokens: list[str]
    subject_positions: list[int]
    answer: str
    steps: list[int]  # the block each program step ran
    clean_prob: float
    corrupt_prob: float
    probs: np.ndarray  # [TRACE_SITES, steps, positions]
    clean_topk: tuple[list[str], list[float]]  # (tokens, probs) of the next token, clean run
    corrupt_topk: tuple[list[str], list[float]]  # and averaged over the noised runs
    metadata: dict[str, Any]

    def __post_init__(self) -> None:
        self.tokens, self.subject_positions = list(self.tokens), [int(p) for p in self.subject_positions]
        self.steps = [int(s) for s in self.steps]
        self.clean_prob, self.corrupt_prob = float(self.clean_prob), float(self.corrupt_prob)
        self.clean_topk = (list(self.clean_topk[0]), list(self.clean_topk[1]))
        self.corrupt_topk = (list(self.corrupt_topk[0]), list(self.corrupt_topk[1]))

    @property
    def effect(self) -> np.ndarray:
        return ((self.probs - self.corrupt_prob) / (self.clean_prob - self.corrupt_prob)).astype(np.float32)

    @property
    def col_labels(self) -> list[str]:
        return [f"{t}*" if i in self.subject_positions else t for i, t in enumerate(self.tokens)]

    @property
    def row_labels(self) -> list[str]:
        identity = self.steps == list(range(len(self.steps)))
        return [str(k) if identity else f"{k} (block {b})" for k, b in enumerate(self.steps)]

    def to_numpy(self) -> np.ndarray:
        """[3, steps, positions]: normalised effects for resid_pre, attention windows, MLP windows."""
        return self.effect

    def to_pandas(self):
        import pandas as pd

        effect = self.effect
        return pd.DataFrame([
            {"site": site, "step": k, "block": block, "position": p, "token": token,
             "subject": p in self.subject_positions, "prob": float(self.probs[s, k, p]), "effect": float(effect[s, k, p])}
            for s, site in enumerate(TRACE_SITES) for k, block in enumerate(self.steps) for p, token in enumerate(self.tokens)
        ])

    @property
    def title(self) -> str:
        return f"causal trace of p({self.answer!r}): restoring clean states into the noised-subject run"

    def __repr__(self) -> str:
        effect = self.effect
        text = f"TraceResult(p({self.answer!r}): clean {self.clean_prob:.3f}, noised {self.corrupt_prob:.3f}"
        for s, site in enumerate(TRACE_SITES):
            if np.isfinite(effect[s]).any():
                k, p = np.unravel_index(np.nanargmax(effect[s]), effect[s].shape)
                text += f"; {site} peak {effect[s, k, p]:.2f} at step {k}, {self.tokens[p]!r}"
        return text + ")"

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"probs": self.probs}

    def _fields(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "subject_positions": self.subject_positions, "answer": self.answer,
                "steps": self.steps, "clean_prob": self.clean_prob, "corrupt_prob": self.corrupt_prob,
                "clean_topk": self.clean_topk, "corrupt_topk": self.corrupt_topk}

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> TraceResult:
        return cls(**fields, probs=arrays["probs"], metadata=metadata)
