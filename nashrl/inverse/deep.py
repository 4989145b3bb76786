r"""The deep estimator: a two-step pseudo-likelihood estimator whose first stage and value
functions are neural networks trained on the panel, so no state is ever enumerated.

The classical estimators (:mod:`nashrl.inverse.estimators`) hold a CCP per (firm, state) and solve
:math:`(I - \beta F^P)^{-1}` over every state, which is impossible when the state space cannot be
listed (:math:`S \cdot A^N` states: 20,480 for 12 entry-exit firms, with a dense
:math:`20{,}480^2` transition). Here, following Hotz, Miller, Sanders and Smith (1994) (CCP
estimation by forward simulation) and Bajari, Benkard and Levin (2007) (profits linear in
:math:`\theta`, so simulated values are linear in it), with networks in place of cell frequencies
and of value tables:

1. **Neural CCPs** :math:`\hat P_i(a \mid x)`: one network (a linear index plus a two-layer
   perceptron) reads the public state and returns every firm's choice logits; fitted by maximum
   likelihood (cross-entropy) on the observed choices, with a held-out tenth of the markets for
   early stopping, and kept inside ``[floor, 1 - floor]``.
2. **Neural value differences**, linear in :math:`\theta`: under :math:`\hat P` firm :math:`i`'s
   value is :math:`V_i(x) = W_i(x)\,\theta + \lambda_i(x)` with
   :math:`W_i(x) = E[\sum_t \beta^t Z_i(x_t, a_t) \mid x_0 = x]` (discounted profit features) and
   :math:`\lambda_i(x) = E[\sum_t \beta^t e_i(x_t)]` (expected shocks of the chosen actions,
   :math:`e = -\sigma \sum_a P \ln P` for logit). A logit or probit choice reads only differences
   of choice values, so what is needed is
   :math:`D_i^a(x) = (W_i, \lambda_i)(x \text{ with } a_{i,t-1} = a) - (W_i, \lambda_i)(x \text{ with } a_{i,t-1} = 0)`.
   From the states the data reach next, :math:`(z' \sim \Pi(z, \cdot), a_t)`, the start and its
   variants with one firm's last action changed are simulated with actions drawn from
   :math:`\hat P` and the known exogenous chain, with *common random numbers*: once a variant is
   back on the start's path it stays there, so a difference is a sum over a few periods (all
   pairs meet within about ten on Aguirregabiria and Mira's design) with little noise, where a
   value's simulation is long and noisy (regressing values instead missed the choice-value
   differences by 0.17 on average; the differences miss by 0.01). One network
   :math:`x \mapsto (D_i^a)_{i,a}` is regressed on the simulated differences (least squares, early
   stopping), which gives them at states no path started from.
3. **Choice values** at each observation, linear in :math:`\theta` (Aguirregabiria and Mira 2007,
   eq. 15, with expectations instead of matrices):
   :math:`\tilde v_i(x, a) - \tilde v_i(x, 0) = E_{a_{-i} \sim \hat P_{-i}(x)}[Z_i(x, a, a_{-i}) -
   Z_i(x, 0, a_{-i}) + \beta\, E_{z'} D_i^a(z', a_{-i})]\,(\theta, 1)` (plus the fixed
   coefficients' part);
   the rivals' actions are enumerated when there are at most ``rival_draws`` profiles, otherwise
   ``rival_draws`` profiles are drawn (common to a state's firms).
4. :math:`\hat\theta` maximises :math:`\sum_{obs} \ln \Lambda(\tilde v_i(x, a_{obs}))`: a logit
   (probit for normal shocks) likelihood with offsets, concave, by Newton's method, as for
   ``two_step``. Its standard errors treat the first stage as known (use ``--bootstrap``).

It is ``two_step`` with a different first stage and value computation, so on games small enough
for both the two agree on large panels (tested on Aguirregabiria and Mira's design); on small
ones its neural first stage is noisier than cell frequencies and its small-sample bias is larger
(docs/inverse_montecarlo.md). Its cost grows with the number of observations and firms, not with
the state space.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from nashrl.inverse.estimators import fit_pseudo_likelihood
from nashrl.inverse.model import InverseModel, panel_states
from nashrl.markets.validation import ConfigError
from nashrl.panels import draw_from


@dataclass(frozen=True)
class DeepSettings:
    """The deep estimator's settings (``nashrl estimate --method deep --deep key=value``)."""

    hidden: int = 64  # width of both networks' two hidden layers
    ccp_steps: int = 500  # full-batch Adam steps of the CCP network (at most; early stopping)
    value_steps: int = 500  # ... of the difference network
    lr: float = 0.01
    starts_per_observation: int = 2  # simulated starts from each observed market-period
    tail: float = 1e-4  # the horizon: the discounted weight left after it
    rival_draws: int = 64  # enumerate the rivals' profiles up to this many, draw this many beyond
    floor: float = 1e-3  # CCPs kept in [floor, 1 - floor]
    validation: float = 0.1  # share of market-periods held out for early stopping
    chunk: int = 64  # observations valued at once (memory)
    seed: int = 0

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> DeepSettings:
        """Validated settings; a wrong name or value is a one-line error naming it."""
        values = dict(values or {})
        known = {f.name: f for f in fields(cls)}
        out = {}
        for name, value in values.items():
            if name not in known:
                raise ConfigError(f"--deep {name}: unknown setting; expected one of {sorted(known)}")
            default = known[name].default
            try:
                out[name] = type(default)(value)
            except (TypeError, ValueError) as err:
                kind = "an integer" if isinstance(default, int) else "a number"
                raise ConfigError(f"--deep {name}: expected {kind}, got {value!r}") from err
            if isinstance(default, int) and (out[name] < 0 or (out[name] == 0 and name != "seed")):
                raise ConfigError(f"--deep {name}: expected a positive integer, got {value!r}")
        settings = cls(**out)
        for name in ("lr", "tail", "floor"):
            value = getattr(settings, name)
            if not (math.isfinite(value) and 0 < value < 1):
                raise ConfigError(f"--deep {name}: expected a number in (0, 1), got {value!r}")
        if not 0 < settings.validation < 0.5:
            raise ConfigError(f"--deep validation: expected a share in (0, 0.5), got {settings.validation!r}")
        return settings


def _network(inputs: int, outputs: int, hidden: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, outputs)
    )


class _LinearPlusNetwork(nn.Module):
    """A linear index plus a network, ``W x + b + MLP(x)``: the CCP network. The linear part is a
    logit on the state's raw values (it holds main effects such as the number of rivals active
    with few data); the network adds the interactions. Measured on the 1600-market design (8
    panels): theta_RN 0.77 against 0.68 with the network alone (truth 1, two_step 0.87)."""

    def __init__(self, inputs: int, outputs: int, hidden: int):
        super().__init__()
        self.linear = nn.Linear(inputs, outputs)
        self.network = _network(inputs, outputs, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.network(x)


def _fit(net: nn.Module, loss_of, train, held_out, steps: int, lr: float) -> dict[str, float]:
    """Full-batch Adam on ``loss_of(net, data)``, keeping the weights with the lowest held-out loss
    (checked every 25 steps); returns the final losses."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    best, best_state = math.inf, None
    for step in range(steps):
        opt.zero_grad()
        loss = loss_of(net, train)
        loss.backward()
        opt.step()
        if step % 25 == 24 or step == steps - 1:
            with torch.no_grad():
                held = float(loss_of(net, held_out))
            if held < best:
                best, best_state = held, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    with torch.no_grad():
        return {"train": float(loss_of(net, train)), "held_out": best}


class _Panel:
    """The panel as arrays: one public state per market-period and every firm's action there."""

    def __init__(self, model: InverseModel, panel: pd.DataFrame):
        market = model.market
        n = market.n_firms
        rows = panel.sort_values(["market", "period", "firm"], kind="stable")
        states = panel_states(market, rows).reshape(-1, n, 1 + n)
        self.states = states[:, 0]  # [O, 1 + N] (a period's rows share the state)
        self.actions = rows["action"].to_numpy().reshape(-1, n).copy()  # [O, N]


class DeepEstimator:
    """Steps 1-3 of the module for one panel; :func:`estimate_deep` runs them and step 4."""

    def __init__(self, model: InverseModel, settings: DeepSettings):
        self.model, self.s = model, settings
        market = model.market
        self.market = market
        self.n, self.a = market.n_firms, market.n_actions
        self.beta = float(market.discount)
        self.shocks = model.shocks
        self.exo = np.asarray(market.exo_transition, dtype=float)
        self.k_all = len(model.names)
        self.rng = np.random.default_rng(settings.seed)
        torch.manual_seed(settings.seed)
        self.ccp_net = _LinearPlusNetwork(market.public_size, self.n * self.a, settings.hidden)
        self.value_net = _network(market.public_size, self.n * (self.a - 1) * (self.k_all + 1), settings.hidden)
        self.diagnostics: dict[str, Any] = {}

    # ----- the networks -----
    def observe(self, states: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self.market.observe_all(states.reshape(-1, 1 + self.n)), dtype=torch.float32)

    def ccp(self, states: np.ndarray) -> torch.Tensor:
        """``[B, N, A]`` neural CCPs (float64) at states ``[B, 1 + N]``."""
        with torch.no_grad():
            logits = self.ccp_net(self.observe(states)).view(-1, self.n, self.a).double()
        p = torch.softmax(logits, -1).clamp(self.s.floor, 1 - self.s.floor)
        return p / p.sum(-1, keepdim=True)

    def differences(self, states: np.ndarray) -> np.ndarray:
        """``[..., N, A - 1, K + 1]`` the difference network's outputs at states ``[..., 1 + N]``."""
        shape = states.shape[:-1]
        with torch.no_grad():
            out = self.value_net(self.observe(states)).double() * self.scale + self.offset
        return out.view(*shape, self.n, self.a - 1, self.k_all + 1).numpy()

    def split(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        order = self.rng.permutation(count)
        cut = max(1, int(round(self.s.validation * count)))
        return order[cut:], order[:cut]

    def fit_ccp(self, data: _Panel) -> None:
        x = self.observe(data.states)
        y = torch.as_tensor(data.actions, dtype=torch.long)
        train, held = self.split(len(x))

        def loss(net, index):
            logits = net(x[index]).view(-1, self.n, self.a)
            return nn.functional.cross_entropy(logits.reshape(-1, self.a), y[index].reshape(-1))

        self.diagnostics["ccp_cross_entropy"] = _fit(self.ccp_net, loss, train, held, self.s.ccp_steps, self.s.lr)

    # ----- forward simulation -----
    def next_exo(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``z'`` ``[B]`` by the market's own transitions from states ``[B, 1 + N]``."""
        return self.market.transitions(states, actions, self.rng)[:, 0]

    @property
    def horizon(self) -> int:
        return max(1, math.ceil(math.log(self.s.tail) / math.log(self.beta))) if self.beta > 0 else 1

    def simulate_differences(self, data: _Panel) -> tuple[np.ndarray, np.ndarray]:
        """Start states ``[B, 1 + N]`` and, for each firm ``i`` and action ``a >= 1``, the simulated
        difference ``[B, N, A - 1, K + 1]`` of its discounted sums between the start with its own
        last action set to ``a`` and set to ``0`` (see :meth:`fit_values`)."""
        n, a_count = self.n, self.a
        reps = self.s.starts_per_observation
        joint = np.repeat(data.actions, reps, axis=0)
        z = self.next_exo(np.repeat(data.states, reps, axis=0), joint)
        start = np.column_stack([z, joint])
        b = len(z)
        # Variant 0 is the start; variant 1 + i (A - 1) + r - 1 moves firm i's own last action to
        # (own + r) mod A, r = 1..A-1, everything else equal.
        firm_of = np.repeat(np.arange(n), a_count - 1)
        shift = np.tile(np.arange(1, a_count), n)
        variants = np.repeat(joint[:, None, :], 1 + len(firm_of), axis=1)  # [B, P, N]
        variants[:, 1 + np.arange(len(firm_of)), firm_of] = (joint[:, firm_of] + shift) % a_count
        own = variants.copy()
        x = np.concatenate([np.broadcast_to(z[:, None, None], (*variants.shape[:2], 1)), variants], -1)
        total = np.zeros((*variants.shape[:2], n, self.k_all + 1))
        weight, steps = 1.0, 0
        while steps < self.horizon:
            steps += 1
            p = self.ccp(x.reshape(-1, 1 + n)).view(b, -1, n, a_count)
            u = self.rng.random((b, 1, n, 1))  # common random numbers: one draw per firm for every variant
            act = np.minimum((u >= np.cumsum(p.numpy(), -1)).sum(-1), a_count - 1)  # [B, P, N]
            total[..., :-1] += weight * self.market.profit_features(x[..., 0], x[..., 1:], act)
            total[..., -1] += weight * self.shocks.expected_shock(p).numpy()
            weight *= self.beta
            z = self.next_exo(x[:, 0], act[:, 0])  # the exogenous state is common to every variant
            x = np.concatenate([np.broadcast_to(z[:, None, None], (*act.shape[:2], 1)), act], -1)
            if (x == x[:, :1]).all():  # every variant is back on the start's path: the differences are final
                break
        by_action = np.zeros((b, n, a_count, self.k_all + 1))  # firm i's sums at each own last action
        rows = np.arange(b)
        for i in range(n):
            by_action[rows, i, own[:, 0, i]] = total[:, 0, i]
        for v, i in enumerate(firm_of, start=1):
            by_action[rows, i, own[:, v, i]] = total[:, v, i]
        self.diagnostics["simulated_periods"] = steps
        return start, by_action[:, :, 1:] - by_action[:, :, :1]

    def fit_values(self, data: _Panel) -> None:
        """Regress the simulated differences on the start state. Only differences enter a logit
        or probit choice, and with common random numbers the start and its variants follow the
        same path once they meet again (rivals and exogenous state draw the same numbers), so a
        difference is the sum of a few periods, not a long noisy path: its simulation noise is
        small where a value's is not."""
        start, diff = self.simulate_differences(data)
        flat = torch.as_tensor(diff.reshape(len(diff), -1))
        self.offset = flat.mean(0)
        self.scale = flat.std(0).clamp_min(1e-8)
        x = self.observe(start)
        y = ((flat - self.offset) / self.scale).float()
        train, held = self.split(len(x))

        def loss(net, index):
            return ((net(x[index]) - y[index]) ** 2).mean()

        self.diagnostics["value_mse_standardised"] = _fit(
            self.value_net, loss, train, held, self.s.value_steps, self.s.lr
        )
        self.diagnostics["simulated_paths"] = int(np.prod(diff.shape[:2]) * (self.a - 1) + len(diff))

    # ----- choice values -----
    def rival_profiles(self, states: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """Joint profiles ``[O, D, N]`` and each firm's weight of its rivals' part ``[O, D, N]``:
        every profile with the rivals' probability (each own action once) when there are at most
        ``rival_draws`` rival profiles, else ``rival_draws`` profiles drawn from the CCPs."""
        p = self.ccp(states)  # [O, N, A]
        o = len(states)
        if self.a ** (self.n - 1) <= self.s.rival_draws:
            profiles = np.ascontiguousarray(np.broadcast_to(self.market.all_profiles(), (o, self.a**self.n, self.n)))
            index = torch.as_tensor(profiles)[..., None]
            chosen = torch.gather(p.unsqueeze(1).expand(o, profiles.shape[1], self.n, self.a), 3, index)[..., 0]
            rivals = torch.exp(chosen.log().sum(-1, keepdim=True) - chosen.log())
            return profiles, rivals / self.a
        draws = self.s.rival_draws
        profiles = draw_from(p.repeat_interleave(draws, 0).numpy(), self.rng).reshape(o, draws, self.n)
        return profiles, torch.full((o, draws, self.n), 1.0 / draws, dtype=torch.float64)

    def choice_index(self, data: _Panel) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Z~ [O, N, A, K_free], e~ [O, N, A])`` at every observation, relative to action 0
        (step 3 of the module; a logit or probit choice depends on differences only)."""
        model, n, a = self.model, self.n, self.a
        free = model.free_index
        fixed = [model.names.index(name) for name in model.fixed]
        theta_fixed = np.array([model.fixed[name] for name in model.fixed])
        support = max(int((self.exo > 0).sum(1).max()), 1)
        nxt = np.argsort(-self.exo, axis=1, kind="stable")[:, :support]  # [Z, support] reachable z'
        nxt_p = np.take_along_axis(self.exo, nxt, 1)
        own = np.arange(n)
        z_out, e_out = [], []
        for lo in range(0, len(data.states), self.s.chunk):
            x = data.states[lo : lo + self.s.chunk]
            profiles, weights = self.rival_profiles(x)  # [C, D, N]
            c, d = profiles.shape[:2]
            joint = np.broadcast_to(profiles[:, :, None, None, :], (c, d, n, a, n)).copy()
            joint[:, :, own, :, own] = np.arange(a)  # firm i's own action set to each alternative
            flow = self.market.profit_features(x[:, 0, None, None, None], x[:, None, None, None, 1:], joint)
            flow = flow[:, :, own, :, own]  # [N, C, D, A, K]: firm i's features (the firm axis comes first)
            flow = flow - flow[:, :, :, :1]
            future = np.concatenate(
                [
                    np.broadcast_to(nxt[x[:, 0]][:, None, :, None], (c, d, support, 1)),
                    np.broadcast_to(profiles[:, :, None, :], (c, d, support, n)),
                ],
                -1,
            )
            ahead = np.einsum("cdqnak,cq->ncdak", self.differences(future), nxt_p[x[:, 0]])  # [N, C, D, A-1, K+1]
            ahead = np.concatenate([np.zeros_like(ahead[:, :, :, :1]), ahead], 3)
            value = flow + self.beta * ahead[..., :-1]  # [N, C, D, A, K]
            wt = weights.numpy().transpose(2, 0, 1)  # [N, C, D]
            expected = np.einsum("ncd,ncdak->cnak", wt, value)
            shock = np.einsum("ncd,ncda->cna", wt, self.beta * ahead[..., -1])
            z_out.append(expected[..., free])
            e_out.append(shock + (expected[..., fixed] @ theta_fixed if fixed else 0.0))
        return torch.as_tensor(np.concatenate(z_out)), torch.as_tensor(np.concatenate(e_out))


def estimate_deep(model: InverseModel, panel: pd.DataFrame, settings: DeepSettings | None = None) -> dict[str, Any]:
    """The deep estimator on ``panel`` (a checked long-format panel); see the module."""
    settings = settings or DeepSettings()
    begin = time.perf_counter()
    data = _Panel(model, panel)
    est = DeepEstimator(model, settings)
    est.fit_ccp(data)
    est.fit_values(data)
    index = est.choice_index(data)
    counts = torch.nn.functional.one_hot(torch.as_tensor(data.actions), model.market.n_actions).double()
    if not (torch.isfinite(index[0]).all() and torch.isfinite(index[1]).all()):
        raise ConfigError("--method deep: the networks produced non-finite choice values; try a lower --deep lr")
    d = est.diagnostics
    note = (
        f"deep first stage: CCP cross-entropy {d['ccp_cross_entropy']['held_out']:.4f} held out; difference "
        f"network fitted to {d['simulated_paths']:,} simulated paths (common random numbers, "
        f"{d['simulated_periods']} periods until every pair met again, at most {est.horizon}; standardised "
        f"MSE {d['value_mse_standardised']['held_out']:.3f} held out, path noise included)"
    )
    return {
        **fit_pseudo_likelihood(model, index, counts),
        "se_method": "pseudo-likelihood information, neural first stage treated as known",
        "note": note,
        "diagnostics": d,
        "seconds": time.perf_counter() - begin,
    }
