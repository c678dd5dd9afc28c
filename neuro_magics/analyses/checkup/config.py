"""The checkup's thresholds (each from the paper that defines the anomaly)."""

from __future__ import annotations

#: Sun et al. 2024: an activation is massive when ``|h| > 100`` and about ``1000x`` the median.
MASSIVE_ABSOLUTE = 100.0
MASSIVE_RATIO = 1000.0
#: Mean attention to the first token above this marks a sink head.
SINK_MASS = 0.5
#: Importance below this fraction of the median head's marks a dead head.
DEAD_HEAD_FRACTION = 1e-3
#: Cosine between two heads' outputs above this marks them redundant.
REDUNDANT_COSINE = 0.95
#: ``max |a|`` below this fraction of the layer's median neuron's marks a dead neuron.
DEAD_NEURON_FRACTION = 1e-3
#: A neuron whose spread over the corpus is below this fraction of its mean is saturated (if strong).
SATURATED_SPREAD = 0.05
#: WeightWatcher's range of alpha for well-trained layers.
ALPHA_RANGE = (2.0, 6.0)
#: The logit lens has settled from the first layer whose top-1 agrees with the output's this often.
LENS_AGREEMENT = 0.5
SEVERITIES = ("high", "medium", "info")
LENS_POSITIONS = 4  # last positions of each text read through the logit lens
