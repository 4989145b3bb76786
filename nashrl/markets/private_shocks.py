r"""Dynamic discrete games with private payoff shocks (Aguirregabiria and Mira 2007).

Each period firm :math:`i` sees the public state :math:`x_t = (z_t, a_{t-1})`, an exogenous
Markov state :math:`z_t` (market size, ...) and last period's joint action, and its own
private shocks :math:`\varepsilon_{it}(a_i)`, one per action, i.i.d. across actions, firms and
periods and unseen by rivals. It chooses :math:`a_{it}` and earns

.. math::

    \pi_i(x_t, a_t) + \varepsilon_{it}(a_{it}),

where :math:`\pi_i` is the deterministic flow profit (:meth:`flow_profits`, what a subclass
states); then :math:`z_{t+1} \sim \Pi(z_t, \cdot)` and :math:`a_t` becomes next period's
:math:`a_{t-1}`. Shocks (``shock``, scale ``sigma``):

- ``gumbel`` (default): type-1 extreme value of scale :math:`\sigma`, *centred* (location
  :math:`-\gamma\sigma`, mean zero), so choices are logit:
  :math:`P_i(a \mid x) = \exp(v_i(x,a)/\sigma) / \sum_b \exp(v_i(x,b)/\sigma)`. Aguirregabiria
  and Mira's convention (location 0, mean :math:`\gamma\sigma`) adds
  :math:`\gamma\sigma/(1-\beta)` to every value and changes no choice;
- ``normal`` (two actions only, Pesendorfer and Schmidt-Dengler 2008): each action's shock is
  :math:`N(0, \sigma^2)`, so the shock *difference* is :math:`N(0, 2\sigma^2)` and
  :math:`P_i(1 \mid x) = \Phi((v_i(x,1) - v_i(x,0))/(\sigma\sqrt 2))`.

Rewards are profits *including the realised shock of the chosen action*, so the discounted
sum of rewards is the firm's true payoff. Firm :math:`i`'s observation is the public state
followed by its own shocks (in reward units); :attr:`public_size` says where the public part
ends (Nash-Q's network reads only that part). The public part is encoded by ``encoding``:

- ``scaled`` (default): :math:`z / (Z - 1)` and each last action :math:`/ (A - 1)`, :math:`1 + N`
  numbers;
- ``onehot``: :math:`z` one-hot and each firm's last action one-hot, :math:`Z + N A` numbers
  (no ordering imposed on the exogenous states);
- ``state``: the whole public state one-hot, :math:`Z A^N` numbers, a network that is a table
  (at most :data:`MAX_STATE_ONEHOT` states): the diagnostic separating function approximation
  from learning.

The Markov perfect equilibria, in conditional choice probabilities, are computed by
:mod:`nashrl.theory.ccp`.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.base import COMMON_FIELDS, MarketEnv

EULER_GAMMA = float(np.euler_gamma)
SHOCKS = ("gumbel", "normal")
#: The exact MPE enumerates states x joint actions x firms; above this many entries it is refused.
MAX_THEORY_ENTRIES = 20_000_000
SHOCK_FIELDS = COMMON_FIELDS | {"shock", "sigma", "initial_state", "encoding"}
ENCODINGS = ("scaled", "onehot", "state")
#: ``encoding: state`` is refused above this many public states.
MAX_STATE_ONEHOT = 4096


def markov_chain(matrix: Any, field: str) -> np.ndarray:
    """A square row-stochastic matrix, refused (naming ``field``) when it is not one."""
    try:
        m = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as err:
        raise v.ConfigError(f"{field}: expected a square matrix of probabilities ({err})") from err
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise v.ConfigError(f"{field}: expected a square matrix, got shape {m.shape}")
    if not np.isfinite(m).all() or (m < 0).any():
        raise v.ConfigError(f"{field}: expected finite probabilities >= 0")
    sums = m.sum(1)
    if not np.allclose(sums, 1.0, atol=1e-9):
        bad = int(np.argmax(np.abs(sums - 1.0)))
        raise v.ConfigError(f"{field}: expected every row to sum to 1, row {bad} sums to {sums[bad]:.6g}")
    return m


class PrivateShockMarket(MarketEnv):
    """Base class: state ``[z, a_{t-1,1}, ..., a_{t-1,N}]`` (ints), shocks as in the module doc.

    A subclass sets ``exo_transition`` (``[Z, Z]``), ``exo_values`` (``[Z]``, what ``z`` is in
    the market's units) and implements :meth:`flow_profits`.
    """

    private_shocks: ClassVar[bool] = True
    stage_game_is_benchmark = False  # today's action is tomorrow's state

    def __init__(self, n_firms: int, n_actions: int, exo_transition: np.ndarray, params: dict[str, Any]):
        self.shock = params.get("shock", "gumbel")
        if self.shock not in SHOCKS:
            raise v.ConfigError(f"market.shock: expected one of {list(SHOCKS)}, got {self.shock!r}")
        if self.shock == "normal" and n_actions != 2:
            raise v.ConfigError("market.shock: 'normal' shocks need two actions per firm (a probit choice)")
        self.sigma = v.number(params.get("sigma", 1.0), "market.sigma", positive=True)
        self.n_actions = n_actions
        self.exo_transition = exo_transition
        self.n_exo = exo_transition.shape[0]
        self.encoding = params.get("encoding", "scaled")
        if self.encoding not in ENCODINGS:
            raise v.ConfigError(f"market.encoding: expected one of {list(ENCODINGS)}, got {self.encoding!r}")
        public_states = self.n_exo * n_actions**n_firms  # n_states, before the base class sets n_firms
        if self.encoding == "state" and public_states > MAX_STATE_ONEHOT:
            raise v.ConfigError(
                f"market.encoding: 'state' codes each of the {public_states:,} public states "
                f"one-hot, above {MAX_STATE_ONEHOT:,}; expected 'scaled' or 'onehot' for this game"
            )
        init = params.get("initial_state", "random")
        if init != "random":
            init = np.asarray(init)
            if init.shape != (n_firms + 1,) or not np.issubdtype(init.dtype, np.integer):
                expected = f"'random' or {n_firms + 1} integers [z, a_1..a_N]"
                raise v.ConfigError(f"market.initial_state: expected {expected}, got {init.tolist()}")
            if not (0 <= init[0] < self.n_exo and ((init[1:] >= 0) & (init[1:] < n_actions)).all()):
                raise v.ConfigError(f"market.initial_state: {init.tolist()} is outside the state space")
        self.initial = init
        self.shocks_: np.ndarray | None = None  # this period's shocks [N, A], in money
        grid = np.arange(n_actions, dtype=float)
        super().__init__(n_firms, [grid] * n_firms, params)

    # ----- what a subclass states -----
    def flow_profits(self, z: np.ndarray, previous: np.ndarray, joint: np.ndarray) -> np.ndarray:
        """Deterministic profits ``[..., N]`` at exogenous state ``z [...]``, last actions
        ``previous [..., N]`` and joint actions ``joint [..., N]`` (broadcast together)."""
        raise NotImplementedError

    def profit_features(self, z: np.ndarray, previous: np.ndarray, joint: np.ndarray) -> np.ndarray:
        """Features ``[..., N, K]`` with flow profits = features @ theta, theta in the order of
        :meth:`coefficients` (the profit is linear in its coefficients; inverse estimation needs it)."""
        raise NotImplementedError

    def feature_table(self) -> np.ndarray:
        """``[S, J, N, K]`` profit features of every joint action at every state."""
        self.profit_table()  # the same size check
        states = self.state_array()
        return self.profit_features(states[:, None, 0], states[:, None, 1:], self.all_profiles()[None])

    # ----- the state space -----
    @property
    def n_states(self) -> int:
        return self.n_exo * self.n_actions**self.n_firms

    def state_index(self, state: np.ndarray) -> np.ndarray:
        """Index of states ``[..., 1 + N]`` in the order of :meth:`state_array` (z slowest)."""
        state = np.asarray(state)
        flat = state[..., 0].astype(np.int64)
        for i in range(self.n_firms):
            flat = flat * self.n_actions + state[..., 1 + i]
        return flat

    def state_array(self) -> np.ndarray:
        """Every state ``[S, 1 + N]``: z slowest, then firm 1's last action, ..., firm N's."""
        profiles = np.array(list(itertools.product(range(self.n_actions), repeat=self.n_firms)), dtype=np.int64)
        z = np.repeat(np.arange(self.n_exo), len(profiles))
        return np.column_stack([z, np.tile(profiles, (self.n_exo, 1))])

    def theory_size(self) -> int:
        """Entries of the flow-profit table the exact MPE enumerates (states x joint actions x firms)."""
        return self.n_states * self.n_actions**self.n_firms * self.n_firms

    @property
    def enumerable(self) -> bool:
        """Whether the exact MPE's tables fit: at most :data:`MAX_THEORY_ENTRIES` state x joint-action
        x firm entries (what :meth:`profit_table`, the enumerating inverse estimators and the exact
        ergodic distribution need)."""
        return self.theory_size() <= MAX_THEORY_ENTRIES

    def profit_table(self) -> np.ndarray:
        """``[S, J, N]`` flow profits of every joint action (row-major) at every state."""
        if not self.enumerable:
            raise v.ConfigError(
                f"market.n_firms: the exact MPE enumerates {float(self.theory_size()):.3g} state x joint-action "
                f"x firm entries, above {MAX_THEORY_ENTRIES:,}: this game is for learning, not for exact theory"
            )
        states = self.state_array()
        joint = self.all_profiles()
        return self.flow_profits(states[:, None, 0], states[:, None, 1:], joint[None])

    # ----- MarketEnv contract -----
    @property
    def public_size(self) -> int:
        if self.encoding == "onehot":
            return self.n_exo + self.n_firms * self.n_actions
        if self.encoding == "state":
            return self.n_states
        return 1 + self.n_firms

    @property
    def observation_size(self) -> int:
        return self.public_size + self.n_actions

    def observation_bounds(self) -> tuple[float, float]:
        return -np.inf, np.inf  # the shocks are unbounded

    # Single-copy and K-copy methods share the array code below (_draw_initial, _next_states,
    # _public); a subclass that overrides a single-copy method keeps it with K copies (the base
    # class's loop), and may call super() on it without recursion.
    def initial_state(self, rng: np.random.Generator) -> np.ndarray:
        return self._draw_initial(rng, 1)[0]

    def initial_states(self, rng: np.random.Generator, copies: int) -> np.ndarray:
        if not self._own(PrivateShockMarket, "initial_state"):
            return super().initial_states(rng, copies)
        return self._draw_initial(rng, copies)

    def _draw_initial(self, rng: np.random.Generator, copies: int) -> np.ndarray:
        if isinstance(self.initial, str):
            z = rng.integers(0, self.n_exo, size=(copies, 1))
            return np.concatenate([z, rng.integers(0, self.n_actions, size=(copies, self.n_firms))], 1).astype(np.int64)
        return np.tile(self.initial.astype(np.int64), (copies, 1))

    def transition(self, state: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self._next_states(np.asarray(state)[None], np.asarray(actions)[None], rng)[0]

    def transitions(self, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self._own(PrivateShockMarket, "transition"):
            return super().transitions(states, actions, rng)
        return self._next_states(states, actions, rng)

    def _next_states(self, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``z' ~ Pi(z, .)`` by inverse CDF (one uniform per copy); last actions become ``actions``."""
        cumulative = np.cumsum(self.exo_transition[states[:, 0].astype(np.int64)], axis=1)
        u = rng.random(len(states))[:, None] * cumulative[:, -1:]
        z = np.minimum((u >= cumulative).sum(1), self.n_exo - 1)
        return np.column_stack([z, np.asarray(actions, dtype=np.int64)])

    def stage_profits(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        state = np.asarray(state)
        return self.flow_profits(state[..., 0], state[..., 1:], np.asarray(actions))

    def profits_at(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        if not self._own(PrivateShockMarket, "stage_profits"):
            return super().profits_at(states, actions)
        return self.stage_profits(states, actions)  # flow_profits broadcasts over copies

    def observe(self, state: np.ndarray) -> np.ndarray:
        """The public observation in the market's ``encoding`` (module doc)."""
        return self._public(np.asarray(state)[None])[0]

    def observe_all(self, states: np.ndarray) -> np.ndarray:
        if not self._own(PrivateShockMarket, "observe"):
            return super().observe_all(states)
        return self._public(states)

    def _public(self, states: np.ndarray) -> np.ndarray:
        if self.encoding == "scaled":
            states = np.asarray(states, dtype=float)
            return np.column_stack([states[:, 0] / max(self.n_exo - 1, 1), states[:, 1:] / (self.n_actions - 1)])
        states = np.asarray(states, dtype=np.int64)
        rows = np.arange(len(states))
        out = np.zeros((len(states), self.public_size))
        if self.encoding == "onehot":
            out[rows, states[:, 0]] = 1.0
            out[rows[:, None], self.n_exo + np.arange(self.n_firms) * self.n_actions + states[:, 1:]] = 1.0
            return out
        out[rows, self.state_index(states)] = 1.0
        return out

    def draw_shocks(self, rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
        """Shocks of shape ``size + (A,)`` in money (mean zero), see the module doc."""
        shape = (*size, self.n_actions)
        if self.shock == "gumbel":
            return rng.gumbel(-EULER_GAMMA * self.sigma, self.sigma, size=shape)
        return rng.normal(0.0, self.sigma, size=shape)

    def observations(self, public: np.ndarray) -> dict[str, np.ndarray]:
        self.shocks_ = self.draw_shocks(self._rng, (self.n_firms,))
        own = (self.shocks_ / self.reward_scale).astype(np.float32)
        return {a: np.concatenate([public, own[i]]).astype(np.float32) for i, a in enumerate(self.possible_agents)}

    def realised_profits(self, joint: np.ndarray) -> np.ndarray:
        profits = super().realised_profits(joint)
        return profits + self.shocks_[np.arange(self.n_firms), joint]

    def shock_temperature(self) -> float:
        """The logit temperature of the shocks in reward units (``sigma / reward_scale``)."""
        return self.sigma / self.reward_scale

    def representative_states(self) -> list[np.ndarray]:
        return list(self.state_array())

    def _reward_scale(self) -> float:
        """The largest |flow profit| over every state and joint action, or over 256 states drawn
        with a fixed seed when the game is too large to enumerate (``normalise_rewards``)."""
        if self.enumerable:
            table = self.profit_table()
        else:
            states = self.state_array()
            sample = states[np.random.default_rng(0).choice(len(states), size=256, replace=False)]
            joint = self.all_profiles()
            table = self.flow_profits(sample[:, None, 0], sample[:, None, 1:], joint[None])
        scale = float(np.abs(table).max())
        return scale if scale > 0 else 1.0

    def benchmarks(self, selection: str = "pareto") -> list[dict]:
        """The MPE (every one found) in CCPs, with the design's statistics: :mod:`nashrl.theory.ccp`."""
        from nashrl.theory.ccp import mpe_rows

        return mpe_rows(self)
