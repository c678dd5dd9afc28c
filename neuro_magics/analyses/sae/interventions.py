"""Acting on the model through an SAE's features: steering by a feature's decoder direction
(an ``nm.steer`` intervention, so ``%steer --reset`` and replay treat it as any steering) and
ablating a feature (its own rebuilder, which reads the SAE back from a content-addressed file)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ...core.content_cache import file_sha256
from ...core.errors import NeuroMagicsError
from ...core.interventions import Hook, Intervention, rebuilder, replacing_input, replacing_output
from ...core.subject import Subject

if TYPE_CHECKING:
    from .result import SparseAutoencoder

#: The cache store an SAE never saved goes to before an ablation records it.
CACHE_KIND = "sae"


def steer_by_feature(sae: SparseAutoencoder, subject: Subject, feature: int, coef: float, *,
                     install: bool = True) -> Intervention:
    """Add ``coef`` units of ``feature`` (``coef x`` its decoder direction) to the stream where
    the site's output goes, through ``nm.steer``. The one import of another analysis in this
    package: the steering intervention, its rebuilder and its checks live in
    ``analyses.interventions`` (``nm.steer``), and a feature's steering is that same intervention."""
    from ..interventions import steer

    sae.check_same_model(subject)
    if not subject.program.is_identity:
        raise NeuroMagicsError("Steering by a feature needs the plain layer program: reset the program first.")
    if sae.site == "attn_out":
        raise NeuroMagicsError("An attn_out feature enters mid-block, where nm.steer cannot add: "
                               "train the SAE on resid_pre, resid_post or mlp_out to steer by its features.")
    block = sae.block if sae.site == "resid_pre" else sae.block + 1
    if block >= subject.n_layers:
        raise NeuroMagicsError(f"The output of the last block feeds the final norm, where nm.steer cannot add: "
                               f"train the SAE on an earlier block (0-{subject.n_layers - 2}) to steer by it.")
    source = sae.path.name if sae.path is not None else (sae.source or "an SAE trained here")
    return steer(subject, layer=block, coef=coef, vector=sae.direction(feature), install=install,
                 vector_name=f"SAE feature {feature} of {sae.site} at block {sae.block}, {source}")


def ablate_feature(sae: SparseAutoencoder, subject: Subject, feature: int, *, install: bool = True) -> Intervention:
    """Remove ``feature``'s contribution ``f(x) x direction`` from the site at every position.
    The intervention records the SAE's file and its SHA-256; an SAE never saved is saved first
    into the cache (``$NEURO_MAGICS_CACHE/sae/``, named by its content)."""
    sae.check_same_model(subject)
    sae.check_feature(feature)
    if not subject.program.is_identity:
        raise NeuroMagicsError("Ablating a feature needs the plain layer program: reset the program first.")
    if sae.path is None or not sae.path.is_file():
        _, digest = sae.cache()
    else:
        digest = file_sha256(sae.path)
    arguments = {"sae": str(sae.path), "sha256": digest, "feature": int(feature), "site": sae.site,
                 "block": sae.block}
    description = f"ablate SAE feature {feature} of {sae.site} at block {sae.block} ({sae.path.name})"
    intervention = _feature_ablation(subject, arguments, description, sae=sae)
    return intervention.install(subject) if install else intervention


@rebuilder("sae_ablate")
def _feature_ablation(subject: Subject, arguments: dict[str, Any], description: str,
                      sae: SparseAutoencoder | None = None) -> Intervention:
    """The hook that subtracts one feature's contribution at the site, from the SAE's file
    (checked against the recorded SHA-256 when there is one)."""
    if sae is None:
        from .result import SparseAutoencoder

        path = Path(arguments["sae"])
        if not path.is_file():
            raise NeuroMagicsError(f"The SAE file {arguments['sae']!r} this feature ablation records is gone: "
                                   "save the SAE there again to replay it.")
        if "sha256" in arguments and file_sha256(path) != arguments["sha256"]:
            raise NeuroMagicsError(f"The SAE file {arguments['sae']!r} changed since this feature ablation was "
                                   "recorded: it no longer holds the same SAE.")
        sae = SparseAutoencoder.load(path)
    feature = arguments["feature"]

    def remove_feature(tensor: torch.Tensor) -> torch.Tensor:
        coder = sae.coder(tensor.device)  # built once per device (models spread over GPUs), kept on the SAE
        with torch.no_grad():
            amount = coder.encode(tensor.float() * sae.scale)[..., feature:feature + 1]
            return tensor - (amount * coder.W_dec[feature] / sae.scale).to(tensor.dtype)

    block, site, adapter = subject.blocks[arguments["block"]], arguments["site"], subject.adapter
    if site == "resid_pre":
        return Intervention("sae_ablate", description, arguments,
                            [Hook(block, "pre_kwargs", replacing_input(remove_feature))])
    module = {"resid_post": block, "mlp_out": adapter.submodule(block, adapter.mlp),
              "attn_out": adapter.submodule(block, adapter.attention)}[site]
    return Intervention("sae_ablate", description, arguments, [Hook(module, "forward", replacing_output(remove_feature))])
