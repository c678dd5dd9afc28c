"""Cheap proxies of what a block does, read off the residual stream alone: the brain scan
draws them beside its scores, the checkup reports them and ShortGPT-style pruning ranks layers
by them."""

from __future__ import annotations

import math

import numpy as np
import torch


@torch.no_grad()
def proxy_metrics(states: torch.Tensor, attention_mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The sweep's cheap proxies from the layer inputs ``states`` ``[L+1, batch, tokens, d]``,
    averaged over real (unpadded) tokens: Block Influence ``1 - cos(x_l, x_{l+1})`` per
    layer (ShortGPT) and the angular distance ``arccos(cos(x_i, x_j)) / pi`` between the
    inputs of layers i and j (Gromov et al.)."""
    unit = torch.nn.functional.normalize(states[:, attention_mask.bool()].float(), dim=-1)  # [L+1, M, d]
    cosine = torch.einsum("amd,bmd->abm", unit, unit).clamp(-1.0, 1.0)
    angular = (torch.arccos(cosine) / math.pi).mean(-1)
    angular.fill_diagonal_(0.0)
    influence = 1.0 - torch.diagonal(cosine, offset=1, dim1=0, dim2=1).mean(0)
    return influence.double().cpu().numpy(), angular.double().cpu().numpy()
