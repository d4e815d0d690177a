"""The second input branch of the Tc model: fraction-weighted element statistics, differentiable in x.

For the element properties of `gdmcd_core.chem.element_features.PROPERTIES` (Z, mass, electronegativity,
period, group, radius, valence electrons), each standardised over the 118 elements, and fractions x:

    mean_p = sum_i x_i p_i,     std_p = sqrt(sum_i x_i p_i^2 - mean_p^2 + eps)

Both are smooth in x (min/max are not, so they are left out), so the design loop's gradient flows
through this branch as through the image. A two-layer MLP turns the 2P statistics into `hidden`
features that the model concatenates with the ResNet's pooled features before its linear head.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gdmcd_core.chem.element_features import property_table
from gdmcd_core.chem.embeddings import embedding_table

STD_EPS = 1e-4  # keeps d std / d x finite for a single-element composition (variance 0)


def standardized_properties() -> torch.Tensor:
    """(118, P) float32 element properties, each column at mean 0 and std 1 over the elements."""
    t = torch.from_numpy(property_table().astype(np.float32))  # a copy: the cached table is read-only
    return (t - t.mean(0)) / t.std(0)


def element_statistics(x: torch.Tensor, props: torch.Tensor) -> torch.Tensor:
    """x (B, 118) fractions, props (118, P) -> (B, 2P): the P means, then the P standard deviations."""
    mean = x @ props
    var = (x @ props.square() - mean.square()).clamp_min(0.0)
    return torch.cat([mean, torch.sqrt(var + STD_EPS)], dim=1)


class ElementStatsBranch(nn.Module):
    """x (B, 118) -> (B, hidden): an MLP over the fraction-weighted element statistics."""

    def __init__(self, hidden: int, embedding: str = "") -> None:
        super().__init__()
        # Fixed data rebuilt from the element table (or the embedding's file), so it is not stored in checkpoints.
        props = (
            standardized_properties()
            if not embedding
            else torch.from_numpy(embedding_table(embedding).astype(np.float32))
        )
        self.register_buffer("props", props, persistent=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * props.shape[1], hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(element_statistics(x, self.props))


__all__ = ["ElementStatsBranch", "element_statistics", "standardized_properties"]
