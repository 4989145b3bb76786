r"""First-stage conditional choice probabilities from the data (Hotz and Miller 1993).

- ``frequency``: :math:`\hat P_i(a \mid x) = n_i(x, a) / n_i(x)`, the cell frequency;
- ``logit``: a flexible multinomial logit of the action on the firm's identity and the state
  (firm dummies; the exogenous state and its square; the firm's own last action; the number of
  rivals active last period; the pairwise products of the last three), fitted by Newton's
  method on the counts, the first stage of Aguirregabiria and Mira's Monte Carlo;
- ``auto`` (default): the frequency where a cell has at least ``min_cell`` observations, the
  logit elsewhere (states rarely or never visited).

Probabilities are kept in ``[floor, 1 - floor]`` (a zero CCP has no Hotz-Miller inverse).
"""

from __future__ import annotations

import numpy as np
import torch

from nashrl.markets.validation import ConfigError

METHODS = ("auto", "frequency", "logit")


def logit_design(model) -> torch.Tensor:
    """``[N, S, F]`` regressors of the flexible logit, per firm and state."""
    market = model.market
    values = torch.as_tensor(market.state_values(market.state_array()), dtype=torch.float64)  # [S, 1 + N]
    n = market.n_firms
    exo = values[:, 0]
    rows = []
    for i in range(n):
        own = values[:, 1 + i]
        rivals = values[:, 1:].sum(1) - own
        dummies = torch.zeros(len(exo), n, dtype=torch.float64)
        dummies[:, i] = 1.0
        extra = torch.stack([exo, exo**2, own, rivals, exo * own, exo * rivals, own * rivals], 1)
        rows.append(torch.cat([dummies, extra], 1))
    design = torch.stack(rows)
    scale = design.abs().flatten(0, 1).amax(0).clamp_min(1.0)  # well-conditioned Newton steps
    return design / scale


def fit_logit(model, counts: np.ndarray, max_iter: int = 100) -> torch.Tensor:
    """``[N, S, A]`` CCPs of the multinomial logit fitted to ``counts`` (ridge 1e-8 keeps constant
    regressors harmless)."""
    x = logit_design(model)  # [N, S, F]
    n = torch.as_tensor(counts, dtype=torch.float64)
    actions = n.shape[-1]
    shape = (x.shape[-1], actions - 1)

    def loss(b: torch.Tensor) -> torch.Tensor:
        logits = torch.cat([torch.zeros(*x.shape[:2], 1, dtype=x.dtype), x @ b.view(shape)], -1)
        return -(n * torch.log_softmax(logits, -1)).sum() / n.sum() + 1e-8 * (b**2).sum()

    b = torch.zeros(shape[0] * shape[1], dtype=torch.float64)
    for _ in range(max_iter):
        g = torch.func.grad(loss)(b)
        if float(g.abs().max()) < 1e-10:
            break
        h = torch.func.hessian(loss)(b)
        step = torch.linalg.solve(h, -g)
        t, current = 1.0, float(loss(b))
        while float(loss(b + t * step)) > current and t > 1e-8:
            t *= 0.5
        b = b + t * step
    logits = torch.cat([torch.zeros(*x.shape[:2], 1, dtype=x.dtype), x @ b.view(shape)], -1)
    return torch.softmax(logits, -1)


def first_stage(
    model, counts: np.ndarray, method: str = "auto", min_cell: int = 30, floor: float = 1e-3
) -> torch.Tensor:
    """``[N, S, A]`` first-stage CCPs (see the module)."""
    if method not in METHODS:
        raise ConfigError(f"--first-stage: expected one of {list(METHODS)}, got {method!r}")
    n = torch.as_tensor(counts, dtype=torch.float64)
    cell = n.sum(-1, keepdim=True)
    if method == "frequency":
        if bool((cell == 0).any()):
            missing = int((cell == 0).sum())
            raise ConfigError(
                f"--first-stage frequency: {missing} (firm, state) cells have no observation; use auto or logit"
            )
        p = n / cell
    else:
        p = fit_logit(model, counts)
        if method == "auto":
            p = torch.where(cell >= min_cell, n / cell.clamp_min(1.0), p)
    p = p.clamp(floor, 1 - floor)
    return p / p.sum(-1, keepdim=True)
