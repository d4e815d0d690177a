"""Oxygen-aware features: how much anion a composition holds and the valences it implies.

Fraction-weighted element statistics (chem/element_features.py) barely move when a cuprate loses oxygen: YBa2Cu3O7
and YBa2Cu3O4 differ by a few percent in every mean, so trees on them gave YBa2Cu3O4 92 K. These features make the
oxygen content and the charge it carries explicit, per composition x (atomic fractions summing to 1):

- `anion_fraction`: the share of anion formers (chem/valence.py ANION_FORMERS: O, chalcogens, halogens, N, P, As);
- `o_per_cation`: O atoms per atom of the rest (not an anion former), 0 without O;
- `charge_lo`, `charge_hi`: the oxidation-state window Σ x_i v_min,i and Σ x_i v_max,i (chem/valence.py: charge
  balance is possible where lo <= 0 <= hi), in elementary charges per atom;
- `net_typical_charge`: Σ x_i t_i with each element at its typical valence (chem/valence.py `typical_valence`) and
  Cu at +2, where an anion former is present (0 for an intermetallic): below 0 the anions hold more charge than the
  cations give at those valences (holes: YBa2Cu3O7 -0.077), above 0 fewer (YBa2Cu3O6 +0.083, YBa2Cu3O4 +0.5);
- `typical_share`: the share of atoms whose typical valence is defined (Cu included): how far to trust the line above;
- `cu_valence`: the formal Cu valence that makes the formula neutral (chem/valence.py `cu_valence`: YBa2Cu3O7 +2.33,
  YBa2Cu3O6 +1.67), CU_UNDEFINED where it is undefined (no Cu, no anion former, or an element of ambiguous valence).

Trees need no scaling and split on a sentinel as on any value; the features are numpy only (no gradient: the trees
are not climbed).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gdmcd_core.chem.elements import N_ELEMENTS, index_of
from gdmcd_core.chem.valence import PRESENCE_EPS, _anion_mask_numpy, _bounds_numpy, _typical_numpy

FEATURE_NAMES = (
    "anion_fraction",
    "o_per_cation",
    "charge_lo",
    "charge_hi",
    "net_typical_charge",
    "typical_share",
    "cu_valence",
)
CU_UNDEFINED = -4.0  # cu_valence where it is undefined: below any formal Cu valence of a real compound
CU_TYPICAL = 2.0  # Cu's valence in net_typical_charge
_O, _CU = index_of("O"), index_of("Cu")


@lru_cache(maxsize=1)
def _typical_with_cu() -> tuple[np.ndarray, np.ndarray]:
    t, known = _typical_numpy()  # t is 0 for Cu there, known True
    t = t.copy()
    t[_CU] = CU_TYPICAL
    return t, known


def valence_features(x: np.ndarray) -> np.ndarray:
    """(N, 118) fractions -> (N, len(FEATURE_NAMES)) float32 (module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != N_ELEMENTS:
        raise ValueError(f"compositions must have shape (N, {N_ELEMENTS}), got {x.shape}")
    anion_mask = _anion_mask_numpy()
    v_min, v_max = _bounds_numpy()
    t, known = _typical_with_cu()
    present = x > PRESENCE_EPS
    anion = x[:, anion_mask].sum(1)
    has_anion = (present & anion_mask).any(1)
    rest = np.clip(x.sum(1) - anion, 0.0, None)
    o_per_cation = np.where(rest > PRESENCE_EPS, x[:, _O] / np.maximum(rest, PRESENCE_EPS), 0.0)
    net = np.where(has_anion, x @ (t * known), 0.0)
    all_known = ~(present & ~known).any(1)
    others = x @ np.where(np.arange(N_ELEMENTS) == _CU, 0.0, t * known)
    has_cu = x[:, _CU] > PRESENCE_EPS
    cu = np.where(has_cu & has_anion & all_known, -others / np.maximum(x[:, _CU], PRESENCE_EPS), CU_UNDEFINED)
    cols = (anion, o_per_cation, x @ v_min, x @ v_max, net, x @ known.astype(np.float64), cu)
    return np.stack(cols, axis=1).astype(np.float32)


__all__ = ["CU_UNDEFINED", "FEATURE_NAMES", "valence_features"]
