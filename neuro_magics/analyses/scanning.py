"""The scan ("fMRI"): what every step of the layer program does to every token, in one run.

One runner pass with captures gives the residual stream entering and leaving every step
(plus the attention / MLP contributions and neuron activations when asked); from those:
residual norms, cosine to the final state, Block Influence (1 - cos of a block's input
and output) and angular distance; and, with the logit lens, the top-k tokens, entropy and
probability / rank of a target token after every step. The lens unembeds (step, token)
rows in chunks and keeps only those reductions, so a full-vocabulary tensor for every
row never exists at once.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ..core.attention_patterns import head_scores
from ..core.errors import NeuroMagicsError, ProgramError
from ..core.programs import explicit_layer_word, parse_ranges
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.runner import Capture, prepare, run, unembed
from ..core.subject import Subject, with_lock
from ..core import memory

#: What ``--sites`` accepts, and the runner sites each one captures.
SITE_GROUPS = {
    "resid": ("resid_pre", "resid_post"),
    "attn": ("attn_out",),
    "mlp": ("mlp_out",),
    "neurons": ("neurons",),
}
DEFAULT_SITES = ("resid", "attn", "mlp")

#: Heatmap metrics: (name, label, scale, fmt, vmin, vmax). Lens metrics exist only with the lens.
LENS_METRICS = (
    ("target_prob", "lens p(target)", "sequential", ".4f", 0.0, 1.0),
    ("target_rank", "lens rank of target (1 = top; colours stop at 100)", "sequential", "d", 1.0, 100.0),
    ("entropy", "lens entropy (nats)", "sequential", ".3f", 0.0, None),
)
STREAM_METRICS = (
    ("norm", "residual norm (block output)", "sequential", ".4g", None, None),
    ("cos_final", "cosine to final state", "diverging", ".4f", -1.0, 1.0),
    ("block_influence", "block influence (1 - cos in/out)", "sequential", ".4f", None, None),
    ("angular_distance", "angular distance in/out (/pi)", "sequential", ".4f", None, None),
)

#: Rows x vocabulary entries one lens chunk may hold (2**24 floats = 64 MiB per temporary).
LENS_CHUNK_ELEMENTS = 2**24
#: Share of the free RAM a scan may plan to use (the rest is headroom for everything else).
MEMORY_FRACTION = 0.8


@dataclass(kw_only=True, repr=False, eq=False)
class ScanResult(Result):
    """A scan of one prompt: per program step (rows) and token (columns).

    ``tokens`` are the prompt's token strings, ``steps`` the program positions kept,
    ``blocks`` the original block each of them ran. ``to_numpy(name)`` gives a metric
    ``[steps, tokens]``, a site ``[steps, tokens, features]`` or ``"attention"``
    ``[steps, heads, query, key]``; ``to_pandas()`` one row per (step, token).
    ``selected`` follows the cell clicked in the widget, ``selected_head`` the head.
    """

    kind: ClassVar[str] = "scan"

    prompt: str
    tokens: list[str]
    token_ids: np.ndarray  # [tokens] int64
    steps: list[int]
    blocks: list[int]
    metric_names: list[str]
    metrics: np.ndarray  # [metrics, steps, tokens] float32
    captures: dict[str, np.ndarray]  # site -> [steps, tokens, features] float32
    metadata: dict[str, Any]
    target: str | None = None
    target_ids: np.ndarray | None = None  # [tokens] int64: the lens's target at each position
    top_ids: np.ndarray | None = None  # [steps, tokens, k] int64: the lens's top-k
    top_probs: np.ndarray | None = None  # [steps, tokens, k] float32
    vocab: dict[int, str] = field(default_factory=dict)  # token id -> string, for the ids above
    attention: np.ndarray | None = None  # [steps, heads, query, key] float32
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # head score -> [steps, heads]
    n_kv_heads: int | None = None
    selected: dict[str, Any] | None = field(default=None, init=False)
    selected_head: dict[str, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = list(self.tokens)
        self.token_ids = np.asarray(self.token_ids, dtype=np.int64)
        self.steps = [int(s) for s in self.steps]
        self.blocks = [int(b) for b in self.blocks]
        self.metric_names = list(self.metric_names)
        self.metrics = np.asarray(self.metrics, dtype=np.float32)
        self.captures = {site: np.asarray(a, dtype=np.float32) for site, a in self.captures.items()}
        self.target_ids = None if self.target_ids is None else np.asarray(self.target_ids, dtype=np.int64)
        self.top_ids = None if self.top_ids is None else np.asarray(self.top_ids, dtype=np.int64)
        self.top_probs = None if self.top_probs is None else np.asarray(self.top_probs, dtype=np.float32)
        self.vocab = dict(self.vocab or {})
        self.attention = None if self.attention is None else np.asarray(self.attention, dtype=np.float32)
        self.scores = {name: np.asarray(v, dtype=np.float32) for name, v in (self.scores or {}).items()}

    # -- data -------------------------------------------------------------------------

    @property
    def has_lens(self) -> bool:
        return self.top_ids is not None

    @property
    def row_labels(self) -> list[str]:
        """Step labels; a step that runs another block says which, e.g. ``12 (block 8)``."""
        program = self.metadata.get("program") or []
        if program == list(range(len(program))):
            return [str(s) for s in self.steps]
        return [f"{s} (block {b})" for s, b in zip(self.steps, self.blocks)]

    def metric(self, name: str) -> np.ndarray:
        """One metric, ``[steps, tokens]``."""
        if name not in self.metric_names:
            raise NeuroMagicsError(f"No metric {name!r} in this scan: use one of {', '.join(self.metric_names)}.")
        return self.metrics[self.metric_names.index(name)]

    def to_numpy(self, name: str | None = None) -> np.ndarray:
        """A metric ``[steps, tokens]``, a site ``[steps, tokens, features]`` (``resid`` is
        the block output), ``"attention"`` ``[steps, heads, query, key]``, or with no name
        every metric ``[metrics, steps, tokens]`` (order: ``metric_names``)."""
        if name is None:
            return self.metrics
        if name in self.metric_names:
            return self.metric(name)
        site = {"resid": "resid_post", "attn": "attn_out", "mlp": "mlp_out"}.get(name, name)
        if site in self.captures:
            return self.captures[site]
        if name == "attention" and self.attention is not None:
            return self.attention
        available = [*self.metric_names, *self.captures, *(["attention"] if self.attention is not None else [])]
        raise NeuroMagicsError(f"This scan has no {name!r}: it holds {', '.join(available)}.")

    def top_tokens(self, step_index: int, position: int) -> list[tuple[str, float]]:
        """The lens's top-k (token, probability) at one cell (row index, token position)."""
        if not self.has_lens:
            raise NeuroMagicsError("This scan ran without the logit lens: scan again with --lens.")
        return [
            (self.vocab[int(i)], float(p))
            for i, p in zip(self.top_ids[step_index, position], self.top_probs[step_index, position])
        ]

    def layer_summary(self):
        """One row per step: Block Influence and angular distance averaged over tokens
        (ShortGPT's BI and the angular distance of the layer-pruning literature)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "step": self.steps,
                "block": self.blocks,
                "block_influence": self.metric("block_influence").mean(1),
                "angular_distance": self.metric("angular_distance").mean(1),
                "mean_norm": self.metric("norm").mean(1),
            }
        )

    def to_pandas(self):
        """Tidy: one row per (step, token) with every metric as a column (and the lens's
        top-1 token and target token when the lens ran)."""
        import pandas as pd

        n_steps, n_tokens = len(self.steps), len(self.tokens)
        frame = pd.DataFrame(
            {
                "step": np.repeat(self.steps, n_tokens),
                "block": np.repeat(self.blocks, n_tokens),
                "position": np.tile(np.arange(n_tokens), n_steps),
                "token": self.tokens * n_steps,
            }
        )
        for name in self.metric_names:
            frame[name] = self.metric(name).reshape(-1)
        if "target_rank" in frame:
            frame["target_rank"] = frame["target_rank"].astype(np.int64)
        if self.has_lens:
            frame["top_token"] = [self.vocab[int(i)] for i in self.top_ids[..., 0].reshape(-1)]
            frame["top_prob"] = self.top_probs[..., 0].reshape(-1)
            frame["target_token"] = [self.vocab[int(i)] for i in np.tile(self.target_ids, n_steps)]
        return frame

    def __repr__(self) -> str:
        parts = [f"{len(self.steps)} steps x {len(self.tokens)} tokens"]
        if self.has_lens:
            parts.append(f"lens top-{self.top_ids.shape[-1]}" + (f", target {self.target!r}" if self.target else ""))
        if self.captures:
            parts.append("sites " + ",".join(self.captures))
        if self.attention is not None:
            parts.append(f"attention {self.attention.shape[1]} heads")
        return f"<ScanResult {self.metadata.get('model', '')}: {'; '.join(parts)}; prompt {_short(self.prompt)!r}>"

    # -- save / load ------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"token_ids": self.token_ids, "metrics": self.metrics}
        arrays.update({f"site_{site}": a for site, a in self.captures.items()})
        if self.has_lens:
            arrays.update(target_ids=self.target_ids, top_ids=self.top_ids, top_probs=self.top_probs,
                          vocab_ids=np.array(sorted(self.vocab), dtype=np.int64))
        if self.attention is not None:
            arrays["attention"] = self.attention
            arrays.update({f"score_{name}": v for name, v in self.scores.items()})
        return arrays

    def _fields(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "tokens": self.tokens,
            "steps": self.steps,
            "blocks": self.blocks,
            "metric_names": self.metric_names,
            "target": self.target,
            "vocab_strings": [self.vocab[i] for i in sorted(self.vocab)],
            "sites": list(self.captures),
            "score_names": list(self.scores),
            "n_kv_heads": self.n_kv_heads,
        }

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> ScanResult:
        vocab_ids = arrays.get("vocab_ids")
        return cls(
            prompt=fields["prompt"],
            tokens=fields["tokens"],
            token_ids=arrays["token_ids"],
            steps=fields["steps"],
            blocks=fields["blocks"],
            metric_names=fields["metric_names"],
            metrics=arrays["metrics"],
            captures={site: arrays[f"site_{site}"] for site in fields["sites"]},
            metadata=metadata,
            target=fields["target"],
            target_ids=arrays.get("target_ids"),
            top_ids=arrays.get("top_ids"),
            top_probs=arrays.get("top_probs"),
            vocab=None if vocab_ids is None else dict(zip(vocab_ids.tolist(), fields["vocab_strings"])),
            attention=arrays.get("attention"),
            scores={name: arrays[f"score_{name}"] for name in fields["score_names"]},
            n_kv_heads=fields["n_kv_heads"],
        )


@dataclass(repr=False, eq=False)
class ScanBatch(Result):
    """Scans of several prompts made in one batched run (``%%scan --each-line``).

    Index it for one prompt's ``ScanResult``; ``to_pandas()`` stacks them with a
    ``prompt`` column; its view shows one heatmap per prompt.
    """

    kind: ClassVar[str] = "scan_batch"

    scans: list[ScanResult]
    metadata: dict[str, Any]

    def __post_init__(self) -> None:
        self.scans = list(self.scans)

    def __len__(self) -> int:
        return len(self.scans)

    def __getitem__(self, index: int) -> ScanResult:
        return self.scans[index]

    def __iter__(self):
        return iter(self.scans)

    def to_numpy(self, name: str | None = None) -> np.ndarray:
        """``ScanResult.to_numpy(name)`` of every prompt, stacked on a new first axis; shorter
        prompts are left-padded with NaN on their token axes (as the model saw them)."""
        arrays = [scan.to_numpy(name) for scan in self.scans]
        token_axes = _token_axes(name, arrays[0].ndim)
        shape = [max(a.shape[i] for a in arrays) for i in range(arrays[0].ndim)]
        stacked = np.full((len(arrays), *shape), np.nan, dtype=np.float32)
        for i, array in enumerate(arrays):
            index = tuple(slice(shape[d] - array.shape[d], None) if d in token_axes else slice(None)
                          for d in range(array.ndim))
            stacked[i][index] = array
        return stacked

    def to_pandas(self):
        import pandas as pd

        return pd.concat([scan.to_pandas().assign(prompt=i) for i, scan in enumerate(self.scans)], ignore_index=True)

    def __repr__(self) -> str:
        return f"<ScanBatch of {len(self.scans)} prompts: " + "; ".join(repr(s) for s in self.scans) + ">"

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"{i}_{name}": a for i, scan in enumerate(self.scans) for name, a in scan._arrays().items()}

    def _fields(self) -> dict[str, Any]:
        return {"scans": [{"fields": s._fields(), "metadata": s.metadata} for s in self.scans]}

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> ScanBatch:
        scans = []
        for i, item in enumerate(fields["scans"]):
            prefix = f"{i}_"
            own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            scans.append(ScanResult._rebuild(own, item["fields"], item["metadata"]))
        return cls(scans, metadata)


# -- the scan ------------------------------------------------------------------------


@with_lock
def scan(
    subject: Subject,
    prompt: str | Sequence[str],
    *,
    sites: Sequence[str] | str = DEFAULT_SITES,
    steps: str | None = None,
    layers: str | None = None,
    lens: bool = False,
    attention: bool = False,
    top_k: int = 5,
    target: str | None = None,
    lens_metrics: Sequence[str] | str | None = None,
    progress: bool = True,
) -> ScanResult | ScanBatch:
    """Scan ``prompt`` (or a list of prompts, batched) under the subject's current program.

    sites: any of ``resid`` (stream entering and leaving each step), ``attn``, ``mlp``,
        ``neurons``; a list or a comma-separated string.
    steps: program steps (positions in the layer program, not blocks) to keep, ``a:b``
        half-open or ``a-b`` inclusive (default: all). ``layers``: their old spelling,
        accepted only under the identity program (where a step is its block).
    lens: logit lens per (step, token): top-k tokens, entropy, probability and rank of
        ``target`` (one token; default: the model's final prediction at that position).
        Giving ``target`` turns the lens on.
    lens_metrics: which of ``target_prob``, ``target_rank``, ``entropy`` the lens computes per
        cell (a list or a comma-separated string; default all three). Each is a pass over the
        full vocabulary per cell: the top-k alone costs about two thirds of all three.
    attention: attention patterns and head scores (runs eager attention for this call).

    The model is left exactly as it was: hooks removed and the attention implementation
    restored, also after an exception or interrupt.
    """
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise NeuroMagicsError("Empty prompt: give some text to scan.")
    site_names = _parse_sites(sites)
    lens = lens or target is not None
    if lens and not 1 <= top_k <= min(100, subject.vocab_size):
        raise NeuroMagicsError(f"--top-k must be between 1 and {min(100, subject.vocab_size)} (got {top_k}).")
    target_id = _target_token(subject, target) if target is not None else None
    wanted = _parse_lens_metrics(lens_metrics)
    program = subject.program
    steps = _parse_steps(explicit_layer_word(program, layers, steps, old="--layers", new="--steps"), program)
    encoded = subject.encode(prompts)
    input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
    if attention:
        _check_attention_size(subject, len(steps), input_ids.shape)
    runner_sites = tuple(dict.fromkeys(s for name in ("resid", *site_names) for s in SITE_GROUPS[name]))
    _check_memory(subject, steps, runner_sites, input_ids.shape)  # attention is checked above
    if attention:
        runner_sites += ("attn_weights",)

    with subject.attention_implementation("eager") if attention else contextlib.nullcontext():
        inputs = prepare(subject, input_ids, attention_mask)
        out = run(subject, inputs, capture=Capture(sites=runner_sites, steps=steps, device="cpu",
                                                   dtype=torch.float32), logits_at=None)
    final = out.resid.detach().to("cpu", torch.float32)
    captures = out.captures  # site -> [steps, batch, tokens, features]
    lengths = attention_mask.sum(-1).tolist()
    n_padded = input_ids.shape[1]

    lens_out = (_lens(subject, captures["resid_post"], final, lengths, top_k, target_id, wanted, progress)
                if lens else None)
    kv_heads = subject.n_kv_heads
    metadata = run_metadata(subject, prompts, sites=list(site_names), layers=layers, lens=lens, top_k=top_k,
                            target=target, attention=attention, lens_metrics=list(wanted) if lens else [])
    scans = []
    for b, length in enumerate(lengths):
        real = slice(n_padded - length, None)
        ids = input_ids[b, real].cpu().numpy()
        pre, post = captures["resid_pre"][:, b, real], captures["resid_post"][:, b, real]
        names, planes = _stream_metrics(pre, post, final[b, real])
        lens_fields: dict[str, Any] = {}
        if lens_out is not None:
            per_prompt = lens_out[b]
            names = list(wanted) + names
            planes = [per_prompt[name] for name in wanted] + planes
            lens_fields = dict(target=target, target_ids=per_prompt["target_ids"], top_ids=per_prompt["top_ids"],
                               top_probs=per_prompt["top_probs"])
        attention_fields: dict[str, Any] = {}
        if attention:
            weights = captures["attn_weights"][:, b, :, real, real].numpy()
            attention_fields = dict(attention=weights, scores=head_scores(weights, ids), n_kv_heads=kv_heads)
        scans.append(
            ScanResult(
                prompt=prompts[b],
                tokens=_token_strings(subject, ids),
                token_ids=ids,
                steps=steps,
                blocks=[program[s] for s in steps],
                metric_names=names,
                metrics=np.stack(planes),
                captures={s: captures[s][:, b, real].numpy()
                          for name in site_names for s in SITE_GROUPS[name]},
                metadata={**metadata, "prompts": [prompts[b]]},
                **lens_fields,
                **attention_fields,
            )
        )
    if lens_out is not None:
        used = sorted({int(i) for s in scans for i in np.unique(np.concatenate([s.top_ids.ravel(), s.target_ids]))})
        vocab = dict(zip(used, _token_strings(subject, np.array(used))))
        for s in scans:
            s.vocab = vocab
    return scans[0] if isinstance(prompt, str) else ScanBatch(scans, metadata)


def _stream_metrics(pre: torch.Tensor, post: torch.Tensor, final: torch.Tensor) -> tuple[list[str], list[np.ndarray]]:
    """Residual-stream metrics ``[steps, tokens]`` from the stream entering / leaving each step."""
    # Cosines clamped to [-1, 1]: float rounding gives 1.0000001 for a state and itself.
    cos_io = torch.nn.functional.cosine_similarity(pre, post, dim=-1).clamp(-1, 1)
    values = {
        "norm": post.norm(dim=-1),
        "cos_final": torch.nn.functional.cosine_similarity(post, final[None], dim=-1).clamp(-1, 1),
        "block_influence": 1 - cos_io,
        "angular_distance": torch.arccos(cos_io) / math.pi,
    }
    names = [m[0] for m in STREAM_METRICS]
    return names, [values[name].numpy() for name in names]


@torch.no_grad()
def _lens(
    subject: Subject,
    resid_post: torch.Tensor,
    final: torch.Tensor,
    lengths: list[int],
    top_k: int,
    target_id: int | None,
    wanted: tuple[str, ...],
    progress: bool,
) -> list[dict[str, np.ndarray]]:
    """Logit lens of every (step, real token) row, reduced chunk by chunk. Per prompt: the
    target per position (``target_id``, or the model's final prediction there), top-k ids
    and probabilities ``[steps, tokens, k]``, and the ``wanted`` of target probability, rank and
    entropy ``[steps, tokens]``."""
    n_steps, _, n_padded, d_model = resid_post.shape
    chunk = max(1, LENS_CHUNK_ELEMENTS // subject.vocab_size)
    total = sum(-(-length // chunk) + -(-n_steps * length // chunk) for length in lengths)
    results = []
    with ProgressBar(total, "logit lens", "chunk", enabled=progress and total > 4, leave=False) as bar:

        def reduce(rows: torch.Tensor, targets: torch.Tensor | None, k: int) -> dict[str, torch.Tensor]:
            parts = []
            for start in range(0, rows.shape[0], chunk):
                part_targets = None if targets is None else targets[start : start + chunk]
                parts.append(_lens_chunk(subject, rows[start : start + chunk], part_targets, k, wanted))
                bar.update(1)
            return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}

        for b, length in enumerate(lengths):
            real = slice(n_padded - length, None)
            prediction = reduce(final[b, real], None, 1)["top_ids"][:, 0]
            targets = torch.full((length,), target_id) if target_id is not None else prediction
            rows = resid_post[:, b, real].reshape(-1, d_model)
            lens = reduce(rows, targets.repeat(n_steps), top_k)
            results.append({
                "target_ids": targets.numpy(),
                "top_ids": lens["top_ids"].reshape(n_steps, length, top_k).numpy(),
                "top_probs": lens["top_probs"].reshape(n_steps, length, top_k).numpy(),
                **{key: lens[key].reshape(n_steps, length).numpy() for key in wanted},
            })
    return results


def _lens_chunk(subject: Subject, rows: torch.Tensor, targets: torch.Tensor | None, top_k: int,
                wanted: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Final norm + unembedding of ``rows [n, d]``, reduced to the top-k and, given ``targets``,
    the ``wanted`` lens metrics per row.

    One fused softmax pass gives the probabilities; the log-partition is read off the top
    token (``logit - log p``). A separate logsumexp / exp over the full vocabulary is several
    times slower on CPU (far-negative logits underflow into denormals)."""
    logits = unembed(subject, rows[None].to(subject.device, subject.dtype), "all")[0].float()
    probs = logits.softmax(-1)
    top_logits, top_ids = logits.topk(top_k, dim=-1)
    top_probs = probs.gather(1, top_ids)
    out = {"top_ids": top_ids.cpu(), "top_probs": top_probs.cpu()}
    if targets is not None:
        targets = targets.to(logits.device)[:, None]
        if "target_prob" in wanted:
            out["target_prob"] = probs.gather(1, targets)[:, 0].cpu()
        if "target_rank" in wanted:  # an int32 count: twice as fast as the default int64 sum of booleans
            out["target_rank"] = ((logits > logits.gather(1, targets)).sum(-1, dtype=torch.int32) + 1).float().cpu()
        if "entropy" in wanted:
            log_total = top_logits[:, 0] - top_probs[:, 0].log()
            out["entropy"] = (log_total - (probs * logits).sum(-1)).cpu()
    return out


# -- input checks --------------------------------------------------------------------


def _parse_lens_metrics(lens_metrics: Sequence[str] | str | None) -> tuple[str, ...]:
    """The lens metrics asked for, in ``LENS_METRICS`` order (None: all of them)."""
    known = [m[0] for m in LENS_METRICS]
    if lens_metrics is None:
        return tuple(known)
    names = [n.strip() for n in (lens_metrics.split(",") if isinstance(lens_metrics, str) else lens_metrics)
             if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise NeuroMagicsError(f"Unknown lens metric {unknown[0]!r}: use any of {', '.join(known)}.")
    return tuple(n for n in known if n in names)


def _parse_sites(sites: Sequence[str] | str) -> tuple[str, ...]:
    names = [s.strip() for s in (sites.split(",") if isinstance(sites, str) else sites) if s.strip()]
    unknown = [s for s in names if s not in SITE_GROUPS]
    if unknown:
        raise NeuroMagicsError(f"Unknown site {unknown[0]!r}: use any of {', '.join(SITE_GROUPS)} (comma-separated).")
    return tuple(dict.fromkeys(names))


def _parse_steps(steps: str | None, program) -> list[int]:
    """Program steps to keep; ranges count the steps of the current program."""
    if steps is None:
        return list(range(len(program)))
    try:
        return sorted(set(parse_ranges(steps, len(program), unit="step", owner="the current program")))
    except ProgramError as error:
        raise NeuroMagicsError(f"--steps {steps!r}: {error}") from None


def _target_token(subject: Subject, target: str) -> int:
    if not target:
        raise NeuroMagicsError("--target is empty: give one token, e.g. --target \" Paris\".")
    ids = subject.tokenizer(target, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = ", ".join(repr(t) for t in _token_strings(subject, np.array(ids)))
        raise NeuroMagicsError(
            f"--target {target!r} is {len(ids)} tokens ({pieces}); give exactly one, e.g. the first: "
            f"--target {_token_strings(subject, np.array(ids[:1]))[0]!r}."
            if ids else f"--target {target!r} tokenizes to nothing; give one token."
        )
    return ids[0]


def _check_attention_size(subject: Subject, n_steps: int, shape: torch.Size) -> None:
    heads = subject.n_heads
    size = n_steps * heads * shape[1] ** 2 * 2 * shape[0]
    if size > memory.MAX_ATTENTION_BYTES:
        raise NeuroMagicsError(
            f"Attention patterns for {n_steps} steps x {heads} heads x {shape[1]}^2 tokens would take "
            f"{size / 2**20:.0f} MiB (limit {memory.MAX_ATTENTION_BYTES // 2**20} MiB): keep fewer steps with "
            "--steps or scan a shorter prompt."
        )


def _check_memory(subject: Subject, steps: Sequence[int], sites: Sequence[str], shape: torch.Size) -> None:
    """Refuse up front a scan whose captures will not fit: they are float32 on the CPU and
    exist twice while they are stacked; the forward also holds about two ``heads x tokens^2``
    attention score tensors per prompt."""
    batch, tokens = shape
    widths = {site: subject.d_model for site in sites}
    if "neurons" in widths:
        neurons = subject.adapter.submodule(subject.blocks[0], subject.adapter.neurons)
        widths["neurons"] = neurons.in_features if isinstance(neurons, torch.nn.Linear) else neurons.weight.shape[0]
    captures = 2 * 4 * len(steps) * batch * tokens * sum(widths.values())
    scores = 2 * 4 * subject.n_heads * batch * tokens**2
    need = captures + scores
    available = memory.available_memory()
    if need > MEMORY_FRACTION * available:
        gib = 2**30
        raise NeuroMagicsError(
            f"This scan needs about {need / gib:.1f} GiB ({captures / gib:.1f} GiB of captures for {len(steps)} steps x "
            f"{batch * tokens} tokens x {'+'.join(widths)}, {scores / gib:.1f} GiB of attention scores) but "
            f"{available / gib:.1f} GiB is free: capture fewer sites (--sites resid), fewer steps (--steps 10:20), "
            "or scan a shorter prompt."
        )


def _token_strings(subject: Subject, ids: np.ndarray) -> list[str]:
    return [subject.tokenizer.decode([int(i)]) for i in ids]


def _token_axes(name: str | None, ndim: int) -> set[int]:
    if name == "attention":
        return {2, 3}
    return {ndim - 1} if name is None or ndim == 2 else {1}


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
