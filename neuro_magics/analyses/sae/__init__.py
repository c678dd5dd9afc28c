"""%sae: sparse autoencoders that split one site's activations into sparse features.

A compact TopK SAE of our own (Gao et al. 2024, "Scaling and evaluating sparse
autoencoders"), laid out as the field lays out its trainers (sparsify, SAELens), one concern
per module:

- ``coder``: the encoder/decoder with the one encode path everything uses;
- ``config``: ``SaeTrainingConfig``, the training options as one validated, JSON-able value;
- ``training``: the fit (Adam, unit decoder rows, AuxK) and ``train_sae``;
- ``evaluation``: the held-out report and codes;
- ``result``: ``SparseAutoencoder``, the result and the feature dashboard's data;
- ``interventions``: steering by and ablating a feature;
- ``formats`` and ``loading``: SAELens / sparsify files, hub fetching, ``load_sae``.

Why not a library: on PyPI ``sparsify`` is Neural Magic's end-of-life pruning tool
(EleutherAI's trainer is not published there), and ``sae-lens`` pulls TransformerLens,
datasets, plotly and more and trains through TransformerLens models, not the unmodified HF
modules this package drives. The package imports core and its own modules only, apart from
``nm.steer`` (see ``interventions.steer_by_feature``).
"""

from .coder import ACTIVATIONS, SparseCoder
from .config import SAE_SITES, SaeTrainingConfig
from .evaluation import CODE_SLOTS, EVAL_BATCH, HOLDOUT
from .loading import fetch_sae, load_sae
from .result import SparseAutoencoder
from .training import AUXK_COEF, FitReport, auxk_loss, fit_topk, train_sae

__all__ = ["ACTIVATIONS", "AUXK_COEF", "CODE_SLOTS", "EVAL_BATCH", "HOLDOUT", "SAE_SITES", "FitReport",
           "SaeTrainingConfig", "SparseAutoencoder", "SparseCoder", "auxk_loss", "fetch_sae", "fit_topk",
           "load_sae", "train_sae"]
