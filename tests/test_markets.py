"""Markets: PettingZoo API, profits, observations, bad input."""

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from nashrl.markets import MARKETS, ConfigError, make_market
from nashrl.theory import logit


@pytest.mark.parametrize("kind", sorted(MARKETS))
@pytest.mark.parametrize("memory", [0, 1, 2])
def test_parallel_api(kind, memory):
    config = {"type": kind, "episode_length": 12}
    if kind in ("cournot", "linear_bertrand", "logit_bertrand", "demand_shocks", "logit_segments"):
        config["memory"] = memory
    elif memory:
        pytest.skip("market has no memory setting")
    env = make_market(config)
    parallel_api_test(env, num_cycles=40)
    assert env.possible_agents == [f"firm_{i}" for i in range(env.n_firms)]


@pytest.mark.parametrize("kind", sorted(MARKETS))
def test_episode_rewards_are_stage_profits(kind):
    env = make_market({"type": kind, "episode_length": 7})
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    steps = 0
    while env.agents:
        state = env.state_.copy()
        joint = np.array([rng.integers(n) for n in env.action_sizes])
        # Games with private shocks: profits include the realised shock of each firm's action.
        shocks = env.shocks_[np.arange(env.n_firms), joint] if env.private_shocks else 0.0
        obs, rewards, terms, truncs, infos = env.step({a: int(x) for a, x in zip(env.possible_agents, joint)})
        expected = env.stage_profits(state, joint[None])[0] + shocks
        np.testing.assert_allclose([rewards[a] for a in env.possible_agents], expected / env.reward_scale)
        np.testing.assert_allclose([infos[a]["profit"] for a in env.possible_agents], expected)
        steps += 1
    assert steps == env.episode_length
    assert all(truncs.values()) and not any(terms.values())


def test_payoff_table_matches_stage_profits():
    env = make_market({"type": "logit_bertrand", "n_firms": 3, "m": 5})
    state = env.initial_state(np.random.default_rng(0))
    table = env.payoff_table(state)
    assert table.shape == (3, 5, 5, 5)
    assert np.allclose(table[:, 1, 4, 2], env.stage_profits(state, np.array([[1, 4, 2]]))[0])


def test_calvano_grid_and_profits():
    env = make_market({"type": "logit_bertrand"})
    # REFERENCE.md's [1.42773, 1.97018] comes from the 5-digit pN, pM; exact: 1.427721, 1.970186.
    np.testing.assert_allclose(env.grids[0][[0, -1]], [1.42773, 1.97018], atol=1e-5)
    assert len(env.grids[0]) == 15
    profits = logit.profits(env.a, env.a0, env.mu, env.costs, np.array([1.47293, 1.47293]))
    np.testing.assert_allclose(profits, 0.22293, atol=5e-6)


def test_normalised_rewards_are_scaled_profits():
    env = make_market({"type": "cournot", "normalise_rewards": True})
    assert env.reward_scale > 1
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step({"firm_0": 3, "firm_1": 5})
    assert rewards["firm_0"] == pytest.approx(infos["firm_0"]["profit"] / env.reward_scale)


def test_stackelberg_follower_sees_leader_quantity():
    env = make_market({"type": "stackelberg", "episode_length": 3})
    obs, _ = env.reset(seed=0)
    assert obs["firm_1"][0] == 0.0
    obs, rewards, *_ = env.step({"firm_0": 4, "firm_1": 9})  # follower's move ignored in phase 0
    assert rewards == {"firm_0": 0.0, "firm_1": 0.0}
    assert obs["firm_1"][0] == 1.0 and obs["firm_1"][1] == pytest.approx(4 / 12)
    _, rewards, *_ = env.step({"firm_0": 0, "firm_1": 2})  # leader's move ignored in phase 1
    q_l, q_f = env.grids[0][4], env.grids[1][2]
    price = env.a - env.b * (q_l + q_f)
    assert rewards["firm_0"] == pytest.approx((price - env.costs[0]) * q_l)
    assert env.state_.tolist() == [0, 0] and env.episode_length == 6


def test_segments_state_is_high_dimensional():
    env = make_market({"type": "logit_segments"})
    obs, _ = env.reset(seed=0)
    assert obs["firm_0"].shape[0] >= 50
    weights = obs["firm_0"][: env.n_segments]
    assert weights.sum() == pytest.approx(1.0, abs=1e-5)
    env.step({"firm_0": 0, "firm_1": 0})
    assert not np.allclose(env.weights(env.state_), weights)


def test_segments_scaled_encoding_is_the_weights_centred_and_scaled():
    """``encoding: scaled`` observes S w - 1: the same weights (recovered exactly), mean 0, spread
    of order one where the raw weights sit near 1/S; inside the observation space; other names refused."""
    raw = make_market({"type": "logit_segments", "memory": 1})
    scaled = make_market({"type": "logit_segments", "memory": 1, "encoding": "scaled"})
    states = raw.initial_states(np.random.default_rng(1), 200)
    o_raw, o_scaled = raw.observe_all(states), scaled.observe_all(states)
    s = raw.n_segments
    np.testing.assert_allclose((o_scaled[:, :s] + 1.0) / s, o_raw[:, :s], rtol=1e-12)
    np.testing.assert_array_equal(o_scaled[:, s:], o_raw[:, s:])  # remembered prices unchanged
    assert abs(o_scaled[:, :s].mean()) < 1e-9 and 0.3 < o_scaled[:, :s].std() < 3 and o_raw[:, :s].std() < 0.05
    obs, _ = scaled.reset(seed=0)
    assert scaled.observation_space("firm_0").contains(obs["firm_0"])
    with pytest.raises(ConfigError, match="market.encoding"):
        make_market({"type": "logit_segments", "encoding": "log"})


def test_demand_shock_chain():
    env = make_market({"type": "demand_shocks", "persistence": 1.0})
    env.reset(seed=0)
    first = env.state_[0]
    for _ in range(20):
        env.step({"firm_0": 0, "firm_1": 0})
    assert env.state_[0] == first  # fully persistent shock never moves
    with pytest.raises(ConfigError, match="transition_matrix"):
        make_market({"type": "demand_shocks", "transition_matrix": [[0.5, 0.5], [0.5, 0.5]]})


def test_capacity_transitions_are_distributions():
    env = make_market({"type": "capacity"})
    np.testing.assert_allclose(env.moves.sum(-1), 1.0)
    assert np.all(env.moves >= 0)
    # More investment, more chance to grow.
    up = env.moves[1, :, 2]
    assert np.all(np.diff(up) > 0)


@pytest.mark.parametrize("encoding, size", [("scaled", 3), ("onehot", 3 * 4), ("state", 4**3)])
def test_capacity_encodings_tell_every_state_apart(encoding, size):
    m = make_market({"type": "capacity", "n_firms": 3, "capacity_levels": 4, "encoding": encoding})
    obs = np.stack([m.observe(s) for s in m.state_list])
    assert obs.shape == (len(m.state_list), size) and m.observation_space("firm_0").shape == (size,)
    assert len({tuple(o) for o in obs}) == len(m.state_list) and obs.min() >= 0 and obs.max() <= 1
    if encoding == "state":  # the one-hot position is the state's index in state_list
        np.testing.assert_array_equal(obs, np.eye(len(m.state_list)))
    with pytest.raises(ConfigError, match="market.encoding"):
        make_market({"type": "capacity", "encoding": "binary"})
    with pytest.raises(ConfigError, match="market.encoding"):
        make_market({"type": "capacity", "n_firms": 6, "capacity_levels": 5, "encoding": "state"})


@pytest.mark.parametrize(
    "config, field",
    [
        ({"type": "cournot", "a": 1, "costs": 2}, "market.a"),
        ({"type": "cournot", "b": 0}, "market.b"),
        ({"type": "cournot", "b": -1}, "market.b"),
        ({"type": "cournot", "quantities": []}, "market.quantities"),
        ({"type": "cournot", "n_firms": 3, "costs": [1, 1]}, "market.costs"),
        ({"type": "cournot", "quantities": {"low": 2, "high": 1, "size": 5}}, "market.quantities"),
        ({"type": "monopoly"}, "market.type"),
        ({"type": "cournot", "colour": "red"}, "market"),
        ({"type": "linear_bertrand", "gamma": 1.0}, "market.gamma"),
        ({"type": "logit_bertrand", "mu": 0}, "market.mu"),
        ({"type": "logit_bertrand", "a": 0.5}, "market.a"),
        ({"type": "stackelberg", "n_firms": 3}, "market.n_firms"),
        ({"type": "capacity", "depreciation": 1.5}, "market.depreciation"),
        ({"type": "demand_shocks", "a_levels": []}, "market.a_levels"),
        ({"type": "cournot", "episode_length": 0}, "market.episode_length"),
    ],
)
def test_impossible_markets_are_refused(config, field):
    with pytest.raises(ConfigError) as err:
        make_market(config)
    assert str(err.value).startswith(field)
