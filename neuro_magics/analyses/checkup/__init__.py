"""%checkup: a health report of a model's internals from a few batched passes over a small corpus.

One no-grad pass under eager attention captures, per program step, the residual stream, the
attention weights, the per-head outputs and the MLP neurons, and reduces them batch by batch
(nothing corpus-sized is kept); one gradient pass gives each head's importance; the weights
give each matrix's spectrum. Findings, each with a severity, a one-line explanation, where it
is (program step and the block it runs / head / token / dim), the array that shows it and an action one click away:

- massive activations (Sun et al. 2024, "Massive activations in LLMs"): ``|h| > 100`` and
  ``> 1000 x`` the step's median ``|h|``; action: set them to their corpus mean (or zero);
- attention sinks: mean attention from every later query to the first token ``> 0.5``
  (Xiao et al. 2023 name them; uniform attention over 64 tokens gives about 0.07);
- dead heads: importance ``|dL/d gate|`` (Michel et al. 2019) below ``1e-3 x`` the median
  head's; redundant heads: the cosine of two heads' outputs (what they write into the
  residual stream) over the corpus ``> 0.95``; action: ablate and diff;
- dead MLP neurons: ``max |a|`` over the corpus below ``1e-3 x`` the step's median neuron's
  (exactly 0 for a neuron whose gate never opens); action: ablate and diff (a no-op check);
- saturated MLP neurons: stuck at one value on every token (spread ``std < 0.05 x |mean|``)
  while as strong as the step's typical neuron (``|mean| >=`` its median RMS): a neuron
  driven into its nonlinearity's flat end, or a bias in disguise, carrying no information
  about the token; action: zero it and diff;
- residual norm growth, Block Influence per step (Men et al. 2024, ShortGPT) and the depth
  where the logit lens settles (its top-1 agrees with the output's for most tokens): info;
- weight spectra: the power-law exponent alpha of each matrix's eigenvalues of ``W^T W``
  (Martin & Mahoney 2021; WeightWatcher's fit: Clauset et al. 2009 MLE with ``xmin`` at the
  smallest KS distance); outside ``[2, 6]`` is reported as info (WeightWatcher's range for
  well-trained layers; a random initialisation has no power-law tail and lands above 6).

``weightwatcher`` itself is not used: it pulls matplotlib, powerlaw and a progress-bar package
for one fit of twenty lines.

The package, one concern per module: ``config`` (thresholds and ``CheckupConfig``), ``passes``
(the corpus passes and their batch-by-batch reductions), ``spectra`` (the power-law fit of the weights),
``findings`` (reading findings off the arrays), ``fixes`` (each finding's action as an
intervention), ``result`` (``CheckupResult``) and ``run`` (``checkup`` itself).
"""

from .config import (ALPHA_RANGE, DEAD_HEAD_FRACTION, DEAD_NEURON_FRACTION, LENS_AGREEMENT, LENS_POSITIONS,
                     MASSIVE_ABSOLUTE, MASSIVE_RATIO, REDUNDANT_COSINE, SATURATED_SPREAD, SEVERITIES, SINK_MASS,
                     CheckupConfig)
from .findings import Finding
from .fixes import massive_fix as _massive_fix  # noqa: F401 (tests/test_device_map.py imports it by this name)
from .result import CheckupResult
from .run import checkup
from .spectra import power_law_alpha

__all__ = ["ALPHA_RANGE", "DEAD_HEAD_FRACTION", "DEAD_NEURON_FRACTION", "LENS_AGREEMENT", "LENS_POSITIONS",
           "MASSIVE_ABSOLUTE", "MASSIVE_RATIO", "REDUNDANT_COSINE", "SATURATED_SPREAD", "SEVERITIES", "SINK_MASS",
           "CheckupConfig", "CheckupResult", "Finding", "checkup", "power_law_alpha"]
