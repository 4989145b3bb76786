"""Vectorised markets and the vectorised Nash-Q path: K copies as arrays, joint acting, the lean learner loop."""

import copy

import numpy as np
import pytest
import torch

from nashrl.algorithms.nash_q.replay import TRAIN_COLUMNS
from nashrl.equilibrium.cache import distinct_rows
from nashrl.markets import MARKETS, make_market
from nashrl.markets.base import MarketEnv
from nashrl.markets.vector import VectorMarket
from tests.test_nash_q_module import GAME, batch, module_with_game


@pytest.mark.parametrize("kind", sorted(MARKETS))
def test_k_copies_step_as_the_single_copy_market_does(kind):
    """Every step of K copies: rewards are the single-copy stage profits (+ the realised shock of
    the chosen action), observations the single-copy observe, deterministic transitions the
    single-copy transition; all copies truncate after episode_length and start afresh."""
    market = make_market({"type": kind, "episode_length": 4})
    vector = VectorMarket(market, copies=5, seed=1)
    rng = np.random.default_rng(0)
    for period in range(9):
        public = vector.public()
        states = vector.states.copy()
        shocks = None if vector.shocks is None else vector.shocks.copy()
        for k in range(5):
            np.testing.assert_allclose(public[k], market.observe(states[k])[: market.public_size], rtol=1e-6)
        joint = np.stack([rng.integers(0, n, size=5) for n in market.action_sizes], 1)
        step = vector.step(joint)
        for k in range(5):
            expected = market.stage_profits(states[k], joint[k][None])[0]
            if shocks is not None:
                expected = expected + shocks[k, np.arange(market.n_firms), joint[k]]
            np.testing.assert_allclose(step.profits[k], expected, rtol=1e-12)
            np.testing.assert_allclose(step.rewards[k], expected / market.reward_scale, rtol=1e-5)
            np.testing.assert_allclose(step.next_public[k], market.observe(vector.states[k])[: market.public_size])
            if market.deterministic:
                np.testing.assert_array_equal(vector.states[k], market.transition(states[k], joint[k], rng))
        assert step.truncated == ((period + 1) % market.episode_length == 0)


CONFIGS = {
    "entry_exit": {},
    "capacity": {"n_firms": 3, "encoding": "onehot"},
    "capacity_state": {"encoding": "state"},
    "logit_segments": {"n_segments": 16, "memory": 2},
}


ARRAY_MARKETS = ["cournot", "logit_bertrand", "entry_exit", "capacity", "capacity_state", "logit_segments"]


@pytest.mark.parametrize("kind", ARRAY_MARKETS)
def test_array_code_equals_the_generic_loop(kind):
    """Markets with their own K-copy code agree with the base class's loop over single copies."""
    market = make_market({"type": kind.split("_state")[0], **CONFIGS.get(kind, {"memory": 2})})
    states = market.initial_states(np.random.default_rng(0), 7)
    joint = np.stack([np.random.default_rng(1).integers(0, n, size=7) for n in market.action_sizes], 1)
    np.testing.assert_allclose(market.profits_at(states, joint), MarketEnv.profits_at(market, states, joint))
    np.testing.assert_allclose(market.observe_all(states), MarketEnv.observe_all(market, states))
    a = market.transitions(states, joint, np.random.default_rng(5))
    b = MarketEnv.transitions(market, states, joint, np.random.default_rng(5))
    assert a.shape == b.shape
    np.testing.assert_array_equal(a[:, 1:] if kind == "entry_exit" else a, b[:, 1:] if kind == "entry_exit" else b)


def test_exogenous_state_follows_its_markov_chain():
    """The K-copy transition of a private-shock market draws z' from Pi(z, .)."""
    market = make_market({"type": "entry_exit"})
    states = np.zeros((200_000, 1 + market.n_firms), dtype=np.int64)
    states[:, 0] = 2
    joint = np.zeros((len(states), market.n_firms), dtype=np.int64)
    z = market.transitions(states, joint, np.random.default_rng(0))[:, 0]
    frequencies = np.bincount(z, minlength=market.n_exo) / len(z)
    np.testing.assert_allclose(frequencies, market.exo_transition[2], atol=4e-3)


def test_capacity_levels_follow_their_transition_probabilities():
    """The K-copy draw of the capacity game moves each firm by T[k, x, .], independently."""
    market = make_market({"type": "capacity"})
    states = np.tile([[1, 3]], (200_000, 1))
    joint = np.tile([[3, 1]], (len(states), 1))
    nxt = market.transitions(states, joint, np.random.default_rng(0))
    for i, (k, x) in enumerate([(1, 3), (3, 1)]):
        frequencies = np.bincount(nxt[:, i], minlength=market.levels) / len(nxt)
        np.testing.assert_allclose(frequencies, market.moves[k, x], atol=4e-3)
    assert abs(np.corrcoef(nxt[:, 0], nxt[:, 1])[0, 1]) < 0.01


def test_subclass_dynamics_are_not_bypassed():
    """A repeated-game market that overrides the single-copy transition keeps it with K copies."""

    class Drifting(type(make_market({"type": "cournot"}))):
        def transition(self, state, actions, rng):
            return np.minimum(state + 1, 12)

    market = Drifting(memory=1)
    states = np.zeros((3, 1, 2), dtype=np.int64)
    moved = market.transitions(states, np.full((3, 2), 5), np.random.default_rng(0))
    np.testing.assert_array_equal(moved, np.ones((3, 1, 2)))


def test_vector_market_checks_its_input_and_resumes_its_generator():
    market = make_market({"type": "cournot", "memory": 1, "episode_length": 3})
    vector = VectorMarket(market, copies=4, seed=0)
    with pytest.raises(ValueError, match="joint: expected shape"):
        vector.step(np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="copies"):
        VectorMarket(market, copies=0)
    state = vector.rng_state()
    first = vector.public().copy()
    other = VectorMarket(market, copies=4, seed=99)
    other.resume_rng(state)
    np.testing.assert_array_equal(other.public(), first)


def test_joint_acting_equals_acting_row_by_row():
    """act_joint (one forward, one solve per state) plays what RLlib's per-agent rows play."""
    module = module_with_game(GAME)
    joint = module.act_joint(torch.zeros(3, 1), None, explore=False)
    rows = module.forward_inference(batch([0, 1]))["actions"]
    assert joint.shape == (3, 2)
    assert (joint == rows).all()
    module = module_with_game(GAME, epsilon=[[0, 0.0], [1, 0.0]])
    assert (module.act_joint(torch.zeros(64, 1), None, explore=True, t=10) == rows).all()


def test_distinct_rows():
    x = torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    rows, inverse = distinct_rows(x)
    assert len(rows) == 3 and torch.equal(rows[inverse], x)
    rows, inverse = distinct_rows(x[:1])
    assert torch.equal(rows[inverse], x[:1])
    # Colliding projections (all weights zero) fall back to the exact unique.
    rows, inverse = distinct_rows(x, weights=torch.zeros(2, dtype=torch.int64))
    assert len(rows) == 3 and torch.equal(rows[inverse], x)


def _calvano_with_replay(overrides: list[str], transitions: int):
    """The shipped Calvano config's algorithm on the driver (no remote runners), its replay filled
    with at least ``transitions`` before any learning."""
    from nashrl.algorithms.rllib_trainer import algorithm_config
    from nashrl.config import load_config

    config = load_config("configs/logit_bertrand_calvano.yaml", ["run.num_env_runners=0", *overrides])
    config["algorithm"]["num_steps_sampled_before_learning_starts"] = 10**9
    algo = algorithm_config(config).build_algo()
    try:
        while len(algo.replay) < transitions:
            algo.train()
    except BaseException:
        algo.stop()
        raise
    return algo


@pytest.mark.slow
@pytest.mark.parametrize("double_q", [False, True])
def test_lean_learner_loop_equals_rllib_update(ray_session, double_q):
    """NashQTorchLearner.learn takes the same gradient steps as RLlib's Learner.update minibatch loop
    (without double-Q its targets come from one pass over the whole sample)."""
    from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

    from nashrl.algorithms.nash_q.nash_q import to_train_batch

    algo = _calvano_with_replay([f"algorithm.double_q={double_q}"], 1000)
    try:
        learner = algo.learner_group._learner
        sample = algo.replay.sample(4 * 64)
        timesteps = {NUM_ENV_STEPS_SAMPLED_LIFETIME: 0}
        state = copy.deepcopy(learner.get_state())
        before = [p.detach().clone() for p in learner.module["nash_q"].parameters()]
        learner.update(batch=to_train_batch(sample), minibatch_size=64, num_epochs=1, timesteps=timesteps)
        rllib = [p.detach().clone() for p in learner.module["nash_q"].parameters()]
        learner.set_state(state)
        assert all(torch.equal(a, p) for a, p in zip(before, learner.module["nash_q"].parameters()))
        learner.learn(sample, 64, timesteps)
        lean = [p.detach().clone() for p in learner.module["nash_q"].parameters()]
        assert sum(not torch.equal(a, b) for a, b in zip(before, rllib)) >= 4  # the steps moved the weights
        for a, b in zip(rllib, lean):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    finally:
        algo.stop()


@pytest.mark.slow
def test_prioritized_replay_weights_the_loss_and_updates_priorities(ray_session):
    """Prioritised replay: unit importance weights take the uniform replay's gradient steps; the
    learner returns each row's mean |TD error| over the firms, and training moves the priorities."""
    from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

    algo = _calvano_with_replay(["algorithm.prioritized_replay_alpha=0.6", "algorithm.double_q=false"], 2500)
    try:
        learner = algo.learner_group._learner
        module = learner.module["nash_q"].unwrapped()
        sample = algo.replay.sample(4 * 64, beta=1.0)
        indices = sample.pop("indices")
        np.testing.assert_array_equal(sample["weights"], 1.0)  # nothing learned yet: equal priorities
        timesteps = {NUM_ENV_STEPS_SAMPLED_LIFETIME: 0}
        state = copy.deepcopy(learner.get_state())
        plain = {k: v for k, v in sample.items() if k != "weights"}
        learner.learn(plain, 64, timesteps)
        assert learner.td_errors is None
        uniform = [p.detach().clone() for p in module.parameters()]
        learner.set_state(state)
        with torch.no_grad():  # the TD errors the first minibatch sees, before any step
            batch = {k: torch.from_numpy(v[:64]) for k, v in sample.items()}
            batch = {TRAIN_COLUMNS[k]: v for k, v in batch.items()}
            y, _ = learner.equilibrium_targets(module, batch, learner.config.get_config_for_module("nash_q"))
            q = module._forward_train(batch)["q_taken"]
        learner.learn(sample, 64, timesteps)
        for a, b in zip(uniform, module.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert learner.td_errors.shape == (256,) and np.all(np.isfinite(learner.td_errors))
        np.testing.assert_allclose(learner.td_errors[:64], (q - y).abs().mean(1).numpy(), rtol=1e-5, atol=1e-7)
        # Half the weights at 0: the step differs from the uniform one.
        learner.set_state(state)
        sample["weights"][::2] = 0.0
        learner.learn(sample, 64, timesteps)
        assert any(not torch.allclose(a, b) for a, b in zip(uniform, module.parameters()))
        # The algorithm's learning step updates the sampled rows' priorities from the learner's TD errors.
        before = algo.replay.priorities.values(np.arange(len(algo.replay))).copy()
        algo._learn(0)
        after = algo.replay.priorities.values(np.arange(len(algo.replay)))
        moved = np.flatnonzero(after != before)
        drawn = algo.config.train_batch_size * algo.config.updates_per_iteration
        assert 0 < len(moved) <= drawn < len(algo.replay) and after.min() < after.max()
        assert indices.shape == (256,)
    finally:
        algo.stop()


def test_results_carry_no_nan_profit_when_no_episode_ended():
    """An iteration in which no episode ended has no mean profit to report: left out, never NaN."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS

    from nashrl.algorithms.rllib_trainer import flatten_result

    result = {ENV_RUNNER_RESULTS: {"mean_profit/firm_0": float("nan"), "mean_profit/firm_1": 2.5}}
    out = flatten_result(result)
    assert "firm_0/mean_profit" not in out and out["firm_1/mean_profit"] == 2.5


def test_private_shock_subclass_dynamics_are_kept_with_k_copies():
    """A private-shock market whose subclass overrides (and calls super() on) the single-copy
    transition and observation keeps both with K copies, without recursion."""
    base = type(make_market({"type": "entry_exit", "n_firms": 2}))

    class Stuck(base):
        def transition(self, state, actions, rng):
            moved = super().transition(state, actions, rng)
            moved[0] = state[0]  # market size never changes
            return moved

        def observe(self, state):
            return super().observe(state) * 0.5

    market = Stuck(n_firms=2)
    states = market.initial_states(np.random.default_rng(0), 50)
    joint = np.ones((50, 2), dtype=np.int64)
    moved = market.transitions(states, joint, np.random.default_rng(1))
    np.testing.assert_array_equal(moved[:, 0], states[:, 0])
    np.testing.assert_array_equal(moved[:, 1:], joint)
    np.testing.assert_allclose(market.observe_all(states), 0.5 * MarketEnv.observe_all(base(n_firms=2), states))
