"""How a text is read for its activations, the same way by every analysis that reads one
(contrast vectors, activations for projections and probes, SAE training and reading)."""

from __future__ import annotations

#: Texts are read after this, so that even a one-token text is not at position 0: many models
#: park an outsized "attention sink" state on the first token, and a difference taken there is
#: mostly that (for the default model, |v| ~ 780 instead of ~ 70).
CONTRAST_PREFIX = "\n"
