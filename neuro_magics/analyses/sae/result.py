"""An SAE as a result: its weights (the coder built from them once per device), its report,
the held-out codes the feature dashboard reads (top contexts, interval samples, histograms,
token and text search, logit effects), its files, and the interventions it makes."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...core.content_cache import store_file
from ...core.errors import NeuroMagicsError
from ...core.interventions import Intervention
from ...core.paths import check_folder_target
from ...core.reading import CONTRAST_PREFIX
from ...core.results import Result
from ...core.runner import Capture, prepare, run
from ...core.subject import Subject
from .coder import WEIGHT_NAMES, SparseCoder
from .config import SaeTrainingConfig
from .evaluation import own_token_mask
from .formats import write_saelens
from .interventions import CACHE_KIND, ablate_feature, steer_by_feature


class SparseAutoencoder(Result):
    """An SAE on ``site`` at program ``step`` (running original ``block``), trained here or
    loaded from SAELens or sparsify files, with its report and the held-out codes its feature
    reading draws on.

    ``encode(x)`` / ``decode(f)`` work in the model's units (``x`` is ``[..., d_model]``);
    ``fvu`` (fraction of variance unexplained), ``l0`` (active features per token),
    ``dead_fraction`` (features silent for the last pass over the training tokens; for a
    loaded SAE, silent on every held-out token) and the cross-entropies ``ce_original`` /
    ``ce_spliced`` / ``ce_zero`` (the site left alone, replaced by its reconstruction, zeroed)
    are measured on the held-out texts. ``activation`` is ``"topk"`` (``k`` active features),
    ``"relu"`` or ``"jumprelu"`` (``threshold`` per feature); ``source`` is the folder or hub
    name a loaded SAE came from (None for one trained here). The weight arrays are read-only:
    assign new arrays (``sae.W_dec = ...``) to change them, which drops the coders built from
    the old ones.
    """

    kind = "sae"

    def __init__(self, weights: dict[str, np.ndarray], *, site: str, step: int, block: int, k: int | None,
                 scale: float, report: dict[str, Any], codes: dict[str, np.ndarray], tokens: list[list[str]],
                 metadata: dict[str, Any], activation: str = "topk", center_input: bool = True,
                 source: str | None = None):
        self.activation, self.k, self.center_input = activation, k, center_input
        self.W_enc, self.b_enc = weights["W_enc"], weights["b_enc"]
        self.W_dec, self.b_dec = weights["W_dec"], weights["b_dec"]
        self.threshold = weights.get("threshold")
        self.fvu_curve, self.since_fired = weights["fvu_curve"], weights["since_fired"]
        self.site, self.step, self.block, self.scale = site, step, block, scale
        self.source = source
        self.report = report
        self.code_indices, self.code_values = codes["indices"], codes["values"]  # [tokens, slots]
        self.text_index, self.position = codes["text_index"], codes["position"]  # [tokens]
        self.tokens = tokens
        self.metadata = metadata
        self.path: Path | None = None  # the file it was last saved to or loaded from (what an ablation records)
        self._subject: Any = None  # a weakref to the Subject it was made on (the dashboard's buttons act there)

    def __setattr__(self, name: str, value: Any) -> None:
        """Weights (and what the coder reads with them) stored read-only; setting one drops the
        coders built from the old values."""
        if name in _CODER_INPUTS:
            if isinstance(value, np.ndarray):
                value = value.view()
                value.flags.writeable = False
            self.__dict__["_coders"] = {}
        super().__setattr__(name, value)

    @property
    def subject(self) -> Subject | None:
        """The Subject this SAE was trained or loaded on, while it is alive."""
        return None if self._subject is None else self._subject()

    def attach(self, subject: Subject) -> None:
        """Remember (weakly) the Subject the dashboard's buttons act on."""
        self._subject = weakref.ref(subject)

    @property
    def layer(self) -> int:
        """The program step (``step``; the name before blocks and steps were told apart)."""
        return self.step

    @property
    def training_config(self) -> SaeTrainingConfig | None:
        """How it was trained (None for a loaded SAE), also for results saved before the config
        existed (their metadata held its fields flat, the step as ``layer``)."""
        if self.source is not None:
            return None
        recorded = self.metadata.get("config")
        if recorded is None:
            names = set(SaeTrainingConfig.names())
            recorded = {name: value for name, value in self.metadata.items() if name in names}
            recorded.update(step=self.metadata.get("layer", self.step), block=self.block)
        return SaeTrainingConfig.from_dict(recorded)

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

    def coder(self, device: torch.device | str = "cpu") -> SparseCoder:
        """The frozen encoder/decoder on ``device`` (in the SAE's scaled units), built on the first
        call for that device and kept until a weight is replaced."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device not in self._coders:
            weights = {name: getattr(self, name) for name in WEIGHT_NAMES}
            self._coders[device] = SparseCoder(weights, activation=self.activation, k=self.k,
                                               center_input=self.center_input, threshold=self.threshold,
                                               device=device)
        return self._coders[device]

    def encode(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Dense feature activations ``[..., width]`` of activations ``x`` ``[..., d_model]``."""
        tensor = self._as_input(x, self.d_model, "activations")
        with torch.no_grad():
            dense = self.coder(tensor.device).encode(tensor.float() * self.scale)
        return dense.numpy() if isinstance(x, np.ndarray) else dense.to(tensor.dtype)

    def decode(self, f: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Activations ``[..., d_model]`` rebuilt from feature activations ``[..., width]``."""
        tensor = self._as_input(f, self.width, "feature activations")
        with torch.no_grad():
            rebuilt = self.coder(tensor.device).decode(tensor.float()) / self.scale
        return rebuilt.numpy() if isinstance(f, np.ndarray) else rebuilt.to(tensor.dtype)

    @staticmethod
    def _as_input(x: Any, width: int, what: str) -> torch.Tensor:
        tensor = torch.from_numpy(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x
        if tensor.ndim == 0 or tensor.shape[-1] != width:
            raise NeuroMagicsError(f"{what} must end in a dimension of {width}, got shape {tuple(tensor.shape)}.")
        return tensor

    def direction(self, feature: int) -> torch.Tensor:
        """What one unit of ``feature`` adds to the site, in the model's units."""
        self.check_feature(feature)
        return torch.tensor(self.W_dec[feature] / self.scale)

    def decoder_directions(self) -> np.ndarray:
        """Every feature's direction ``[width, d_model]``: the decoder in the model's units."""
        return self.W_dec / self.scale

    def check_feature(self, feature: int) -> None:
        """One line when ``feature`` is not one of this SAE's."""
        if not isinstance(feature, (int, np.integer)) or not 0 <= feature < self.width:
            raise NeuroMagicsError(f"Feature {feature!r} is out of range: this SAE has features 0-{self.width - 1}.")

    # -- feature reading (held-out texts) ---------------------------------------------------------

    def activations_of(self, feature: int) -> np.ndarray:
        """``feature``'s activation on every held-out token (0 where it is not among the kept codes)."""
        self.check_feature(feature)
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
        self.check_same_model(subject)
        if not isinstance(text, str) or not text.strip():
            raise NeuroMagicsError("Give some text to search the features by.")
        with subject.lock:
            self._check_step(subject)
            prefix_length = len(subject.tokenizer(CONTRAST_PREFIX)["input_ids"])
            encoded = subject.encode(CONTRAST_PREFIX + text)
            ids, mask = encoded["input_ids"].to(subject.device), encoded["attention_mask"].to(subject.device)
            inputs = prepare(subject, ids, mask)
            output = run(subject, inputs, stop=self.step + 1, logits_at=None,
                         capture=Capture(sites=(self.site,), steps=[self.step], device=subject.device))
        x = output.captures[self.site][0][own_token_mask(mask, prefix_length)].float()
        means = self.coder(subject.device).encode(x * self.scale).mean(0).cpu().numpy()
        best = np.argsort(-means, kind="stable")[:n]
        return [(int(f), float(means[f])) for f in best if means[f] > 0]

    @torch.no_grad()
    def logit_effects(self, subject: Subject, feature: int, n: int = 10) -> dict[str, list[tuple[str, float]]]:
        """Tokens whose logits ``feature``'s decoder direction raises and lowers most, read
        straight through the unembedding (the final norm left out, as sae_vis does)."""
        self.check_same_model(subject)
        direction = self.direction(feature).to(device=subject.device, dtype=subject.dtype)
        with subject.lock:
            effects = subject.adapter.unembed(subject.model, direction[None, None])[0, 0].float().cpu()
        top, bottom = effects.topk(n), (-effects).topk(n)
        pieces = lambda ids: subject.token_pieces(ids.tolist())  # noqa: E731
        return {"top": list(zip(pieces(top.indices), top.values.tolist())),
                "bottom": list(zip(pieces(bottom.indices), (-bottom.values).tolist()))}

    # -- acting on the model -------------------------------------------------------------------------

    def steer(self, subject: Subject, feature: int, coef: float, *, install: bool = True) -> Intervention:
        """Add ``coef`` units of ``feature`` (``coef x`` its decoder direction) to the stream
        where the site's output goes, through ``nm.steer`` (an intervention %model shows)."""
        return steer_by_feature(self, subject, feature, coef, install=install)

    def ablate(self, subject: Subject, feature: int, *, install: bool = True) -> Intervention:
        """Remove ``feature``'s contribution ``f(x) x direction`` from the site at every position
        (the SAE's own encoding of the site's value). The intervention records the SAE's file
        and its SHA-256, so results can replay it; an SAE never saved is saved first into the
        cache folder (``$NEURO_MAGICS_CACHE/sae/``, under a name from its content)."""
        return ablate_feature(self, subject, feature, install=install)

    def cache(self) -> tuple[Path, str]:
        """Save into the content-addressed cache (kept there if already present); the file and
        its SHA-256."""
        self.path, digest = store_file(CACHE_KIND, ".npz", self._write_npz)
        return self.path, digest

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

    def check_same_model(self, subject: Subject) -> None:
        """One line when ``subject`` is not the model this SAE reads."""
        if subject.name != self.metadata.get("model") or subject.d_model != self.d_model:
            raise NeuroMagicsError(f"This SAE was made on {self.metadata.get('model')}, not {subject.name}: "
                                   "load that model, or train an SAE on this one.")

    def _check_step(self, subject: Subject) -> None:
        if self.step >= len(subject.program) or subject.program.steps[self.step] != self.block:
            raise NeuroMagicsError(f"Program step {self.step} no longer runs block {self.block}, the SAE's: "
                                   "reset the layer program first.")

    # -- data --------------------------------------------------------------------------------------------

    def to_numpy(self) -> np.ndarray:
        """The feature table ``[width, 3]`` of ``to_pandas``: frequency, largest held-out activation,
        dead (1.0) or not (the decoder is ``decoder_directions()``)."""
        return np.stack([self.frequencies, self.max_activations, self.dead], axis=1).astype(np.float64)

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
        # "layer" is the saved files' name for the step (files saved before steps and blocks were told apart)
        return {"site": self.site, "layer": self.step, "block": self.block, "k": self.k, "scale": self.scale,
                "report": self.report, "tokens": self.tokens, "activation": self.activation,
                "center_input": self.center_input, "source": self.source}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> SparseAutoencoder:
        codes = {"indices": arrays["code_indices"], "values": arrays["code_values"],
                 "text_index": arrays["text_index"], "position": arrays["position"]}
        k = fields["k"]
        return cls(arrays, site=fields["site"], step=int(fields["layer"]), block=int(fields["block"]),
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
        return (f"SparseAutoencoder({self.site} at step {self.step} (block {self.block}), {self.width} features, {shape}; "
                f"FVU {self.fvu:.3f}, L0 {self.l0:.1f}, dead {self.dead_fraction:.1%}; CE {self.ce_original:.3f} -> "
                f"{self.ce_spliced:.3f} spliced (zero ablation {self.ce_zero:.3f}); {made})")


#: Attributes the coder is built from: setting one drops the coders built so far.
_CODER_INPUTS = frozenset(WEIGHT_NAMES) | {"threshold", "activation", "k", "center_input"}
