"""Keeping a batch of compositions on the (masked, capped) simplex.

Two ways to keep x a composition (0 <= x_i, sum x = s) while Adam moves it:

* `project_simplex` / `project_capped_simplex`: the Euclidean projection of an arbitrary vector
  onto {x : x_i >= 0, x_i <= u_i, sum x = s, x_i = 0 where the mask is off}, applied after every
  optimizer step. Fractions reach exactly 0, so elements drop out.
* `relu_normalize`: the reparameterization x = s * relu(p) / sum relu(p) (the method's public
  successor code). Any p maps onto the simplex; a fraction is exactly 0 while its p_i <= 0.

All functions are pure, vectorized over the batch dimension B, and follow the input's device.
The projections compute in float64 (so the sum holds to ~1e-15 before the cast back) and return
the input's dtype. Shapes: v, p (B, D); mask, upper (B, D) or (D,); total a float or (B,).
"""

from __future__ import annotations

import torch

# Bisection steps for the capped projection: 2**-64 of the bracket is below float64 resolution.
_BISECTION_STEPS = 64
# A row of relu(p) summing to less than this is treated as empty (all mass lost).
_RELU_EMPTY = 1e-12


def _as_row_total(total: float | torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """total -> (B, 1) float64 on v's device."""
    t = torch.as_tensor(total, dtype=torch.float64, device=v.device)
    if t.ndim == 0:
        t = t.expand(v.shape[0])
    return t.reshape(-1, 1)


def _as_mask(mask: torch.Tensor | None, v: torch.Tensor) -> torch.Tensor:
    if mask is None:
        return torch.ones_like(v, dtype=torch.bool)
    return mask.to(device=v.device, dtype=torch.bool).expand_as(v)


def project_simplex(
    v: torch.Tensor, total: float | torch.Tensor = 1.0, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Euclidean projection of each row of v onto {x >= 0, sum x = total, x = 0 off the mask}.

    Exact sort-based algorithm (Held et al. 1974; Duchi et al. 2008): with u the masked entries
    sorted descending, rho = max{j : u_j - (sum_{k<=j} u_k - total) / j > 0} and
    x = max(v - tau, 0) with tau = (sum_{k<=rho} u_k - total) / rho.

    Args:
        v: (B, D) any real values.
        total: the row sum, >= 0; a float or (B,).
        mask: (B, D) or (D,) bool, True where x may be non-zero; None = all. A row whose mask is
            all False is returned as zeros (only valid with total 0).

    Returns:
        (B, D) in v's dtype; every row >= 0, zero off the mask, summing to `total`.
    """
    B, D = v.shape
    m = _as_mask(mask, v)
    t = _as_row_total(total, v)  # (B, 1)
    v64 = v.detach().to(torch.float64)
    n_valid = m.sum(1, keepdim=True)  # (B, 1)
    masked = torch.where(m, v64, torch.full_like(v64, -torch.inf))
    # only the n largest entries can be in the support: a sparse mask (an element cap) needs a top-n, not a sort
    n = max(int(n_valid.max()), 1) if B else D
    u = masked.topk(n, dim=1).values if n < D // 2 else masked.sort(dim=1, descending=True).values[:, :n]
    j = torch.arange(1, n + 1, device=v.device, dtype=torch.float64).expand(B, n)
    valid = j <= n_valid  # sorted valid entries come first
    u = torch.where(valid, u, torch.zeros_like(u))
    css = u.cumsum(1)  # (B, D)
    cond = valid & (u - (css - t) / j > 0)
    rho = (cond * j).amax(1, keepdim=True).clamp_min(1)  # (B, 1) count of the support, >= 1
    tau = (css.gather(1, rho.long() - 1) - t) / rho  # (B, 1)
    x = torch.clamp(v64 - tau, min=0.0) * m
    return x.to(v.dtype)


def project_capped_simplex(
    v: torch.Tensor,
    upper: torch.Tensor | float,
    total: float | torch.Tensor = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Euclidean projection of each row onto {0 <= x <= upper, sum x = total, x = 0 off the mask}.

    The projection is x = clip(v - tau, 0, upper) for the tau that makes the row sum `total`;
    sum clip(v - tau, 0, u) is monotone in tau, so tau is found by bisection (64 steps in float64,
    below float64 resolution), vectorized over rows.

    Args:
        v: (B, D) any real values.
        upper: (B, D), (D,) or a float: per-entry caps, >= 0.
        total: row sum; must satisfy 0 <= total <= sum of the caps over the mask (else the set is
            empty and the result is the closest clipped vector, not summing to total).
        mask: (B, D) or (D,) bool; None = all entries.

    Returns:
        (B, D) in v's dtype.
    """
    m = _as_mask(mask, v)
    t = _as_row_total(total, v)
    v64 = v.detach().to(torch.float64)
    u = torch.as_tensor(upper, dtype=torch.float64, device=v.device).expand_as(v64) * m
    lo = (v64.masked_fill(~m, torch.inf).amin(1, keepdim=True) - u.amax(1, keepdim=True)).clamp_max(0) - 1.0
    hi = v64.masked_fill(~m, -torch.inf).amax(1, keepdim=True)
    lo = torch.where(torch.isfinite(lo), lo, torch.zeros_like(lo))
    hi = torch.where(torch.isfinite(hi), hi, torch.zeros_like(hi))
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        s = torch.minimum(torch.clamp(v64 - mid, min=0.0), u).sum(1, keepdim=True)
        too_much = s > t
        lo = torch.where(too_much, mid, lo)
        hi = torch.where(too_much, hi, mid)
    x = torch.minimum(torch.clamp(v64 - 0.5 * (lo + hi), min=0.0), u)
    return x.to(v.dtype)


def relu_normalize(
    p: torch.Tensor, total: float | torch.Tensor = 1.0, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """x = total * relu(p) / sum relu(p) over the mask; differentiable in p.

    A row with no positive masked entry (all mass lost) becomes uniform over its mask, so the
    output is always on the simplex; such a row has no gradient until p is re-initialized.

    Args:
        p: (B, D) unconstrained parameters.
        total: row sum, a float or (B,).
        mask: (B, D) or (D,) bool; None = all.

    Returns:
        (B, D) in p's dtype, >= 0, zero off the mask, rows summing to `total` (to float rounding).
    """
    m = _as_mask(mask, p)
    t = _as_row_total(total, p).to(p.dtype)
    r = torch.relu(p) * m
    s = r.sum(1, keepdim=True)
    empty = s < _RELU_EMPTY
    uniform = m.to(p.dtype) / m.sum(1, keepdim=True).clamp_min(1)
    return t * torch.where(empty, uniform, r / s.clamp_min(_RELU_EMPTY))


def top_k_mask(x: torch.Tensor, k: int | torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Bool mask of the k largest entries of each row of x (ties broken by index).

    Keeping the k largest entries and re-projecting is the Euclidean projection onto
    {x on the simplex, at most k non-zero} (Kyrillidis et al. 2013), which is how a cap on the
    number of distinct elements is imposed.

    Args:
        x: (B, D).
        k: entries to keep, >= 0 (int or (B,)).
        keep: (B, D) or (D,) bool of entries kept regardless (e.g. pinned elements); they do not
            count against k.

    Returns:
        (B, D) bool.
    """
    B, D = x.shape
    kk = torch.as_tensor(k, device=x.device).expand(B).reshape(B, 1).clamp(0, D)
    forced = _as_mask(keep, x) if keep is not None else torch.zeros_like(x, dtype=torch.bool)
    kmax = int(kk.max()) if B else 0
    if kmax == 0:
        return forced.clone()
    score = x.detach().masked_fill(forced, -torch.inf)
    idx = score.topk(kmax, dim=1, sorted=True).indices  # (B, kmax), O(D) per row for small k
    take = torch.arange(kmax, device=x.device).expand(B, kmax) < kk  # the first k of each row
    out = torch.zeros_like(x, dtype=torch.bool).scatter_(1, idx, take)
    return forced | out


class TopKProjection:
    """v (B, D) -> `project_simplex(v, total, top_k_mask(v off the mask at -inf, k) & mask)`, from a single top-k.

    The Euclidean projection onto {x on the simplex, at most k non-zero, zero off the mask} (Kyrillidis
    et al. 2013): the top-k both picks each row's support and, already sorted, feeds the sort-based
    projection restricted to it, so the design loop's capped projection costs one top-k over (B, D) and
    a few operations on (B, k); the caps, totals and mask are prepared once per run (B fixed). Equal to
    the two-call form (tests/test_simplex.py).

    Args:
        k: support size per row, >= 0 (int or (B,)).
        total: the row sum, a float or (B,).
        mask: (D,) or (B, D) bool of entries that may be non-zero; None = all.
        shape: (B, D) of the batches it will project; device: theirs.
    """

    def __init__(self, k, total, mask: torch.Tensor | None, shape: tuple[int, int], device) -> None:
        B, D = shape
        self.kk = torch.as_tensor(k, device=device).expand(B).reshape(B, 1).clamp(0, D)
        self.kmax = int(self.kk.max()) if B else 0
        proto = torch.empty(shape, device=device)
        self.off = None if mask is None else ~_as_mask(mask, proto)
        self.t = _as_row_total(total, proto)  # (B, 1) float64
        self.j = torch.arange(1, self.kmax + 1, device=device)
        self.first_k = self.j <= self.kk  # (B, kmax)
        # every row's mask holds at least kmax entries: no -inf can reach the top k
        self.always_finite = self.off is None or bool(((~self.off).sum(-1) >= self.kmax).all())

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        if self.kmax == 0:
            return torch.zeros_like(v)
        score = v.detach() if self.off is None else v.detach().masked_fill(self.off, -torch.inf)
        vals, idx = score.topk(self.kmax, dim=1, sorted=True)
        take = self.first_k if self.always_finite else self.first_k & torch.isfinite(vals)
        u = torch.where(take, vals.to(torch.float64), 0.0)
        css = u.cumsum(1)
        cond = take & (u - (css - self.t) / self.j > 0)
        rho = (cond * self.j).amax(1, keepdim=True).clamp_min(1)  # (B, 1) support of the projection, >= 1
        tau = (css.gather(1, rho - 1) - self.t) / rho
        x = torch.clamp(u - tau, min=0.0) * take
        return torch.zeros(v.shape, dtype=torch.float64, device=v.device).scatter_(1, idx, x).to(v.dtype)


def center_gradient(
    g: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None, total: float | None = None
) -> torch.Tensor:
    """Remove from a gradient the part along (1, ..., 1), measured at the composition's average.

    On the simplex sum x = s, a loss has the same restricted gradient for g and g + c*1 for any
    constant c, but Adam's per-coordinate scaling does not: a common offset (e.g. every element
    raising Tc a little) would make every Adam step nearly uniform, and the projection would then
    cancel it. Centering at the x-weighted mean, g_i - sum_j (x_j / s) g_j, fixes c the way the
    relu reparameterization's chain rule does: an element moves up exactly when it beats the
    current composition's average. Entries off the mask get 0.

    Args:
        g: (B, D) gradient of the loss with respect to x.
        x: (B, D) current compositions (>= 0); the weights are x / sum x (uniform over the mask
            for an all-zero row).
        mask: (B, D) or (D,) bool of entries that may move; None = all.
        total: when given (> 0), x is known to lie on the masked simplex of that sum (the design loop,
            after its projection): the weights are x / total, without the checks.

    Returns:
        (B, D) centered gradient, same dtype as g.
    """
    m = _as_mask(mask, g)
    if total is not None and total > 0:
        return (g - (x.detach() * g).sum(1, keepdim=True) / total) * m
    w = (x.detach().clamp_min(0) * m).to(g.dtype)
    s = w.sum(1, keepdim=True)
    uniform = m.to(g.dtype) / m.sum(1, keepdim=True).clamp_min(1)
    w = torch.where(s > 0, w / s.clamp_min(torch.finfo(g.dtype).tiny), uniform)
    c = (w * g).sum(1, keepdim=True)
    return (g - c) * m


def simplex_violation(x: torch.Tensor, total: float | torch.Tensor = 1.0) -> torch.Tensor:
    """(B,) worst violation of x >= 0 and sum x = total per row (0 when on the simplex)."""
    t = _as_row_total(total, x).squeeze(1)
    neg = torch.clamp(-x.to(torch.float64), min=0).amax(1)
    return torch.maximum(neg, (x.to(torch.float64).sum(1) - t).abs())
