"""Published SAEs: a SAELens or sparsify folder, a SAELens release or a hub repo of sparsify
folders, read into our conventions and evaluated on the same held-out texts a trained SAE uses,
at scale 1."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...core.corpus import load_corpus
from ...core.errors import NeuroMagicsError
from ...core.results import run_metadata
from ...core.subject import Subject, with_lock
from .config import SAE_SITES, resolve_step
from .evaluation import HOLDOUT, NO_CODES, read_held_out
from .formats import SaeWeights, from_saelens, read_folder, site_of_hook
from .result import SparseAutoencoder


@with_lock
def load_sae(
    subject: Subject,
    source: str | Path,
    *,
    sae_id: str | None = None,
    step: int | None = None,
    block: int | None = None,
    site: str | None = None,
    layer: int | None = None,
    texts: str | Sequence[str] | None = None,
    progress: bool = True,
) -> SparseAutoencoder:
    """Load a published SAE and read it on ``subject``: ``source`` is a local folder in SAELens
    format (``cfg.json`` + ``sae_weights.safetensors``) or sparsify format (``cfg.json`` +
    ``sae.safetensors``), or one holding such folders (pick one with ``sae_id``); otherwise a
    SAELens release (``SAE.from_pretrained(source, sae_id)``, when sae_lens is installed) or a
    Hugging Face repo of sparsify folders (``sae_id`` the hookpoint). The hook name gives the
    site and block (``blocks.5.hook_resid_post``, ``layers.5``); ``step`` (program step) or
    ``block`` (original block) and ``site`` override it (``layer=`` is the old name of ``step``).
    The report and feature reading come from the same held-out texts a trained SAE uses (every
    tenth of ``texts``, default the built-in corpus)."""
    if site is not None and site not in SAE_SITES:
        raise NeuroMagicsError(f"Unknown site {site!r} for an SAE: use one of {', '.join(SAE_SITES)}.")
    if layer is not None:
        if step is not None:
            raise NeuroMagicsError("layer= is the old name of step=: give one of them.")
        step = layer
    if step is not None or block is not None:
        step = resolve_step(subject, step, block)
    weights = fetch_sae(source, sae_id)
    if site is None or step is None:
        hook_site, hook_block = site_of_hook(weights.hook)
        site = site or hook_site
        if step is None:
            if hook_block not in subject.program.steps:
                raise NeuroMagicsError(f"This SAE reads block {hook_block} ({weights.hook}) but {subject.name} has blocks "
                                       f"0-{subject.n_layers - 1} in its program: load the SAE made for this model.")
            step = resolve_step(subject, None, hook_block)
    if weights.W_enc.shape[0] != subject.d_model:
        raise NeuroMagicsError(f"This SAE reads {weights.W_enc.shape[0]}-dim activations but {subject.name}'s {site} has "
                               f"{subject.d_model}: load the SAE made for this model.")
    texts = list(load_corpus(texts).texts)
    held_out = texts[::HOLDOUT]
    arrays = {"W_enc": weights.W_enc, "b_enc": weights.b_enc, "W_dec": weights.W_dec, "b_dec": weights.b_dec,
              "fvu_curve": np.zeros(0, dtype=np.float32), "since_fired": np.zeros(weights.W_dec.shape[0], np.int64)}
    if weights.threshold is not None:
        arrays["threshold"] = weights.threshold
    metadata = run_metadata(subject, held_out, analysis="sae", site=site, step=int(step),
                            block=int(subject.program.steps[step]), source=weights.source, hook=weights.hook,
                            activation=weights.activation, k=weights.k)
    sae = SparseAutoencoder(arrays, site=site, step=int(step), block=int(subject.program.steps[step]), k=weights.k,
                            scale=1.0, report={}, codes=NO_CODES, tokens=[], metadata=metadata,
                            activation=weights.activation, center_input=weights.center_input, source=weights.source)
    read_held_out(subject, sae, held_out, progress=progress)
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
