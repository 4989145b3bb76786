r"""The model an inverse estimator fits: a private-shock market whose flow profits are linear in
coefficients, :math:`\pi_i(x, a; \theta) = Z_i(x, a)\,\theta`, some free, the rest fixed; the
discount and the shock distribution are known (Aguirregabiria and Mira 2007, section 3).

The data enter through their sufficient statistics: :math:`n_i(x, a)`, how often firm :math:`i`
chose :math:`a` at public state :math:`x` (:func:`choice_counts`); every estimator here maximises
a (pseudo-)likelihood :math:`\sum_{i,x,a} n_i(x,a) \ln P_i(a \mid x)`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from nashrl.markets import make_market
from nashrl.markets.private_shocks import MAX_THEORY_ENTRIES
from nashrl.markets.validation import ConfigError, is_real
from nashrl.theory.ccp import CCPGame, ShockLaw


@dataclass
class InverseModel:
    market: Any
    names: list[str]  # every coefficient, in the market's order
    free: list[str]
    fixed: dict[str, float]  # values of the coefficients that are not free

    # The enumerated tables are built on first use: the estimators that work state by state need
    # them, the deep one (:mod:`nashrl.inverse.deep`) never does, so games too large to enumerate
    # still get a model.
    @functools.cached_property
    def features(self) -> torch.Tensor:
        """``[S, J, N, K]`` every coefficient's profit features at every state and joint action."""
        return torch.as_tensor(self.market.feature_table(), dtype=torch.float64)

    @functools.cached_property
    def game(self) -> CCPGame:
        """Transitions, discount and shocks (its profits: the market's true ones)."""
        return CCPGame.of(self.market)

    @property
    def shocks(self) -> ShockLaw:
        return ShockLaw(self.market.shock, float(self.market.sigma))

    @classmethod
    def from_market_config(cls, market_config: Mapping[str, Any], fix: Mapping[str, Any] | None = None) -> InverseModel:
        """All coefficients free except ``fix`` (name -> value); ``market_config`` gives the game
        (type, firms, states, discount, shocks) and nothing else is read from its coefficients."""
        market = make_market(dict(market_config))
        if not getattr(market, "private_shocks", False) or not hasattr(market, "profit_features"):
            raise ConfigError(
                f"market.type: inverse estimation needs a game with private shocks, got {market.market_type!r}"
            )
        names = list(market.coefficients())
        fixed: dict[str, float] = {}
        for name, value in (fix or {}).items():
            if name not in names:
                raise ConfigError(f"--fix {name}: not a coefficient of {market.market_type}; expected one of {names}")
            if not is_real(value):
                raise ConfigError(f"--fix {name}: expected a finite number, got {value!r}")
            fixed[name] = float(value)
        free = [n for n in names if n not in fixed]
        if not free:
            raise ConfigError("--fix: every coefficient is fixed; nothing to estimate")
        return cls(market, names, free, fixed)

    @property
    def free_index(self) -> list[int]:
        return [self.names.index(n) for n in self.free]

    def free_features(self) -> torch.Tensor:
        """``[S, J, N, K_free]``."""
        return self.features[..., self.free_index]

    def fixed_profits(self) -> torch.Tensor:
        """``[S, J, N]``: the profit part of the fixed coefficients."""
        index = [self.names.index(n) for n in self.fixed]
        if not index:
            return torch.zeros(self.features.shape[:3], dtype=torch.float64)
        values = torch.tensor([self.fixed[n] for n in self.fixed], dtype=torch.float64)
        return self.features[..., index] @ values

    def game_at(self, theta: torch.Tensor) -> CCPGame:
        """The game whose profits are those of free coefficients ``theta`` (and the fixed ones)."""
        return dataclasses.replace(self.game, profits=self.free_features() @ theta + self.fixed_profits())

    def true_free(self) -> np.ndarray:
        """The market config's values of the free coefficients (the truth of a simulated panel)."""
        truth = self.market.coefficients()
        return np.array([truth[n] for n in self.free])


def panel_states(market, panel: pd.DataFrame) -> np.ndarray:
    """``[rows, 1 + N]`` each row's public state in the market's internal units (a state column the
    market does not label, such as psd_entry's absent exogenous state, is 0)."""
    values = np.column_stack(
        [
            panel[label].to_numpy() if label in panel.columns else np.zeros(len(panel), dtype=np.int64)
            for label in market.state_labels()
        ]
    )
    return market.state_from_values(values).astype(np.int64)


def choice_counts(model: InverseModel, panel: pd.DataFrame) -> np.ndarray:
    """``[N, S, A]``: how often each firm chose each action at each public state, from a panel
    checked by :func:`nashrl.panels.read_panel` against ``model.market``."""
    market = model.market
    state = market.state_index(panel_states(market, panel))
    counts = np.zeros((market.n_firms, market.n_states, market.n_actions))
    np.add.at(counts, (panel["firm"].to_numpy(), state, panel["action"].to_numpy()), 1.0)
    return counts


def check_enumerable(model: InverseModel, method: str) -> None:
    """The enumerating estimators need the game's tables; refuse a game too large for them,
    pointing at the deep estimator."""
    market = model.market
    if not market.enumerable:
        raise ConfigError(
            f"--method {method}: enumerates {market.n_states:,} states x {market.n_actions**market.n_firms:,} joint "
            f"actions ({float(market.theory_size()):.3g} entries, above {MAX_THEORY_ENTRIES:,}); use --method deep"
        )


def check_variation(model: InverseModel, panel: pd.DataFrame) -> None:
    """Refuse data that cannot identify the coefficients whatever the method, naming them: one
    market only, or a firm whose action never varies."""
    if panel["market"].nunique() < 2:
        raise ConfigError("panel.market: one market only; expected observations of at least 2 markets")
    market = model.market
    chosen = np.zeros((market.n_firms, market.n_actions))
    np.add.at(chosen, (panel["firm"].to_numpy(), panel["action"].to_numpy()), 1.0)
    for i in range(market.n_firms):
        if (chosen[i] > 0).sum() < 2:
            needs = [n for n in model.free if n.endswith(f"_{i}")] or model.free
            raise ConfigError(
                f"panel.action: firm {i} always chooses action {int(np.argmax(chosen[i]))}; "
                f"{', '.join(needs)} cannot be identified"
            )


def check_identification(model: InverseModel, counts: np.ndarray, panel: pd.DataFrame) -> None:
    """:func:`check_variation`, then refuse a coefficient whose feature never varies in the observed
    cells (the enumerating estimators; the deep one finds such a coefficient in its information
    matrix, named the same way)."""
    check_variation(model, panel)
    observed = torch.as_tensor(counts.sum(-1) > 0)  # [N, S]
    free = model.free_features()  # [S, J, N, K]
    for k, name in enumerate(model.free):
        f = free[..., k].permute(2, 0, 1)[observed]  # [cells, J]
        if float(f.abs().max()) == 0.0 or float(f.max() - f.min()) == 0.0:
            raise ConfigError(f"{name}: not identified: its feature does not vary in the observed states")
