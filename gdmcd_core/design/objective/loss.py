"""The design objective as pure tensor functions: what stage 2 and stage 3 minimize.

loss_b = max(0, y_t - score_b) + alpha * L_integer,{N}(x_b) + w_E * relu(E_f(x_b))
         + w_V * P_valence(x_b) + w_Cu * P_Cu(x_b) + w_D * relu(|x_b - x0_b|_1 - r)

score is the ensemble-mean Tc, or its lower confidence bound mean - kappa * sd ("lcb"), taken on the
members' pre-activation outputs in the loop: equal to Tc wherever Tc > 0, but still sloped where the
output ReLU reads 0 K, so a start the model calls a non-superconductor still gets a gradient.
P_valence is chem.valence.valence_window_penalty, (charge/atom)^2: zero when some mixed-valence
assignment of oxidation states balances the charge, or when no anion former is present (intermetallics).
P_Cu is chem.valence.cu_valence_window_penalty: zero unless a cuprate's formal Cu valence (others at
their typical valence) leaves 1.8..2.6; it catches over-oxidized cuprates that P_valence lets pass.
The last term is a trust region around each candidate's start x0 (a known compound or close to one):
free within L1 radius r, then linear. Units: K for Tc and the hinge; alpha in K per unit of L_integer;
w_E in K per eV/atom; w_V in K per (charge/atom)^2; w_Cu in K per charge/atom; w_D in K per unit L1 (atomic fractions, 0..2).
"""

from __future__ import annotations

import torch

from gdmcd_core.chem.elements import index_of
from gdmcd_core.chem.valence import (
    CU_VALENCE_WINDOW,
    PRESENCE_EPS,
    anion_former_mask,
    cu_valence_window_penalty,
    cu_window_excess,
    typical_valences,
    valence_bounds,
    valence_window_penalty,
    window_penalty,
)

OBJECTIVES = ("mean", "lcb")


def score_from_members(raw: torch.Tensor, objective: str = "mean", kappa: float = 1.0) -> torch.Tensor:
    """raw: (K, B) members' pre-activation outputs in K -> (B,) score in K (mean, or mean - kappa * sd)."""
    if len(raw) == 1:  # one member: sd 0, both objectives are its output
        return raw.reshape(-1)
    if objective == "lcb":
        return raw.mean(0) - kappa * raw.std(0, unbiased=False)
    return raw.mean(0)


def hinge(score: torch.Tensor, target_tc: float) -> torch.Tensor:
    """(B,) max(0, y_t - score) in K."""
    return torch.relu(target_tc - score)


def trust_region_excess(x: torch.Tensor, x0: torch.Tensor, radius: float) -> torch.Tensor:
    """(B,) relu(|x - x0|_1 - radius): L1 distance (atomic fractions) beyond the trust radius."""
    return torch.relu((x - x0).abs().sum(-1) - radius)


def design_loss(
    score: torch.Tensor,
    target_tc: float,
    alpha: float = 0.0,
    int_loss: torch.Tensor | None = None,
    formation_energy: torch.Tensor | None = None,
    formation_energy_weight: float = 0.0,
    chemistry: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B,) loss: hinge + alpha * L_integer + w_E * relu(E_f) + the chemistry terms.

    chemistry: (B,) the weighted chemistry terms already summed (`ChemistryPenalty`: w_V * P_valence + w_Cu * P_Cu
    + w_D * trust-region excess), added as they are. Terms with zero weight or no tensor are skipped. The design
    loop adds the same terms' gradients by hand (loop/optimize.py: DesignLoop._loss_grad); this form scores integer formulas.
    """
    loss = hinge(score, target_tc)
    if alpha > 0 and int_loss is not None:
        loss = loss + alpha * int_loss
    if formation_energy_weight > 0 and formation_energy is not None:
        loss = loss + formation_energy_weight * torch.relu(formation_energy)
    if chemistry is not None:
        loss = loss + chemistry
    return loss


class ChemistryPenalty:
    """w_V * P_valence + w_Cu * P_Cu + w_D * trust-region excess of compositions x (B, 118), in one pass.

    The same terms as `valence_penalty`, `cu_penalty` and `trust_region_excess` (chem/valence.py), computed
    from one matrix product with the stacked (v_min, v_max, typical valence) table and one presence mask:
    the design loop evaluates them at every step. Zero weights drop their term.
    """

    def __init__(
        self, device, dtype, valence_weight: float, cu_valence_weight: float, distance_weight: float, radius: float
    ) -> None:
        v_min, v_max = valence_bounds(device, dtype)
        typical, known = typical_valences(device, dtype)
        self.table = torch.stack([v_min, v_max, -typical], 1)  # (118, 3): lo, hi, charge Cu must carry
        self.anion, self.unknown = anion_former_mask(device), ~known
        self.cu = index_of("Cu")
        self.wv, self.wc, self.wd, self.radius = valence_weight, cu_valence_weight, distance_weight, radius
        self._grad_consts: tuple[torch.Tensor, ...] | None = None

    @property
    def active(self) -> bool:
        return self.wv > 0 or self.wc > 0 or self.wd > 0

    def __call__(self, x: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
        total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        if self.wv > 0 or self.wc > 0:
            with torch.no_grad():
                present = x.detach() > PRESENCE_EPS
                ionic = (present & self.anion).any(-1)
            lo, hi, c = (x @ self.table).unbind(-1)
            if self.wv > 0:
                total = total + self.wv * window_penalty(lo, hi) * ionic
            if self.wc > 0:
                with torch.no_grad():
                    applies = present[:, self.cu] & ionic & ~(present & self.unknown).any(-1)
                total = total + self.wc * cu_window_excess(c, x[:, self.cu]) * applies
        if self.wd > 0 and x0 is not None:
            total = total + self.wd * trust_region_excess(x, x0, self.radius)
        return total

    @torch.no_grad()
    def gradient(self, x: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
        """d self(x, x0).sum() / d x (B, 118), without autograd: the design loop's fast path (equal to autograd of
        `__call__`, tests/test_design_chemistry.py). Every term is a relu (squared for the valence window) of a
        linear function of x: lo, hi, and the Cu window's sides c - hi x_Cu and lo x_Cu - c are the four columns
        of one product x @ A, so the gradient is (B, 4) coefficients times A^T; the presence flags, and where each
        term applies, are two more small products."""
        grad = None
        if self.wv > 0 or self.wc > 0:
            if self._grad_consts is None or self._grad_consts[0].dtype != x.dtype:
                self._grad_consts = self._gradient_constants(x.dtype)
            a, sign, slope, step, flags, which, needs = self._grad_consts
            r = torch.relu((x @ a) * sign)  # relu(lo), relu(-hi), relu(above), relu(below)
            has = (((x > PRESENCE_EPS).to(x.dtype) @ flags) > 0).to(x.dtype)  # anion former, undefined valence, Cu
            applies = (has @ which) > needs  # (B, 4): ionic for the valence columns, a checkable cuprate for Cu's
            grad = ((r * slope + (r > 0) * step) * applies) @ a.T
        if self.wd > 0 and x0 is not None:
            d = x - x0
            g_d = d.sign() * ((d.abs().sum(-1, keepdim=True) > self.radius) * self.wd)
            grad = g_d if grad is None else grad + g_d
        return torch.zeros_like(x) if grad is None else grad

    def _gradient_constants(self, dtype) -> tuple[torch.Tensor, ...]:
        """(A (118, 4): lo, hi, c - hi x_Cu, lo x_Cu - c as linear maps of x; the signs that turn them into the
        relus' arguments; d penalty / d relu for the squared (valence) and the linear (Cu) columns; presence
        flags (118, 3): anion former, undefined typical valence, Cu; and the map from flags to where each column
        applies)."""
        t, (w_lo, w_hi) = self.table.to(dtype), CU_VALENCE_WINDOW
        e_cu = torch.zeros(len(t), device=t.device, dtype=dtype)
        e_cu[self.cu] = 1.0
        a = torch.stack([t[:, 0], t[:, 1], t[:, 2] - w_hi * e_cu, w_lo * e_cu - t[:, 2]], 1)
        vec = lambda *v: torch.tensor(v, device=t.device, dtype=dtype)  # noqa: E731
        sign, slope, step = vec(1, -1, 1, 1), vec(2 * self.wv, -2 * self.wv, 0, 0), vec(0, 0, self.wc, self.wc)
        flags = torch.stack([self.anion.to(dtype), self.unknown.to(dtype), e_cu], 1)
        # a column applies when has @ which > needs: anion former (valence); anion former and Cu, no undefined valence
        which = torch.tensor([[1, 1, 1, 1], [0, 0, -1, -1], [0, 0, 1, 1]], device=t.device, dtype=dtype)
        return a, sign, slope, step, flags, which, vec(0.5, 0.5, 1.5, 1.5)


def valence_penalty(x: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(B,) valence-window penalty of compositions x (B, 118); bounds = (v_min, v_max, anion mask) on x's
    device and dtype (compute them once: `valence_bounds` and `anion_former_mask` of chem.valence)."""
    return valence_window_penalty(x, bounds[0], bounds[1], bounds[2])


def alpha_ramp(k: int, steps3: int, alpha_max: float) -> float:
    """alpha at stage-3 step k = 0..steps3-1: linear from 0 to alpha_max (alpha_max when steps3 <= 1)."""
    if steps3 <= 1:
        return alpha_max
    return alpha_max * k / (steps3 - 1)


def cu_penalty(x: torch.Tensor, typical: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(B,) cuprate Cu-valence penalty of x (B, 118); typical = chem.valence.typical_valences(device) (once)."""
    return cu_valence_window_penalty(x, typical[0], typical[1])
