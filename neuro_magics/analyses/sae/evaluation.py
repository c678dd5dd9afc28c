"""The held-out reading of an SAE (trained here or loaded): its report (FVU, L0, the
next-token loss with the site left alone, replaced by its reconstruction, and zeroed) and the
codes the feature dashboard reads (each held-out token's strongest features), all through the
coder's one encode path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ...core.errors import NeuroMagicsError
from ...core.progress import ProgressBar
from ...core.reading import CONTRAST_PREFIX
from ...core.runner import Capture, Edit, prepare, run
from ...core.subject import Subject
from .coder import SparseCoder

if TYPE_CHECKING:
    from .result import SparseAutoencoder

#: Every ``HOLDOUT``-th text is kept for evaluation, never trained on.
HOLDOUT = 10
#: Texts per batch when evaluating the spliced-in loss.
EVAL_BATCH = 8
#: Codes kept per held-out token for a ReLU or JumpReLU SAE (at least; more where more features are
#: active on a token, so that every active feature is kept); TopK keeps k.
CODE_SLOTS = 64

NO_CODES = {name: np.zeros((0, 1) if name in ("indices", "values") else 0, dtype=np.int32)
            for name in ("indices", "values", "text_index", "position")}


def read_held_out(subject: Subject, sae: SparseAutoencoder, texts: Sequence[str], *, progress: bool) -> None:
    """Fill in the SAE's held-out report, codes and tokens (see ``evaluate``)."""
    slots = sae.k if sae.activation == "topk" else min(sae.width, CODE_SLOTS)
    report, codes, tokens = evaluate(subject, sae.coder(subject.device), sae.scale, sae.site, sae.step, texts,
                                     slots=slots, progress=progress)
    sae.report = {**sae.report, **report}
    sae.code_indices, sae.code_values = codes["indices"], codes["values"]
    sae.text_index, sae.position, sae.tokens = codes["text_index"], codes["position"], tokens
    sae.attach(subject)


@torch.no_grad()
def evaluate(subject: Subject, coder: SparseCoder, scale: float, site: str, step: int, texts: Sequence[str], *,
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
            own = own_token_mask(mask, prefix_length)  # the texts' own tokens (no padding, no prefix)
            inputs = prepare(subject, ids, mask)
            original = run(subject, inputs, logits_at="all", capture=Capture(sites=(site,), steps=[step],
                                                                                  device=subject.device))
            x = original.captures[site][0].float()
            scaled = x * scale
            dense = coder.encode(scaled)
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


def own_token_mask(attention_mask: torch.Tensor, prefix_length: int) -> torch.Tensor:
    """True at each row's own tokens: after the left padding and the prefix."""
    seen = attention_mask.long().cumsum(-1)
    return (attention_mask > 0) & (seen > prefix_length)
