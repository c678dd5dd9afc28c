"""Do our numbers match Hugging Face's? Checked on every load, on a short fixed prompt.

The runner drives the unmodified HF blocks, so its logits should equal the model's own
forward exactly (the same modules doing the same arithmetic, in any dtype). A load that does
not match says so at once, with the size of the difference, instead of letting every later
number carry an unseen error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from .programs import LayerProgram
from .runner import prepare, run
from .subject import Subject

FIDELITY_PROMPT = "The capital of France is Paris, and 12 + 30 = 42."
# Differences that are rounding, not a bug, by dtype: the runner computes the same arithmetic
# as HF's forward, so anything above these means a different computation.
TOLERANCE = {"float32": 1e-4, "float64": 1e-9, "float16": 5e-2, "bfloat16": 2e-1}


@dataclass(frozen=True)
class Fidelity:
    """The largest |logit difference| between our runner and HF's forward on one prompt."""

    max_abs_dlogit: float
    n_tokens: int
    dtype: str
    tolerance: float

    @property
    def matches(self) -> bool:
        return self.max_abs_dlogit <= self.tolerance

    def line(self) -> str:
        """One sentence for %load_model and %model."""
        if self.max_abs_dlogit == 0:
            return f"matches HF: max |dlogit| = 0 over {self.n_tokens} tokens"
        if self.matches:
            return (f"matches HF: max |dlogit| = {self.max_abs_dlogit:.2g} over {self.n_tokens} tokens "
                    f"({self.dtype} rounding; up to {self.tolerance:g} expected)")
        return (f"DOES NOT match HF: max |dlogit| = {self.max_abs_dlogit:.3g} over {self.n_tokens} tokens, "
                f"above the {self.tolerance:g} that {self.dtype} rounding explains: numbers from this model "
                "are not HF's; please report the model and versions")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "matches": self.matches}


@torch.no_grad()
def check_fidelity(subject: Subject) -> Fidelity:
    """Run ``FIDELITY_PROMPT`` (fixed token ids without a tokenizer) through HF's own forward and
    through our runner, both on the original block order, and compare the logits at every
    position. Interventions active now act on both alike."""
    with subject.lock:
        if subject.tokenizer is not None:
            input_ids = subject.encode(FIDELITY_PROMPT)["input_ids"][:1]
        else:
            input_ids = (torch.arange(12, device=subject.device) * 7 % subject.vocab_size)[None]
        identity = LayerProgram.identity(subject.n_layers)
        with subject.program_applied(identity):
            theirs = subject.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                   use_cache=False).logits
        ours = run(subject, prepare(subject, input_ids), program=identity, logits_at="all").logits
        difference = (ours.float() - theirs.float()).abs().max().item()
    dtype = str(subject.dtype).removeprefix("torch.")
    return Fidelity(max_abs_dlogit=difference, n_tokens=input_ids.shape[1], dtype=dtype,
                    tolerance=TOLERANCE.get(dtype, 1e-4))
