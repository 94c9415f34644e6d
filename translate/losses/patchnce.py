"""PatchNCE (Park et al., 2020, eq. 2-5): a patch of the translation should match the patch of the source
at the same place better than the other patches of that source (taesungp's ``models/patchnce.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MASKED = -10.0
"""The authors' value for a query's similarity to its own key among the negatives (exp(-10 / T) ~ 0)."""


def patch_nce_loss(
    queries: Tensor,
    keys: Tensor,
    batch_size: int,
    temperature: float = 0.07,
    negatives_from_minibatch: bool = False,
) -> Tensor:
    """InfoNCE per patch: cross-entropy over ``[q.k+, q.k- ...] / T`` with the positive as the class.

    Query ``i`` of an image is positive with key ``i`` and negative with every key of the same image (of the
    whole batch with ``negatives_from_minibatch``, the authors' single-image setting); its similarity to key
    ``i`` among the negatives is set to -10, as theirs. The keys are constants (detached).

    Args:
        queries, keys: ``(N * P, C)`` unit rows, image by image (``PatchSampler``'s output).
        batch_size: N, the images the rows come from.
        temperature: T (0.07).
        negatives_from_minibatch: draw the negatives from all N images.
    Returns:
        ``(N * P,)``: the loss of each query (the authors' ``reduction='none'``).
    """
    keys = keys.detach()
    positive = (queries * keys).sum(1, keepdim=True)
    groups = 1 if negatives_from_minibatch else batch_size
    q = queries.view(groups, -1, queries.shape[1])
    k = keys.view(groups, -1, keys.shape[1])
    negative = torch.bmm(q, k.transpose(2, 1))
    own = torch.eye(negative.shape[1], device=queries.device, dtype=torch.bool)[None]
    negative = negative.masked_fill(own, MASKED).view(-1, negative.shape[1])
    logits = torch.cat([positive, negative], dim=1) / temperature
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=queries.device)
    return F.cross_entropy(logits, target, reduction="none")


class PatchNCELoss(nn.Module):
    """:func:`patch_nce_loss` with its temperature and negatives set: ``loss(queries, keys, batch_size)``."""

    def __init__(self, temperature: float = 0.07, negatives_from_minibatch: bool = False) -> None:
        super().__init__()
        self.temperature = temperature
        self.negatives_from_minibatch = negatives_from_minibatch

    def forward(self, queries: Tensor, keys: Tensor, batch_size: int) -> Tensor:
        return patch_nce_loss(queries, keys, batch_size, self.temperature, self.negatives_from_minibatch)
