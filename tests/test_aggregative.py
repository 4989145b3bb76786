"""Aggregative stage games: markets' aggregate form, the best-reply solver, the aggregative Q head."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from nashrl.equilibrium import pure_equilibrium_mask, solve
from nashrl.equilibrium.aggregative import candidate_equilibria, solve_aggregative
from nashrl.markets import make_market
from nashrl.theory.grid import _aggregative_grid_equilibria, grid_equilibria, market_deviations

MARKETS = [
    {"type": "cournot", "n_firms": 3, "memory": 0},
    {"type": "cournot", "n_firms": 4, "costs": [1.0, 1.2, 1.5, 2.0], "quantities": {"low": 0, "high": 4, "size": 9}},
    {"type": "logit_bertrand", "n_firms": 3, "memory": 0, "m": 9},
    {"type": "logit_bertrand", "n_firms": 4, "a": [2.0, 2.1, 1.9, 2.0], "m": 7},
]


@pytest.mark.parametrize("config", MARKETS)
def test_deviation_payoffs_from_the_aggregate_equal_the_stage_game(config):
    market = make_market(config)
    state = market.initial_state(np.random.default_rng(0))
    table = market.payoff_table(state)
    rng = np.random.default_rng(1)
    for _ in range(25):
        profile = np.array([rng.integers(0, a) for a in market.action_sizes])
        deviations = market.deviation_payoffs(state, profile)
        for i in range(market.n_firms):
            index = tuple(profile[:i]) + (slice(None),) + tuple(profile[i + 1 :])
            np.testing.assert_allclose(deviations[i, : market.action_sizes[i]], table[i][index], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("config", MARKETS)
def test_best_replies_end_at_pure_equilibria_of_the_whole_game(config):
    """Every equilibrium the dynamics report is one of the pure equilibria the full table has."""
    market = make_market(config)
    state = market.initial_state(np.random.default_rng(0))
    mask = pure_equilibrium_mask(torch.as_tensor(market.payoff_table(state))[None])[0]
    found = candidate_equilibria(market_deviations(market, state), market.action_sizes, 1, tol=1e-12)
    profiles = found.profiles[0][found.valid[0]]
    assert len(profiles) >= 1
    for profile in profiles:
        assert bool(mask[tuple(profile.tolist())])
    full, aggregative = grid_equilibria(market, state), _aggregative_grid_equilibria(market, state, "pareto")
    assert set(map(tuple, aggregative["pure_profiles"])) <= set(map(tuple, full["pure_profiles"]))
    assert aggregative["nash_gap"] == 0.0


def test_a_game_without_pure_equilibrium_is_flagged_not_hidden():
    """Matching pennies as a two-player 'aggregative' oracle (payoff depends on the rival's action
    only): best replies cycle, the solver reports it unsolved with its gap."""
    pennies = torch.tensor([[[1.0, -1.0], [-1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]]], dtype=torch.float64)

    def deviations(profile, firm):
        rival = profile[:, 1 - firm]
        return pennies[firm][:, rival].T if firm == 0 else pennies[firm][rival, :]

    sol = solve_aggregative(deviations, (2, 2), 3)
    assert not bool(sol.solved.any()) and bool((sol.nash_gap > 0).all())
    assert int(sol.n_equilibria.sum()) == 0


def test_many_firms_construct_without_a_joint_table_and_get_exact_benchmarks():
    """10 Cournot firms (13 quantities: 1.4e11 joint actions) and 10 logit Bertrand firms: the
    grid's equilibrium from best replies on exact profits is an equilibrium (every unilateral
    deviation checked), next to the closed forms."""
    for config in ({"type": "cournot", "n_firms": 10, "memory": 0}, {"type": "logit_bertrand", "n_firms": 10}):
        market = make_market(config)
        rows = {r["concept"]: r for r in market.benchmarks()}
        state = market.initial_state(np.random.default_rng(0))
        chosen = np.array([int(np.argmin(np.abs(g - x))) for g, x in zip(market.grids, rows["grid_nash"]["actions"])])
        deviations = market.deviation_payoffs(state, chosen)
        own = deviations[np.arange(10), chosen]
        assert float((deviations.max(1) - own).max()) <= 1e-12
        nash = np.array(rows["nash"]["actions"])
        step = np.diff(market.grids[0]).max()
        assert np.abs(np.array(rows["grid_nash"]["actions"]) - nash).max() <= step  # within one grid step
        with pytest.raises(ValueError, match="joint actions"):
            market.payoff_table(state)


def _aggregative_module(config: dict, **model):
    from nashrl.algorithms.nash_q.module import NashQTorchRLModule, aggregation_spec

    market = make_market(config)
    module = NashQTorchRLModule(
        observation_space=market.observation_space("firm_0"),
        action_space=gym.spaces.Discrete(max(market.action_sizes)),
        model_config={
            "action_sizes": list(market.action_sizes),
            "hiddens": [8],
            "q_head": "aggregative",
            "aggregation": aggregation_spec(market.aggregation(7)),
            **model,
        },
    )
    return market, module


SHARED = [{"type": "cournot", "n_firms": 3, "memory": 1}, {"type": "logit_bertrand", "n_firms": 3, "memory": 1, "m": 9}]


@pytest.mark.parametrize(
    "config, shared", [(MARKETS[0], False), (MARKETS[3], False), (SHARED[0], True), (SHARED[1], True)]
)
def test_aggregative_head_stage_game_equals_the_joint_game_it_stands_for(config, shared):
    """The head's tables define a joint game Q_i(a) = Q_i(a_i, X_-i(a)) (interpolated); its
    solution is a pure equilibrium of that joint game, valued as the joint game values it, and the
    training forward gives the same Q at taken actions (gradients included); also with one
    network shared by exchangeable firms."""
    views = make_market(config).firm_views() if shared else None
    market, module = _aggregative_module(config, **({"firm_views": views.tolist()} if shared else {}))
    assert type(module.q_net).__name__ == ("SharedFirms" if shared else "Sequential")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.q_net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    obs = torch.rand(6, market.observation_size, generator=gen)
    tables = module.q_values(obs)
    head = module.head
    profiles = torch.as_tensor(market.all_profiles())
    oracle = head.aggregation.table_deviations(tables.double())
    joint = torch.zeros(6, market.n_firms, len(profiles), dtype=torch.float64)
    for i in range(market.n_firms):
        for k, profile in enumerate(profiles):
            joint[:, i, k] = oracle(profile.expand(6, -1), i)[:, profile[i]]
    joint = joint.view(6, market.n_firms, *market.action_sizes)
    sol = module.solve_stage_games(tables)
    general = solve(joint)
    mask = pure_equilibrium_mask(joint)
    for b in range(6):
        if bool(sol.solved[b]):
            chosen = tuple(int(s[b].argmax()) for s in sol.strategies)
            assert bool(mask[b][chosen])
            values = joint[b][(slice(None), *chosen)]
            torch.testing.assert_close(sol.values[b], values)
        else:  # flagged only where the joint game has no pure equilibrium the dynamics could reach
            assert float(general.nash_gap[b]) >= 0
    actions = torch.stack([torch.randint(0, a, (6,), generator=gen) for a in market.action_sizes], 1)
    taken = module.q_taken(obs, actions)
    want = torch.stack([joint[b][(slice(None), *actions[b].tolist())] for b in range(6)]).float()
    torch.testing.assert_close(taken, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config", SHARED)
def test_shared_network_gives_each_firm_its_own_view(config):
    """share_firms: firm i's Q at state s is the shared network's firm-0 Q at firm i's view of s
    (its own past actions first), and the network has one firm's outputs."""
    market = make_market(config)
    views = market.firm_views()
    assert views.shape == (3, market.observation_size) and sorted(views[1]) == list(range(market.observation_size))
    assert list(views[1][:3]) == [1, 2, 0]  # firm 1 sees (a_1, a_2, a_0)
    _, module = _aggregative_module(config, firm_views=views.tolist())
    _, separate = _aggregative_module(config)
    assert module.q_net.net[-1].out_features * 3 == separate.q_net[-1].out_features
    obs = torch.rand(5, market.observation_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        q = module.q_values(obs)
        for i in range(3):
            torch.testing.assert_close(q[:, i], module.q_values(obs[:, views[i]])[:, 0])
        assert not torch.allclose(q[:, 0], q[:, 1])  # the views differ, so do the firms' Q


def test_share_firms_is_refused_where_firms_are_not_exchangeable():
    from nashrl.config import load_config
    from nashrl.markets.validation import ConfigError

    assert make_market({"type": "cournot", "n_firms": 3, "costs": [1.0, 1.0, 1.5]}).firm_views() is None
    assert make_market({"type": "logit_bertrand", "n_firms": 2, "a": [2.0, 2.2]}).firm_views() is None
    with pytest.raises(ConfigError, match="algorithm.share_firms: the firms of market 'cournot' are not exchangeable"):
        load_config(
            "configs/cournot_many_firms.yaml",
            ["algorithm.share_firms=true", "market.costs=[1, 1, 1, 1, 1, 1, 1, 1, 1, 2]"],
        )
    with pytest.raises(ConfigError, match="algorithm.share_firms: expected q_head 'aggregative'"):
        load_config("configs/cournot_duopoly.yaml", ["algorithm.share_firms=true"])
    with pytest.raises(ConfigError, match="algorithm.share_firms"):
        load_config("configs/cournot_many_firms.yaml", ["algorithm.share_firms=1"])  # strict: not a bool


def test_aggregative_head_is_refused_where_it_does_not_apply():
    from nashrl.config import load_config
    from nashrl.markets.validation import ConfigError

    with pytest.raises(ConfigError, match="algorithm.q_head: 'aggregative' needs an aggregative market"):
        load_config("configs/stackelberg.yaml", ["algorithm.q_head=aggregative"])
    with pytest.raises(ConfigError, match="algorithm.aggregate_knots"):
        load_config("configs/cournot_duopoly.yaml", ["algorithm.q_head=aggregative", "algorithm.aggregate_knots=1"])
    with pytest.raises(ConfigError, match="q_head: aggregative"):  # the joint head of 10 firms is too large
        load_config("configs/cournot_duopoly.yaml", ["market.n_firms=10"])
    with pytest.raises(ConfigError, match="algorithm.selection: 'strict' needs the joint stage game"):
        load_config("configs/cournot_many_firms.yaml", ["algorithm.selection=strict"])


@pytest.mark.parametrize("config", [MARKETS[0], MARKETS[3], {"type": "cournot", "n_firms": 6, "memory": 0}])
def test_compiled_table_dynamics_equal_the_tensor_dynamics(config, monkeypatch):
    """The CPU kernel and the tensor code (any device) reach the same end points, values and gaps."""
    import nashrl.equilibrium.aggregative as aggregative

    market = make_market(config)
    aggregation = market.aggregation(9)
    gen = torch.Generator().manual_seed(1)
    tables = torch.randn(64, market.n_firms, max(market.action_sizes), aggregation.n_knots, generator=gen).double()
    tables = tables + torch.linspace(0, 1, aggregation.n_knots).double()  # some structure, many equilibria
    compiled = aggregative.solve_aggregative_tables(tables, aggregation)
    monkeypatch.setattr(aggregative, "compiled", lambda name: None)
    tensor = aggregative.solve_aggregative_tables(tables, aggregation)
    for a, b in zip(compiled.strategies, tensor.strategies):
        assert torch.equal(a, b)
    torch.testing.assert_close(compiled.values, tensor.values)
    torch.testing.assert_close(compiled.nash_gap, tensor.nash_gap)
    assert torch.equal(compiled.solved, tensor.solved) and torch.equal(compiled.n_equilibria, tensor.n_equilibria)
    assert 0 < int(compiled.solved.sum()) < 64 or bool(compiled.solved.all())
