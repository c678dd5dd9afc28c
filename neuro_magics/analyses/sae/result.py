"""%sae: sparse autoencoders that split one site's activations into sparse features.

A compact TopK SAE of our own (Gao et al. 2024, "Scaling and evaluating sparse
autoencoders"): ``f = TopK(ReLU(W_enc (x - b_dec) + b_enc))``, ``x_hat = W_dec f + b_dec``,
decoder rows kept at unit norm, an AuxK loss that lets dead features learn the residual
error, Adam on batches of captured activations. Why not a library: on PyPI ``sparsify`` is
Neural Magic's end-of-life pruning tool (EleutherAI's trainer is not published there), and
``sae-lens`` pulls TransformerLens, datasets, plotly and more and trains through
TransformerLens models, not the unmodified HF modules this package drives.

Activations come from ``activations.collect`` (each text read after ``CONTRAST_PREFIX`` so
the attention-sink token stays out) and are scaled so that their mean squared norm is
``d_model``; features live in that scale. A tenth of the texts is held out: the report
(FVU, L0, dead features, the spliced-in loss) and the feature reading (top contexts,
histograms, token search) come from them.

Published SAEs (SAELens, EleutherAI sparsify; ReLU, TopK or JumpReLU) load with ``load_sae``
and are read the same way, on the same held-out texts, at scale 1.
"""

from __future__ import annotations

import hashlib
import math
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.distributed import check_workers
from ..core.errors import NeuroMagicsError, check_seed
from ..core.files import move_file_into_place, staged_file
from ..core.interventions import Hook, Intervention, rebuilder, replacing_input, replacing_output
from ..core.loading import cache_dir
from ..core.paths import check_folder_target
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.runner import Capture, Edit, prepare, run
from ..core.subject import Subject, with_lock
from ..core.reading import CONTRAST_PREFIX
from ..core import memory
from ..core.activations import MEMORY_FRACTION, collect
from ..core.corpus import load_corpus
from .sae_formats import SaeWeights, read_folder, site_of_hook, write_saelens

#: Sites an SAE reads: one d_model vector per token.
SAE_SITES = ("resid_pre", "resid_post", "attn_out", "mlp_out")
#: Every ``HOLDOUT``-th text is kept for evaluation, never trained on.
HOLDOUT = 10
#: Weight of the AuxK loss (Gao et al.).
AUXK_COEF = 1 / 32
#: Texts per batch when evaluating the spliced-in loss.
EVAL_BATCH = 8
#: Activation functions an SAE may have.
ACTIVATIONS = ("topk", "relu", "jumprelu")
#: Codes kept per held-out token for a ReLU or JumpReLU SAE (at least; more where more features are
#: active on a token, so that every active feature is kept); TopK keeps k.
CODE_SLOTS = 64


# -- the autoencoder itself -------------------------------------------------------------------


class TopKAutoencoder(torch.nn.Module):
    """The trainable TopK SAE on already-scaled activations ``[n, d]``."""

    def __init__(self, d: int, width: int, k: int, *, seed: int = 0, device: torch.device | str = "cpu"):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        decoder = torch.randn(width, d, generator=generator)
        decoder /= decoder.norm(dim=1, keepdim=True)
        self.k = k
        self.W_dec = torch.nn.Parameter(decoder.to(device))
        self.W_enc = torch.nn.Parameter(decoder.T.clone().to(device))  # tied at init, then free
        self.b_enc = torch.nn.Parameter(torch.zeros(width, device=device))
        self.b_dec = torch.nn.Parameter(torch.zeros(d, device=device))

    def preactivations(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction, the k active (indices, values) per row, and the pre-activations."""
        pre = self.preactivations(x)
        values, indices = torch.relu(pre).topk(self.k, dim=-1, sorted=False)
        reconstruction = _decode_sparse(indices, values, self.W_dec) + self.b_dec
        return reconstruction, indices, values, pre

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def drop_parallel_gradient(self) -> None:
        """Keep the step tangent to the unit sphere of each decoder row (Gao et al.)."""
        if self.W_dec.grad is not None:
            rows = self.W_dec
            self.W_dec.grad -= (self.W_dec.grad * rows).sum(1, keepdim=True) * rows


def _decode_sparse(indices: torch.Tensor, values: torch.Tensor, decoder: torch.Tensor) -> torch.Tensor:
    """``sum_j values[j] * decoder[indices[j]]``: only the k active rows, never a dense code."""
    return torch.nn.functional.embedding_bag(indices.reshape(-1, indices.shape[-1]), decoder,
                                             per_sample_weights=values.reshape(-1, values.shape[-1]),
                                             mode="sum").reshape(*indices.shape[:-1], decoder.shape[1])


@dataclass
class FitReport:
    """How a fit went: FVU per step, tokens since each feature last fired, why it stopped."""

    fvu_curve: list[float] = field(default_factory=list)
    since_fired: np.ndarray | None = None
    tokens_seen: int = 0
    interrupted: bool = False
    seconds: float = 0.0


def fit_topk(
    data: torch.Tensor,
    width: int,
    k: int,
    *,
    steps: int,
    batch_size: int = 1024,
    lr: float = 1e-3,
    dead_after: int | None = None,
    seed: int = 0,
    bar: ProgressBar | None = None,
) -> tuple[TopKAutoencoder, FitReport]:
    """Train a TopK SAE on rows of ``data`` (already scaled). A feature that has not fired for
    ``dead_after`` tokens (default: one pass over the data) is dead; AuxK trains the dead ones
    on the residual error. Ctrl-C stops training and keeps the SAE as it is.

    Our AuxK departs from SAELens's and sparsify's in three ways, on purpose: the dead features'
    pre-activations pass a ReLU before their top-k_aux (a dead feature that would fire negatively
    cannot reconstruct anything); the aux loss is normalised by the residual's own energy (so
    its weight does not shrink as the main reconstruction improves); and it is not scaled by
    ``min(num_dead / k_aux, 1)`` (a few dead features still get the full AUXK_COEF)."""
    n, d = data.shape
    model = TopKAutoencoder(d, width, k, seed=seed, device=data.device)
    with torch.no_grad():
        model.b_dec.copy_(data.mean(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    dead_after = n if dead_after is None else dead_after
    k_aux = min(width, max(1, d // 2))
    since_fired = torch.zeros(width, dtype=torch.long, device=data.device)
    variance = (data - data.mean(0)).pow(2).sum(1).mean()
    generator = torch.Generator().manual_seed(seed)
    report, started = FitReport(), time.perf_counter()
    order, cursor = torch.randperm(n, generator=generator), 0
    try:
        for _ in range(steps):
            if cursor + batch_size > n:
                order, cursor = torch.randperm(n, generator=generator), 0
            x = data[order[cursor:cursor + batch_size].to(data.device)]
            cursor += batch_size
            reconstruction, indices, values, pre = model(x)
            error = x - reconstruction
            loss = error.pow(2).sum(1).mean() / variance
            fired = torch.zeros(width, dtype=torch.bool, device=x.device)
            fired[indices[values > 0]] = True
            since_fired += x.shape[0]
            since_fired[fired] = 0
            dead = since_fired > dead_after
            if dead.any():
                masked = torch.where(dead, pre, torch.full_like(pre, -math.inf))
                aux_values, aux_indices = torch.relu(masked).topk(min(k_aux, int(dead.sum())), dim=-1)
                aux_error = _decode_sparse(aux_indices, aux_values, model.W_dec)
                residual = error.detach()
                aux_loss = (residual - aux_error).pow(2).sum(1).mean() / residual.pow(2).sum(1).mean().clamp_min(1e-12)
                loss = loss + AUXK_COEF * aux_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            model.drop_parallel_gradient()
            optimizer.step()
            model.normalize_decoder()
            fvu = float(error.detach().pow(2).sum(1).mean() / variance)
            report.fvu_curve.append(fvu)
            report.tokens_seen += x.shape[0]
            if bar is not None:
                bar.update(1)
                bar.set_postfix(f"FVU {fvu:.3f}, dead {float(dead.float().mean()):.1%}")
    except KeyboardInterrupt:
        report.interrupted = True
    model.normalize_decoder()  # an interrupt may land between the step and the renormalisation
    report.since_fired = since_fired.cpu().numpy()
    report.seconds = time.perf_counter() - started
    return model, report


class FeatureCoder(torch.nn.Module):
    """Encoding and decoding of an SAE (trained or loaded) on activations already multiplied by
    its scale: ``pre = (x - b_dec) W_enc + b_enc`` (``x`` itself when the SAE does not centre
    its input), then TopK of ReLU, ReLU, or JumpReLU ``pre * [pre > threshold]`` (of ReLU)."""

    def __init__(self, sae: SparseAutoencoder, device: torch.device | str = "cpu"):
        super().__init__()
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            self.register_buffer(name, torch.from_numpy(np.asarray(getattr(sae, name), dtype=np.float32)).to(device))
        threshold = sae.threshold if sae.threshold is not None else np.zeros(0, dtype=np.float32)
        self.register_buffer("threshold", torch.from_numpy(np.asarray(threshold, dtype=np.float32)).to(device))
        self.activation, self.k, self.center_input = sae.activation, sae.k, sae.center_input

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations ``[..., width]`` of scaled activations ``[..., d]``."""
        pre = ((x - self.b_dec) if self.center_input else x) @ self.W_enc + self.b_enc
        if self.activation == "topk":
            values, indices = torch.relu(pre).topk(self.k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, indices, values)
        if self.activation == "jumprelu":
            return torch.relu(pre) * (pre > self.threshold)
        return torch.relu(pre)

    def decode(self, dense: torch.Tensor) -> torch.Tensor:
        return dense @ self.W_dec + self.b_dec


# -- the result ---------------------------------------------------------------------------------


class SparseAutoencoder(Result):
    """An SAE on ``site`` at program step ``layer`` (trained here or loaded from SAELens or
    sparsify files), with its report and the held-out codes its feature reading draws on.

    ``encode(x)`` / ``decode(f)`` work in the model's units (``x`` is ``[..., d_model]``);
    ``fvu`` (fraction of variance unexplained), ``l0`` (active features per token),
    ``dead_fraction`` (features silent for the last pass over the training tokens; for a
    loaded SAE, silent on every held-out token) and the cross-entropies ``ce_original`` /
    ``ce_spliced`` / ``ce_zero`` (the site left alone, replaced by its reconstruction, zeroed)
    are measured on the held-out texts. ``activation`` is ``"topk"`` (``k`` active features),
    ``"relu"`` or ``"jumprelu"`` (``threshold`` per feature); ``source`` is the folder or hub
    name a loaded SAE came from (None for one trained here).
    """

    kind = "sae"

    def __init__(self, weights: dict[str, np.ndarray], *, site: str, layer: int, block: int, k: int | None,
                 scale: float, report: dict[str, Any], codes: dict[str, np.ndarray], tokens: list[list[str]],
                 metadata: dict[str, Any], activation: str = "topk", center_input: bool = True,
                 source: str | None = None):
        self.W_enc, self.b_enc = weights["W_enc"], weights["b_enc"]
        self.W_dec, self.b_dec = weights["W_dec"], weights["b_dec"]
        self.threshold = weights.get("threshold")
        self.fvu_curve, self.since_fired = weights["fvu_curve"], weights["since_fired"]
        self.site, self.layer, self.block, self.k, self.scale = site, layer, block, k, scale
        self.activation, self.center_input, self.source = activation, center_input, source
        self.report = report
        self.code_indices, self.code_values = codes["indices"], codes["values"]  # [tokens, slots]
        self.text_index, self.position = codes["text_index"], codes["position"]  # [tokens]
        self.tokens = tokens
        self.metadata = metadata
        self.path: Path | None = None  # the file it was last saved to or loaded from (what an ablation records)
        self._subject: Any = None  # a weakref to the Subject it was made on (the dashboard's buttons act there)

    @property
    def subject(self) -> Subject | None:
        """The Subject this SAE was trained or loaded on, while it is alive."""
        return None if self._subject is None else self._subject()

    # -- sizes and report -------------------------------------------------------------------

    @property
    def width(self) -> int:
        return self.W_dec.shape[0]

    @property
    def d_model(self) -> int:
        return self.W_dec.shape[1]

    fvu = property(lambda self: self.report["fvu"], doc="Fraction of variance unexplained (held out).")
    l0 = property(lambda self: self.report["l0"], doc="Mean number of active features per token (held out).")
    dead_fraction = property(lambda self: self.report["dead_fraction"],
                             doc="Share of features silent for the last pass over the training tokens.")
    ce_original = property(lambda self: self.report["ce_original"])
    ce_spliced = property(lambda self: self.report["ce_spliced"])
    ce_zero = property(lambda self: self.report["ce_zero"])

    @property
    def dead(self) -> np.ndarray:
        """True for each dead feature (see ``dead_fraction``)."""
        return self.since_fired > self.report["dead_after"]

    @property
    def loss_recovered(self) -> float:
        """Share of the zero-ablation loss increase the reconstruction recovers (1 = perfect)."""
        return (self.ce_zero - self.ce_spliced) / (self.ce_zero - self.ce_original)

    # -- encode / decode in the model's units ---------------------------------------------------

    def coder(self, device: torch.device | str = "cpu") -> FeatureCoder:
        """The encoder/decoder as a torch module on ``device`` (in the SAE's scaled units)."""
        return FeatureCoder(self, device)

    def encode(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Dense feature activations ``[..., width]`` of activations ``x`` ``[..., d_model]``."""
        tensor = self._as_input(x, self.d_model, "activations")
        with torch.no_grad():
            dense = self.coder(tensor.device).dense(tensor.float() * self.scale)
        return dense.numpy() if isinstance(x, np.ndarray) else dense.to(tensor.dtype)

    def decode(self, f: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Activations ``[..., d_model]`` rebuilt from feature activations ``[..., width]``."""
        tensor = self._as_input(f, self.width, "feature activations")
        decoder = torch.from_numpy(self.W_dec).to(tensor.device)
        rebuilt = (tensor.float() @ decoder + torch.from_numpy(self.b_dec).to(tensor.device)) / self.scale
        return rebuilt.numpy() if isinstance(f, np.ndarray) else rebuilt.to(tensor.dtype)

    @staticmethod
    def _as_input(x: Any, width: int, what: str) -> torch.Tensor:
        tensor = torch.from_numpy(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x
        if tensor.ndim == 0 or tensor.shape[-1] != width:
            raise NeuroMagicsError(f"{what} must end in a dimension of {width}, got shape {tuple(tensor.shape)}.")
        return tensor

    def direction(self, feature: int) -> torch.Tensor:
        """What one unit of ``feature`` adds to the site, in the model's units."""
        self._check_feature(feature)
        return torch.from_numpy(self.W_dec[feature] / self.scale)

    def _check_feature(self, feature: int) -> None:
        if not isinstance(feature, (int, np.integer)) or not 0 <= feature < self.width:
            raise NeuroMagicsError(f"Feature {feature!r} is out of range: this SAE has features 0-{self.width - 1}.")

    # -- feature reading (held-out texts) ---------------------------------------------------------

    def activations_of(self, feature: int) -> np.ndarray:
        """``feature``'s activation on every held-out token (0 where it is not among the kept codes)."""
        self._check_feature(feature)
        return np.where(self.code_indices == feature, self.code_values, 0).sum(1)

    @property
    def frequencies(self) -> np.ndarray:
        """Share of held-out tokens on which each feature fires."""
        counts = np.bincount(self.code_indices[self.code_values > 0], minlength=self.width)
        return counts / max(1, len(self.code_indices))

    @property
    def max_activations(self) -> np.ndarray:
        """Each feature's largest held-out activation."""
        maxima = np.zeros(self.width, dtype=np.float32)
        np.maximum.at(maxima, self.code_indices.ravel(), self.code_values.ravel())
        return maxima

    def _context(self, row: int, values: np.ndarray, window: int) -> dict[str, Any]:
        """Held-out token ``row`` with ``window`` tokens either side and the feature's
        activation (``values``) on each of them, for highlighting."""
        text, at = int(self.text_index[row]), int(self.position[row])
        pieces, first = self.tokens[text], row - at  # a text's rows are contiguous, in order
        lo, hi = max(0, at - window), min(len(pieces), at + window + 1)
        return {"activation": float(values[row]), "left": "".join(pieces[lo:at]), "token": pieces[at],
                "right": "".join(pieces[at + 1:hi]), "text": text, "tokens": list(pieces[lo:hi]),
                "activations": [float(v) for v in values[first + lo:first + hi]], "center": at - lo}

    def top_contexts(self, feature: int, n: int = 10, window: int = 6) -> list[dict[str, Any]]:
        """The ``n`` held-out tokens where ``feature`` fires most, each with ``window`` tokens of
        context either side: ``{"activation", "left", "token", "right", "text", "tokens",
        "activations", "center"}`` (``tokens[center]`` is the token; ``activations`` the
        feature's value on each of ``tokens``)."""
        values = self.activations_of(feature)
        rows = [row for row in np.argsort(-values, kind="stable")[:n] if values[row] > 0]
        return [self._context(row, values, window) for row in rows]

    def quantile_samples(self, feature: int, bands: int = 5, per_band: int = 3, window: int = 6,
                         seed: int = 0) -> list[dict[str, Any]]:
        """sae_vis's interval samples: the non-zero range ``(0, max]`` of ``feature``'s held-out
        activations cut into ``bands`` equal intervals (highest first), each with the share of
        firing tokens in it and up to ``per_band`` contexts drawn at random from it
        (``{"low", "high", "share", "contexts"}``; a band holds ``low < a <= high``)."""
        values = self.activations_of(feature)
        firing = np.flatnonzero(values > 0)
        if not firing.size:
            return []
        edges = np.linspace(0.0, float(values[firing].max()), bands + 1)
        band_of = np.clip(np.searchsorted(edges, values[firing], side="left") - 1, 0, bands - 1)
        generator = np.random.default_rng(seed)
        samples = []
        for band in range(bands - 1, -1, -1):
            rows = firing[band_of == band]
            chosen = generator.choice(rows, size=min(per_band, rows.size), replace=False) if rows.size else rows
            chosen = sorted(chosen.tolist(), key=lambda row: -values[row])
            samples.append({"low": float(edges[band]), "high": float(edges[band + 1]),
                            "share": rows.size / firing.size,
                            "contexts": [self._context(row, values, window) for row in chosen]})
        return samples

    def histogram(self, feature: int, bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
        """Counts and bin edges of ``feature``'s non-zero held-out activations."""
        values = self.activations_of(feature)
        values = values[values > 0]
        return np.histogram(values, bins=bins) if values.size else (np.zeros(bins, dtype=np.int64),
                                                                     np.linspace(0, 1, bins + 1))

    def search(self, token: str, n: int = 10) -> list[tuple[int, float]]:
        """Features that fire most on held-out tokens equal to ``token`` (surrounding spaces
        ignored): ``(feature, mean activation on it)``, best first."""
        wanted = token.strip()
        rows = np.array([r for r, (t, p) in enumerate(zip(self.text_index, self.position))
                         if self.tokens[t][p].strip() == wanted], dtype=np.int64)
        if not rows.size:
            raise NeuroMagicsError(f"No held-out token is {token!r}: try another token, or train on texts that hold it.")
        sums = np.bincount(self.code_indices[rows].ravel(), weights=self.code_values[rows].ravel(), minlength=self.width)
        means = sums / rows.size
        best = np.argsort(-means, kind="stable")[:n]
        return [(int(f), float(means[f])) for f in best if means[f] > 0]

    @torch.no_grad()
    def search_text(self, subject: Subject, text: str, n: int = 10) -> list[tuple[int, float]]:
        """Features most active on ``text``'s own tokens (the model runs on it, read after
        ``CONTRAST_PREFIX`` like the held-out texts): ``(feature, mean activation over the
        tokens)``, best first."""
        self._check_same_model(subject)
        if not isinstance(text, str) or not text.strip():
            raise NeuroMagicsError("Give some text to search the features by.")
        with subject.lock:
            self._check_layer(subject)
            prefix_length = len(subject.tokenizer(CONTRAST_PREFIX)["input_ids"])
            encoded = subject.encode(CONTRAST_PREFIX + text)
            ids, mask = encoded["input_ids"].to(subject.device), encoded["attention_mask"].to(subject.device)
            inputs = prepare(subject, ids, mask)
            output = run(subject, inputs, stop=self.layer + 1, logits_at=None,
                         capture=Capture(sites=(self.site,), steps=[self.layer], device=subject.device))
        x = output.captures[self.site][0][_own_token_mask(mask, prefix_length)].float()
        means = self.coder(subject.device).dense(x * self.scale).mean(0).cpu().numpy()
        best = np.argsort(-means, kind="stable")[:n]
        return [(int(f), float(means[f])) for f in best if means[f] > 0]

    @torch.no_grad()
    def logit_effects(self, subject: Subject, feature: int, n: int = 10) -> dict[str, list[tuple[str, float]]]:
        """Tokens whose logits ``feature``'s decoder direction raises and lowers most, read
        straight through the unembedding (the final norm left out, as sae_vis does)."""
        self._check_same_model(subject)
        direction = self.direction(feature).to(device=subject.device, dtype=subject.dtype)
        with subject.lock:
            effects = subject.adapter.unembed(subject.model, direction[None, None])[0, 0].float().cpu()
        top, bottom = effects.topk(n), (-effects).topk(n)
        pieces = lambda ids: subject.token_pieces(ids.tolist())  # noqa: E731
        return {"top": list(zip(pieces(top.indices), top.values.tolist())),
                "bottom": list(zip(pieces(bottom.indices), (-bottom.values).tolist()))}

    # -- acting on the model -------------------------------------------------------------------------

    def steer(self, subject: Subject, feature: int, coef: float, *, install: bool = True):
        """Add ``coef`` units of ``feature`` (``coef x`` its decoder direction) to the stream
        where the site's output goes, through ``nm.steer`` (an intervention %model shows)."""
        from .interventions import steer

        self._check_same_model(subject)
        if not subject.program.is_identity:
            raise NeuroMagicsError("Steering by a feature needs the plain layer program: reset the program first.")
        if self.site == "attn_out":
            raise NeuroMagicsError("An attn_out feature enters mid-block, where nm.steer cannot add: "
                                   "train the SAE on resid_pre, resid_post or mlp_out to steer by its features.")
        layer = self.block if self.site == "resid_pre" else self.block + 1
        if layer >= subject.n_layers:
            raise NeuroMagicsError(f"The output of the last block feeds the final norm, where nm.steer cannot add: "
                                   f"train the SAE on an earlier layer (0-{subject.n_layers - 2}) to steer by it.")
        source = self.path.name if self.path is not None else (self.source or "an SAE trained here")
        return steer(subject, layer=layer, coef=coef, vector=self.direction(feature), install=install,
                     vector_name=f"SAE feature {feature} of {self.site} at block {self.block}, {source}")

    def ablate(self, subject: Subject, feature: int, *, install: bool = True) -> Intervention:
        """Remove ``feature``'s contribution ``f(x) x direction`` from the site at every position
        (the SAE's own encoding of the site's value). The intervention records the SAE's file
        and its SHA-256, so results can replay it; an SAE never saved is saved first into the
        cache folder (``$NEURO_MAGICS_CACHE/sae/``, under a name from its content)."""
        self._check_same_model(subject)
        self._check_feature(feature)
        if not subject.program.is_identity:
            raise NeuroMagicsError("Ablating a feature needs the plain layer program: reset the program first.")
        path = self.path if self.path is not None and self.path.is_file() else self._save_to_cache()
        arguments = {"sae": str(path), "sha256": _file_digest(path), "feature": int(feature), "site": self.site,
                     "block": self.block}
        description = f"ablate SAE feature {feature} of {self.site} at block {self.block} ({path.name})"
        intervention = _feature_ablation(subject, arguments, description, sae=self)
        return intervention.install(subject) if install else intervention

    def _save_to_cache(self) -> Path:
        """Save into the cache folder under the first 16 hex digits of the file's SHA-256."""
        folder = cache_dir() / "sae"
        with staged_file(folder, "sae.npz") as scratch:
            self._write_npz(scratch)
            target = folder / f"{_file_digest(scratch)[:16]}.npz"
            move_file_into_place(scratch, target)
        self.path = target.resolve()
        return self.path

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        self.path = super().save(path, overwrite=overwrite).resolve()
        return self.path

    @classmethod
    def load(cls, path: str | Path) -> SparseAutoencoder:
        sae = super().load(path)
        sae.path = Path(path).expanduser().resolve()
        return sae

    def save_saelens(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the SAE as a SAELens folder (``cfg.json`` + ``sae_weights.safetensors``), its
        scale folded into the weights so the file works on the model's own units. A non-empty
        folder is replaced only with ``overwrite=True``, swapped whole once the new one is written."""
        folder = check_folder_target(folder, "save_saelens", overwrite=overwrite,
                                     how="or pass overwrite=True to replace it")
        s = self.scale
        weights = {"W_enc": self.W_enc * s, "b_enc": self.b_enc, "W_dec": self.W_dec / s, "b_dec": self.b_dec / s}
        if self.threshold is not None:
            weights["threshold"] = self.threshold
        hook = {"resid_pre": "hook_resid_pre", "resid_post": "hook_resid_post", "mlp_out": "hook_mlp_out",
                "attn_out": "hook_attn_out"}[self.site]
        architecture = {"topk": "topk", "relu": "standard", "jumprelu": "jumprelu"}[self.activation]
        config = {"architecture": architecture, "d_in": self.d_model, "d_sae": self.width, "dtype": "float32",
                  "apply_b_dec_to_input": self.center_input, "normalize_activations": "none",
                  "hook_name": f"blocks.{self.block}.{hook}",
                  "meta": {"model_name": self.metadata.get("model"), "hook_name": f"blocks.{self.block}.{hook}"}}
        if self.k is not None:
            config["k"] = self.k
        return write_saelens(folder, weights, config)

    def _check_same_model(self, subject: Subject) -> None:
        if subject.name != self.metadata.get("model") or subject.d_model != self.d_model:
            raise NeuroMagicsError(f"This SAE was made on {self.metadata.get('model')}, not {subject.name}: "
                                   "load that model, or train an SAE on this one.")

    def _check_layer(self, subject: Subject) -> None:
        if self.layer >= len(subject.program) or subject.program.steps[self.layer] != self.block:
            raise NeuroMagicsError(f"Program step {self.layer} no longer runs block {self.block}, the SAE's: "
                                   "reset the layer program first.")

    # -- data --------------------------------------------------------------------------------------------

    def to_numpy(self) -> np.ndarray:
        """The decoder ``[width, d_model]`` in the model's units."""
        return self.W_dec / self.scale

    def to_pandas(self):
        """One row per feature: how often it fires, its largest held-out activation."""
        import pandas as pd

        return pd.DataFrame({"frequency": self.frequencies, "max_activation": self.max_activations,
                             "dead": self.dead}).rename_axis("feature")

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"W_enc": self.W_enc, "b_enc": self.b_enc, "W_dec": self.W_dec, "b_dec": self.b_dec,
                  "fvu_curve": self.fvu_curve, "since_fired": self.since_fired, "code_indices": self.code_indices,
                  "code_values": self.code_values, "text_index": self.text_index, "position": self.position}
        return arrays if self.threshold is None else {**arrays, "threshold": self.threshold}

    def _fields(self) -> dict[str, Any]:
        return {"site": self.site, "layer": self.layer, "block": self.block, "k": self.k, "scale": self.scale,
                "report": self.report, "tokens": self.tokens, "activation": self.activation,
                "center_input": self.center_input, "source": self.source}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> SparseAutoencoder:
        codes = {"indices": arrays["code_indices"], "values": arrays["code_values"],
                 "text_index": arrays["text_index"], "position": arrays["position"]}
        k = fields["k"]
        return cls(arrays, site=fields["site"], layer=int(fields["layer"]), block=int(fields["block"]),
                   k=None if k is None else int(k), scale=float(fields["scale"]), report=fields["report"], codes=codes,
                   tokens=fields["tokens"], metadata=metadata, activation=fields.get("activation", "topk"),
                   center_input=bool(fields.get("center_input", True)), source=fields.get("source"))

    def __repr__(self) -> str:
        r = self.report
        shape = f"k={self.k}" if self.activation == "topk" else self.activation
        if self.source is not None:
            made = f"from {self.source}"
        else:
            made = f"{r['tokens_seen']} tokens in {r['seconds']:.0f} s" + (", interrupted" if r["interrupted"] else "")
        return (f"SparseAutoencoder({self.site} layer {self.layer}, {self.width} features, {shape}; "
                f"FVU {self.fvu:.3f}, L0 {self.l0:.1f}, dead {self.dead_fraction:.1%}; CE {self.ce_original:.3f} -> "
                f"{self.ce_spliced:.3f} spliced (zero ablation {self.ce_zero:.3f}); {made})")


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@rebuilder("sae_ablate")
def _feature_ablation(subject: Subject, arguments: dict[str, Any], description: str,
                      sae: SparseAutoencoder | None = None) -> Intervention:
    """The hook that subtracts one feature's contribution at the site, from the SAE's file
    (checked against the recorded SHA-256 when there is one)."""
    if sae is None:
        path = Path(arguments["sae"])
        if not path.is_file():
            raise NeuroMagicsError(f"The SAE file {arguments['sae']!r} this feature ablation records is gone: "
                                   "save the SAE there again to replay it.")
        if "sha256" in arguments and _file_digest(path) != arguments["sha256"]:
            raise NeuroMagicsError(f"The SAE file {arguments['sae']!r} changed since this feature ablation was "
                                   "recorded: it no longer holds the same SAE.")
        sae = SparseAutoencoder.load(path)
    feature = arguments["feature"]
    copies = {}  # device -> (the SAE, the feature's direction) where the site's block runs (models spread over GPUs)

    def remove_feature(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.device not in copies:
            copies[tensor.device] = sae.coder(tensor.device), sae.direction(feature).to(tensor.device)
        coder, direction = copies[tensor.device]
        with torch.no_grad():
            amount = coder.dense(tensor.float() * sae.scale)[..., feature:feature + 1]
        return tensor - (amount * direction).to(tensor.dtype)

    block, site, adapter = subject.blocks[arguments["block"]], arguments["site"], subject.adapter
    if site == "resid_pre":
        return Intervention("sae_ablate", description, arguments,
                            [Hook(block, "pre_kwargs", replacing_input(remove_feature))])
    module = {"resid_post": block, "mlp_out": adapter.submodule(block, adapter.mlp),
              "attn_out": adapter.submodule(block, adapter.attention)}[site]

    return Intervention("sae_ablate", description, arguments, [Hook(module, "forward", replacing_output(remove_feature))])


# -- training on a model -------------------------------------------------------------------------------


def check_fits(d: int, width: int, batch_size: int, device: torch.device) -> None:
    """Refuse in one line an SAE whose training would not fit: weights, their gradients and
    Adam's two moments, plus a batch's dense pre-activations and codes (float32)."""
    need = 4 * (4 * (2 * d * width + width + d) + 4 * batch_size * width)
    available = memory.free_bytes(device)
    if need > MEMORY_FRACTION * available:
        gib = 2**30
        raise NeuroMagicsError(f"A {width}-feature SAE on {d} dims needs about {need / gib:.1f} GiB to train but "
                               f"{available / gib:.1f} GiB is free on {device}: pick a smaller --expansion or --batch.")


def _check_layer_and_site(subject: Subject, layer: Any, site: str) -> None:
    if site not in SAE_SITES:
        raise NeuroMagicsError(f"Unknown site {site!r} for an SAE: use one of {', '.join(SAE_SITES)}.")
    if not isinstance(layer, (int, np.integer)) or not 0 <= layer < len(subject.program):
        raise NeuroMagicsError(f"--layer {layer!r} is out of range: this program has layers 0-{len(subject.program) - 1}.")


@with_lock
def train_sae(
    subject: Subject,
    *,
    layer: int,
    site: str = "resid_post",
    expansion: int = 4,
    k: int = 32,
    texts: str | Sequence[str] | None = None,
    steps: int = 300,
    batch_size: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
) -> SparseAutoencoder:
    """Train a TopK SAE with ``expansion x d_model`` features on ``site`` at program step
    ``layer``, over ``texts`` (a list, a .txt/.jsonl file, ``"builtin:math,code"``; default: the
    built-in five-genre corpus), for ``steps`` Adam
    steps of ``batch_size`` tokens. Every tenth text is held out for the report. Ctrl-C
    during training keeps the SAE trained so far (``report["interrupted"]``, ``report["steps_done"]``)
    and reads only the first batch of held-out texts for its report, so it returns in seconds. ``workers``: capture
    the training activations on that many Ray workers (at ``ray_address``, else a local
    cluster), each with its own copy of the model; the activations are the same.

    Measured (default model, layer 12 resid_post, 4x = 2304 features, k=32, one CPU thread):
    the built-in corpus gives 10,800 training tokens; 250 steps take 84 s in all (38 s of
    training) for held-out FVU 0.30 and 94% of the zero-ablation loss recovered; 1000 steps
    take 171 s for 0.28 and 94.5% (the batch FVU falls to 0.09: the small corpus is
    memorised, so more texts help more than more steps)."""
    _check_layer_and_site(subject, layer, site)
    check_workers(subject, workers, ray_address)
    check_seed(seed)
    for name, value in (("expansion", expansion), ("k", k), ("steps", steps), ("batch", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise NeuroMagicsError(f"--{name} must be a positive whole number (got {value!r}).")
    width = expansion * subject.d_model
    if k > width:
        raise NeuroMagicsError(f"--k {k} is more than the {width} features: pick k below the width.")
    if not (math.isfinite(lr) and lr > 0):
        raise NeuroMagicsError(f"--lr must be a positive number (got {lr!r}).")
    texts = list(load_corpus(texts).texts)
    if len(texts) < 2:
        raise NeuroMagicsError("An SAE needs at least two texts (one is held out): give more texts.")
    check_fits(subject.d_model, width, batch_size, subject.device)
    held_out = texts[::HOLDOUT]
    training = [text for i, text in enumerate(texts) if i % HOLDOUT]

    with ProgressBar(len(training), f"{site} activations, layer {layer}", "text", enabled=progress) as bar:
        captured = collect(subject, training, [layer], site=site, unit="token", on_batch=bar.update,
                           workers=workers, ray_address=ray_address)
    data = torch.from_numpy(captured.vectors[0]).to(subject.device)
    scale = float(math.sqrt(subject.d_model / data.pow(2).sum(1).mean()))
    data *= scale
    with ProgressBar(steps, f"SAE {width} features, k={k}", "step", enabled=progress) as bar:
        model, fit = fit_topk(data, width, k, steps=steps, batch_size=min(batch_size, len(data)), lr=lr,
                              seed=seed, bar=bar)
    del data
    if fit.interrupted:  # the report reads one batch of held-out texts: Ctrl-C returns in seconds
        held_out = held_out[:EVAL_BATCH]
    weights = {name: getattr(model, name).detach().float().cpu().numpy() for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    weights.update(fvu_curve=np.asarray(fit.fvu_curve, dtype=np.float32), since_fired=fit.since_fired)
    report = {"interrupted": fit.interrupted, "steps_done": len(fit.fvu_curve), "held_out_texts": len(held_out),
              "tokens_seen": fit.tokens_seen, "seconds": fit.seconds,
              "dead_after": int(captured.vectors.shape[1]),
              "dead_fraction": float((fit.since_fired > captured.vectors.shape[1]).mean())}
    metadata = run_metadata(subject, held_out, analysis="sae", site=site, layer=int(layer), expansion=expansion,
                            k=k, steps=steps, batch_size=batch_size, lr=lr, seed=seed, n_texts=len(texts),
                            n_train_tokens=int(captured.vectors.shape[1]))
    sae = SparseAutoencoder(weights, site=site, layer=int(layer), block=int(subject.program.steps[layer]), k=k,
                            scale=scale, report=report, codes=_NO_CODES, tokens=[], metadata=metadata)
    _read_held_out(subject, sae, held_out, progress=progress)
    return sae


@with_lock
def load_sae(
    subject: Subject,
    source: str | Path,
    *,
    sae_id: str | None = None,
    layer: int | None = None,
    site: str | None = None,
    texts: str | Sequence[str] | None = None,
    progress: bool = True,
) -> SparseAutoencoder:
    """Load a published SAE and read it on ``subject``: ``source`` is a local folder in SAELens
    format (``cfg.json`` + ``sae_weights.safetensors``) or sparsify format (``cfg.json`` +
    ``sae.safetensors``), or one holding such folders (pick one with ``sae_id``); otherwise a
    SAELens release (``SAE.from_pretrained(source, sae_id)``, when sae_lens is installed) or a
    Hugging Face repo of sparsify folders (``sae_id`` the hookpoint). The hook name gives the
    site and block (``blocks.5.hook_resid_post``, ``layers.5``); ``layer`` (program step) and
    ``site`` override it. The report and feature reading come from the same held-out texts a
    trained SAE uses (every tenth of ``texts``, default the built-in corpus)."""
    if site is not None and site not in SAE_SITES:
        raise NeuroMagicsError(f"Unknown site {site!r} for an SAE: use one of {', '.join(SAE_SITES)}.")
    weights = fetch_sae(source, sae_id)
    if site is None or layer is None:
        hook_site, hook_block = site_of_hook(weights.hook)
        site = site or hook_site
        if layer is None:
            if hook_block not in subject.program.steps:
                raise NeuroMagicsError(f"This SAE reads block {hook_block} ({weights.hook}) but {subject.name} has blocks "
                                       f"0-{subject.n_layers - 1} in its program: load the SAE made for this model.")
            layer = subject.program.steps.index(hook_block)
    _check_layer_and_site(subject, layer, site)
    if weights.W_enc.shape[0] != subject.d_model:
        raise NeuroMagicsError(f"This SAE reads {weights.W_enc.shape[0]}-dim activations but {subject.name}'s {site} has "
                               f"{subject.d_model}: load the SAE made for this model.")
    texts = list(load_corpus(texts).texts)
    held_out = texts[::HOLDOUT]
    arrays = {"W_enc": weights.W_enc, "b_enc": weights.b_enc, "W_dec": weights.W_dec, "b_dec": weights.b_dec,
              "fvu_curve": np.zeros(0, dtype=np.float32), "since_fired": np.zeros(weights.W_dec.shape[0], np.int64)}
    if weights.threshold is not None:
        arrays["threshold"] = weights.threshold
    metadata = run_metadata(subject, held_out, analysis="sae", site=site, layer=int(layer), source=weights.source,
                            hook=weights.hook, activation=weights.activation, k=weights.k)
    sae = SparseAutoencoder(arrays, site=site, layer=int(layer), block=int(subject.program.steps[layer]), k=weights.k,
                            scale=1.0, report={}, codes=_NO_CODES, tokens=[], metadata=metadata,
                            activation=weights.activation, center_input=weights.center_input, source=weights.source)
    _read_held_out(subject, sae, held_out, progress=progress)
    fired = np.bincount(sae.code_indices[sae.code_values > 0], minlength=sae.width) > 0
    n_tokens = len(sae.code_indices)
    sae.since_fired = np.where(fired, 0, n_tokens + 1)  # silent on every held-out token: dead
    sae.report.update(dead_after=n_tokens, dead_fraction=float(1 - fired.mean()))
    return sae


def fetch_sae(source: str | Path, sae_id: str | None = None) -> SaeWeights:
    """The SAE's arrays from a local folder, a SAELens release or a Hugging Face repo."""
    path = Path(source).expanduser()
    if path.exists():
        return read_folder(path / sae_id if sae_id else path)
    text = str(source)
    if text.startswith(("/", ".", "~")) or text.count("/") > 1:
        raise NeuroMagicsError(f"No folder {text!r}: give the folder of a saved SAE, or a hub name such as "
                               "EleutherAI/sae-llama-3-8b-32x with --sae-id layers.10.")
    try:
        from sae_lens import SAE
    except ImportError:
        SAE = None
    if SAE is not None and sae_id is not None:
        try:
            loaded = SAE.from_pretrained(text, sae_id, device="cpu")
        except ValueError:  # not a SAELens release name: try it as a hub repo below
            loaded = None
        if loaded is not None:
            from .sae_formats import from_saelens

            sae = loaded[0] if isinstance(loaded, tuple) else loaded
            tensors = {name: value.float().cpu().numpy() for name, value in sae.state_dict().items()}
            return from_saelens(sae.cfg.to_dict(), tensors, source=f"{text}/{sae_id}")
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(text, allow_patterns=f"{sae_id}/*" if sae_id else None))
    except Exception as error:  # offline, unknown repo, no access: the hub's own exception types vary
        raise NeuroMagicsError(f"Could not fetch {text!r} from the Hugging Face hub ({type(error).__name__}): check "
                               "the name and the network, or download it and give the folder.") from None
    return read_folder(folder / sae_id if sae_id else folder)


_NO_CODES = {name: np.zeros((0, 1) if name in ("indices", "values") else 0, dtype=np.int32)
             for name in ("indices", "values", "text_index", "position")}


def _read_held_out(subject: Subject, sae: SparseAutoencoder, texts: Sequence[str], *, progress: bool) -> None:
    """Fill in the SAE's held-out report, codes and tokens (see ``_evaluate``)."""
    slots = sae.k if sae.activation == "topk" else min(sae.width, CODE_SLOTS)
    report, codes, tokens = _evaluate(subject, sae.coder(subject.device), sae.scale, sae.site, sae.layer, texts,
                                      slots=slots, progress=progress)
    sae.report = {**sae.report, **report}
    sae.code_indices, sae.code_values = codes["indices"], codes["values"]
    sae.text_index, sae.position, sae.tokens = codes["text_index"], codes["position"], tokens
    sae._subject = weakref.ref(subject)


@torch.no_grad()
def _evaluate(subject: Subject, coder: FeatureCoder, scale: float, site: str, step: int, texts: Sequence[str], *,
              slots: int, progress: bool) -> tuple[dict[str, float], dict[str, np.ndarray], list[list[str]]]:
    """The held-out report and codes (each token's ``slots`` strongest features, or all its
    active ones where more are active): FVU, L0, and the next-token cross-entropy over the
    texts' own tokens with the site left alone, replaced by its reconstruction on those
    tokens, and zeroed there."""
    prefix_length = len(subject.tokenizer(CONTRAST_PREFIX)["input_ids"])
    totals = {"original": 0.0, "spliced": 0.0, "zero": 0.0}
    n_predictions, squared_error, variance_parts, active = 0, 0.0, [], 0
    indices_all, values_all, text_index, positions, tokens = [], [], [], [], []
    with ProgressBar(len(texts), "held-out evaluation", "text", enabled=progress) as bar:
        for start in range(0, len(texts), EVAL_BATCH):
            batch = texts[start:start + EVAL_BATCH]
            encoded = subject.encode([CONTRAST_PREFIX + text for text in batch])
            ids, mask = encoded["input_ids"].to(subject.device), encoded["attention_mask"].to(subject.device)
            own = _own_token_mask(mask, prefix_length)  # the texts' own tokens (no padding, no prefix)
            inputs = prepare(subject, ids, mask)
            original = run(subject, inputs, logits_at="all", capture=Capture(sites=(site,), steps=[step],
                                                                                  device=subject.device))
            x = original.captures[site][0].float()
            scaled = x * scale
            dense = coder.dense(scaled)
            rebuilt = coder.decode(dense)
            # every active feature is kept: a ReLU SAE may have more than ``slots`` on a token
            most_active = int((dense[own] > 0).sum(-1).max()) if own.any() else 0
            values, indices = dense.topk(min(dense.shape[-1], max(slots, most_active)), dim=-1)
            spliced = torch.where(own[..., None], rebuilt / scale, x).to(subject.dtype)
            zeroed = torch.where(own[..., None], torch.zeros_like(x), x).to(subject.dtype)
            logits = {"original": original.logits}
            for name, value in (("spliced", spliced), ("zero", zeroed)):
                logits[name] = run(subject, inputs, logits_at="all",
                                   edits=[Edit(step=step, site=site, op="replace", value=value)]).logits
            scored = own[:, :-1] & own[:, 1:]  # predictions made at and of the texts' own tokens
            targets = ids[:, 1:][scored]
            for name, value in logits.items():
                totals[name] += float(torch.nn.functional.cross_entropy(
                    value[:, :-1][scored].float(), targets, reduction="sum"))
            n_predictions += int(scored.sum())
            kept = own.cpu()
            squared_error += float((scaled - rebuilt)[own].pow(2).sum())
            active += int((dense[own] > 0).sum())
            variance_parts.append(scaled[own].double().cpu())
            indices_all.append(indices[own].cpu().numpy().astype(np.int32))
            values_all.append(values[own].float().cpu().numpy())
            for row in range(len(batch)):
                where = np.flatnonzero(kept[row].numpy())
                text_index.append(np.full(len(where), start + row, dtype=np.int32))
                positions.append(np.arange(len(where), dtype=np.int32))
                tokens.append(subject.token_pieces(ids[row, where].tolist()))
            bar.update(len(batch))
    if not n_predictions:
        raise NeuroMagicsError("The held-out texts are one token each: give longer texts.")
    stacked = torch.cat(variance_parts)
    width = max(part.shape[1] for part in indices_all)  # batches padded to the widest with zero codes
    indices_all = [np.pad(part, ((0, 0), (0, width - part.shape[1]))) for part in indices_all]
    values_all = [np.pad(part, ((0, 0), (0, width - part.shape[1]))) for part in values_all]
    codes = {"indices": np.concatenate(indices_all), "values": np.concatenate(values_all),
             "text_index": np.concatenate(text_index), "position": np.concatenate(positions)}
    report = {"fvu": squared_error / float((stacked - stacked.mean(0)).pow(2).sum()),
              "l0": active / len(stacked), "held_out_tokens": int(len(stacked)),
              **{f"ce_{name}": total / n_predictions for name, total in totals.items()}}
    return report, codes, tokens


def _own_token_mask(attention_mask: torch.Tensor, prefix_length: int) -> torch.Tensor:
    """True at each row's own tokens: after the left padding and the prefix."""
    seen = attention_mask.long().cumsum(-1)
    return (attention_mask > 0) & (seen > prefix_length)
