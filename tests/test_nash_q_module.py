"""The Nash-Q RLModule and learner pieces, without Ray: acting, exploration, targets, replay."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from nashrl.algorithms.nash_q.connectors import FIRM_INDEX, firm_index
from nashrl.algorithms.nash_q.heads import joint_index
from nashrl.algorithms.nash_q.module import NashQTorchRLModule
from nashrl.algorithms.nash_q.replay import JointTransitionBuffer


def module_with_game(game: np.ndarray, **config) -> NashQTorchRLModule:
    """A module whose Q-values are ``game`` [N, A, A] at every state (weights zero, bias = game)."""
    n, a = game.shape[0], game.shape[1]
    module = NashQTorchRLModule(
        observation_space=gym.spaces.Box(0.0, 1.0, (1,), np.float32),
        action_space=gym.spaces.Discrete(a),
        model_config={"action_sizes": [a] * n, "hiddens": [4], **config},
    )
    last = module.q_net[-1]
    with torch.no_grad():
        for p in module.q_net.parameters():
            p.zero_()
        last.bias.copy_(torch.as_tensor(game.reshape(-1), dtype=torch.float32))
    return module


def batch(firms):
    return {"obs": torch.zeros(len(firms), 1), FIRM_INDEX: torch.as_tensor(firms)}


# A 3x3 game whose unique equilibrium is (row 2, column 0).
GAME = np.array(
    [
        [[1, 0, 0], [0, 1, 0], [3, 2, 2]],
        [[2, 0, 1], [2, 1, 0], [1, 0, 0]],
    ],
    dtype=float,
)


def test_each_firm_plays_its_part_of_the_equilibrium():
    module = module_with_game(GAME)
    out = module.forward_inference(batch([0, 1, 0, 1]))
    assert out["actions"].tolist() == [2, 0, 2, 0]


def test_epsilon_exploration_decays():
    module = module_with_game(GAME, epsilon=[[0, 1.0], [100, 0.0]])
    torch.manual_seed(0)
    early = module.forward_exploration(batch([0] * 400), t=0)["actions"]
    late = module.forward_exploration(batch([0] * 400), t=1000)["actions"]
    assert len(set(early.tolist())) == 3  # uniform random at epsilon 1
    assert set(late.tolist()) == {2}  # pure equilibrium play at epsilon 0


def test_boltzmann_exploration_is_noisy_best_response():
    cold = module_with_game(GAME, exploration="boltzmann", temperature=1e-4)
    hot = module_with_game(GAME, exploration="boltzmann", temperature=1e4)
    torch.manual_seed(0)
    assert set(cold.forward_exploration(batch([1] * 200), t=0)["actions"].tolist()) == {0}
    assert len(set(hot.forward_exploration(batch([1] * 200), t=0)["actions"].tolist())) == 3


def test_target_network_copies_and_forward_target():
    module = module_with_game(GAME)
    module.make_target_networks()
    q = module.forward_target(batch([0]))["q_joint"]
    assert torch.allclose(q[0], torch.as_tensor(GAME, dtype=torch.float32))
    assert module.get_target_network_pairs()[0][0] is module.q_net


def test_q_at_the_taken_actions_equals_the_full_stage_game_entry():
    """The training forward computes only the taken joint action's outputs: the same numbers (and
    the same gradients) as gathering them from the whole joint-action output."""
    module = NashQTorchRLModule(
        observation_space=gym.spaces.Box(0.0, 1.0, (2,), np.float32),
        action_space=gym.spaces.Discrete(4),
        model_config={"action_sizes": [4, 3, 2], "hiddens": [8]},
    )
    gen = torch.Generator().manual_seed(0)
    obs = torch.rand(16, 2, generator=gen)
    actions = torch.stack([torch.randint(0, n, (16,), generator=gen) for n in (4, 3, 2)], 1)
    taken = module.q_taken(obs, actions)
    full = module.q_values(obs)
    want = full[
        torch.arange(16)[:, None],
        torch.arange(3)[None, :],
        actions[:, None, 0],
        actions[:, None, 1],
        actions[:, None, 2],
    ]
    torch.testing.assert_close(taken, want)
    grad_taken = torch.autograd.grad(taken.square().sum(), module.q_net[-1].weight)[0]
    grad_full = torch.autograd.grad(want.square().sum(), module.q_net[-1].weight)[0]
    torch.testing.assert_close(grad_taken, grad_full)


def test_joint_index_is_row_major():
    actions = torch.tensor([[0, 0], [1, 2], [2, 1]])
    assert joint_index(actions, (3, 4)).tolist() == [0, 6, 9]
    flat = torch.arange(12).view(3, 4).flatten()
    assert flat[joint_index(actions, (3, 4))].tolist() == [0, 6, 9]


def test_firm_index_parsing():
    assert firm_index("firm_0") == 0 and firm_index("firm_12") == 12
    for bad in ("agent_0", "firm_x", "0"):
        try:
            firm_index(bad)
        except ValueError as err:
            assert "firm_<i>" in str(err)
        else:
            raise AssertionError(bad)


def test_joint_replay_ring_buffer():
    buf = JointTransitionBuffer(capacity=5, n_firms=2, obs_dim=1, seed=0)
    for k in range(7):
        buf.add(
            {
                "obs": np.full((1, 1), k),
                "actions": np.array([[k, k + 1]]),
                "rewards": np.array([[k, -k]]),
                "next_obs": np.full((1, 1), k + 1),
                "terminated": np.zeros(1),
            }
        )
    assert len(buf) == 5 and buf.added == 7
    sample = buf.sample(50)
    assert set(sample["obs"][:, 0].tolist()) == {2, 3, 4, 5, 6}  # the two oldest were overwritten
    assert np.all(sample["actions"][:, 1] == sample["actions"][:, 0] + 1)
    assert np.all(sample["next_obs"][:, 0] == sample["obs"][:, 0] + 1)
    state = buf.get_state()
    other = JointTransitionBuffer(capacity=5, n_firms=2, obs_dim=1)
    other.set_state(state)
    np.testing.assert_array_equal(other.sample(10)["obs"], buf.sample(10)["obs"])


def _filled(buf: JointTransitionBuffer, n: int) -> JointTransitionBuffer:
    """``buf`` with transitions 0..n-1 (obs k) added one by one."""
    for k in range(n):
        buf.add(
            {
                "obs": np.full((1, 1), k),
                "actions": np.zeros((1, 2)),
                "rewards": np.zeros((1, 2)),
                "next_obs": np.full((1, 1), k + 1),
                "terminated": np.zeros(1),
            }
        )
    return buf


def test_sum_tree_draws_in_proportion_to_its_leaves():
    from nashrl.algorithms.nash_q.priorities import SumTree

    tree = SumTree(5)  # 8 leaves, 3 beyond the capacity
    tree.update(np.array([0, 1, 2, 3, 4]), np.array([1.0, 2.0, 3.0, 0.0, 4.0]))
    tree.update(np.array([2, 2]), np.array([9.0, 3.0]))  # a repeated index keeps its last value
    assert tree.total == 10.0 and tree.values(np.array([2]))[0] == 3.0
    draws = tree.sample(200_000, 5, np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(draws, minlength=5) / 200_000, [0.1, 0.2, 0.3, 0.0, 0.4], atol=0.005)
    np.testing.assert_array_equal(tree.find(np.array([0.0, 0.999, 1.0, 5.999, 6.0, 9.999])), [0, 0, 1, 2, 4, 4])
    for bad in (np.array([-1.0]), np.array([np.nan])):
        with pytest.raises(ValueError, match="finite priorities"):
            tree.update(np.array([0]), bad)


def test_prioritized_replay_samples_by_td_error_and_weights_the_bias():
    buf = _filled(JointTransitionBuffer(capacity=8, n_firms=2, obs_dim=1, seed=0, alpha=1.0), 8)
    first = buf.sample(64, beta=1.0)
    np.testing.assert_array_equal(first["weights"], 1.0)  # new transitions share the largest priority
    td = np.full(8, 0.1)
    td[3] = 2.9  # row 3 holds 2.9 / (7 * 0.1 + 2.9) = 81% of the mass
    buf.update_priorities(np.arange(8), td)
    sample = buf.sample(10_000, beta=1.0)
    share = np.mean(sample["obs"][:, 0] == 3)
    assert abs(share - 2.9 / 3.6) < 0.02, share
    # Importance weights (n P(j))^-beta over the batch's largest: the common rows 1, row 3 0.1/2.9.
    np.testing.assert_allclose(sample["weights"][sample["indices"] == 3], 0.1 / 2.9, rtol=1e-5)
    np.testing.assert_allclose(sample["weights"][sample["indices"] != 3], 1.0)
    assert set(np.unique(sample["obs"][:, 0] == sample["indices"])) == {True}
    # A new transition gets the largest priority so far (2.9 + eps): it overwrites row 0.
    _filled(buf, 1)
    np.testing.assert_allclose(buf.priorities.values(np.array([0, 3])), 2.9 + 1e-6)
    # Checkpoints keep the priorities.
    other = JointTransitionBuffer(capacity=8, n_firms=2, obs_dim=1, alpha=1.0)
    other.set_state(buf.get_state())
    np.testing.assert_array_equal(other.priorities.values(np.arange(8)), buf.priorities.values(np.arange(8)))
    assert other.max_priority == buf.max_priority
    with pytest.raises(ValueError, match="finite TD errors"):
        buf.update_priorities(np.arange(2), np.array([np.nan, 1.0]))
    uniform = _filled(JointTransitionBuffer(capacity=8, n_firms=2, obs_dim=1, seed=0), 8)
    assert "weights" not in uniform.sample(4) and not uniform.prioritized
    with pytest.raises(ValueError, match="not prioritised"):
        uniform.update_priorities(np.arange(2), np.ones(2))


def _independent_module(q_own: np.ndarray, **config) -> NashQTorchRLModule:
    """A module with an independent head whose Q-values are ``q_own`` [N, A] at every state."""
    n, a = q_own.shape
    module = NashQTorchRLModule(
        observation_space=gym.spaces.Box(0.0, 1.0, (1,), np.float32),
        action_space=gym.spaces.Discrete(a),
        model_config={"action_sizes": [a] * n, "hiddens": [4], "q_head": "independent", **config},
    )
    with torch.no_grad():
        for p in module.q_net.parameters():
            p.zero_()
        module.q_net[-1].bias.copy_(torch.as_tensor(q_own.reshape(-1), dtype=torch.float32))
    return module


def test_independent_head_plays_each_firms_own_argmax_and_targets_are_dqns():
    """Each firm's Q over its own actions: greedy play is its argmax (whatever the rival does), the
    target is r + gamma max_a Q_target(s', a) (DQN), and the training forward is Q at the own action."""
    from types import SimpleNamespace

    from ray.rllib.core.columns import Columns

    from nashrl.algorithms.nash_q.learner import NashQTorchLearner

    q_own = np.array([[1.0, 3.0, 2.0], [0.5, -1.0, 0.25]])
    module = _independent_module(q_own)
    module.make_target_networks()
    assert module.q_net[-1].out_features == 6
    assert module.forward_inference(batch([0, 1]))["actions"].tolist() == [1, 0]
    assert module.act_joint(torch.zeros(4, 1), None, explore=False).tolist() == [[1, 0]] * 4
    taken = module.q_taken(torch.zeros(2, 1), torch.tensor([[2, 1], [0, 2]]))
    np.testing.assert_allclose(taken.detach().numpy(), [[2.0, -1.0], [1.0, 0.25]])
    batch_ = {
        Columns.NEXT_OBS: torch.zeros(2, 1),
        Columns.TERMINATEDS: torch.tensor([0.0, 1.0]),
        Columns.REWARDS: torch.tensor([[0.5, 1.0], [2.0, -1.0]]),
    }
    y, sol = NashQTorchLearner.equilibrium_targets(None, module, batch_, SimpleNamespace(double_q=False, gamma=0.9))
    np.testing.assert_allclose(y.numpy(), [[0.5 + 0.9 * 3.0, 1.0 + 0.9 * 0.5], [2.0, -1.0]], rtol=1e-6)
    assert bool(sol.solved.all()) and float(sol.nash_gap.max()) == 0.0


def test_independent_head_logit_choice_is_a_softmax_with_the_soft_maximum_as_value():
    tau = 0.5
    q_own = np.array([[1.0, 0.0], [0.0, 2.0]])
    module = _independent_module(q_own, solution_concept="logit", logit_temperature=tau)
    sol = module.solve_stage_games(module.q_values(torch.zeros(1, 1)))
    for i in range(2):
        np.testing.assert_allclose(
            sol.strategies[i][0].numpy(), torch.softmax(torch.tensor(q_own[i]) / tau, 0), rtol=1e-6
        )
        soft_max = tau * np.log(np.exp(q_own[i] / tau).sum())
        np.testing.assert_allclose(float(sol.values[0, i]), soft_max, rtol=1e-6)


def test_independent_head_refuses_equilibrium_concepts():
    with __import__("pytest").raises(ValueError, match="solution_concept: expected 'nash' or 'logit' for independent"):
        _independent_module(np.zeros((2, 2)), solution_concept="correlated")


@pytest.mark.parametrize("q_head, sizes", [("joint", [4, 3, 2]), ("independent", [3, 3])])
def test_dueling_head_is_value_plus_centred_advantages_and_its_taken_outputs_match(q_head, sizes):
    """dueling: Q_i(s, .) = V_i(s) + A_i(s, .) - mean A_i(s, .) from the layer's outputs, and the
    training forward (only the taken actions' rows, the values and the advantages' mean) gives
    the same numbers and gradients as gathering from the whole stage game."""
    module = NashQTorchRLModule(
        observation_space=gym.spaces.Box(0.0, 1.0, (2,), np.float32),
        action_space=gym.spaces.Discrete(max(sizes)),
        model_config={"action_sizes": sizes, "hiddens": [8], "q_head": q_head, "dueling": True},
    )
    n, block = len(sizes), module.head.head.n_outputs // len(sizes)
    assert module.q_net[-1].out_features == module.head.head.n_outputs + n
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.q_net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    obs = torch.rand(16, 2, generator=gen)
    raw = module.raw_q(obs)
    advantages = raw[:, : n * block].view(16, n, block)
    expected = advantages - advantages.mean(-1, keepdim=True) + raw[:, n * block :, None]
    full = module.q_values(obs)
    actions = torch.stack([torch.randint(0, a, (16,), generator=gen) for a in sizes], 1)
    if q_head == "joint":
        torch.testing.assert_close(full.flatten(2), expected)
        want = full[(torch.arange(16)[:, None], torch.arange(n)[None, :], *[actions[:, None, i] for i in range(n)])]
    else:
        torch.testing.assert_close(torch.stack(full, 1), expected)
        want = torch.stack([full[i][torch.arange(16), actions[:, i]] for i in range(n)], 1)
    taken = module.q_taken(obs, actions)
    torch.testing.assert_close(taken, want)
    weight = module.q_net[-1].weight
    torch.testing.assert_close(
        torch.autograd.grad(taken.square().sum(), weight)[0], torch.autograd.grad(want.square().sum(), weight)[0]
    )


def test_dueling_is_refused_with_shared_firms_and_must_be_a_boolean():
    from nashrl.config import ConfigError, load_config

    for sets, field in (
        (["algorithm.q_head=aggregative", "algorithm.share_firms=true", "algorithm.dueling=true"], "algorithm.dueling"),
        (["algorithm.dueling=yes please"], "algorithm.dueling"),
    ):
        with pytest.raises(ConfigError, match=field):
            load_config("configs/cournot_many_firms.yaml", sets)


def test_averaged_weights_are_the_mean_of_the_online_ones_and_only_the_greedy_policy_reads_them():
    """Polyak-Ruppert averaging: after n calls the averaged net is the arithmetic mean of the
    online weights at those calls; greedy acting reads it (once there is one), exploration and
    the learner's Q do not."""
    other = GAME[:, ::-1, :].copy()  # a game whose equilibrium is another profile
    module = module_with_game(GAME, average_weights_from=0)
    assert torch.equal(module.policy_q_values(torch.zeros(1, 1)), module.q_values(torch.zeros(1, 1)))
    last = module.q_net[-1]
    snapshots = []
    for game in (GAME, other, other):
        with torch.no_grad():
            last.bias.copy_(torch.as_tensor(game.reshape(-1), dtype=torch.float32))
        module.update_average()
        snapshots.append(last.bias.detach().clone())
    assert float(module.average_count) == 3
    mean = torch.stack(snapshots).mean(0)
    assert torch.allclose(module._average_q_net[-1].bias, mean, atol=1e-6)
    online = module.q_values(torch.zeros(1, 1))
    averaged = module.policy_q_values(torch.zeros(1, 1))
    expected = torch.as_tensor((GAME + 2 * other).reshape(-1) / 3, dtype=torch.float32)
    assert torch.allclose(averaged.flatten(), expected, atol=1e-5)
    assert not torch.allclose(averaged, online)
    # The averaged net is neither trained nor in the inference-only exclusions: env runners get it.
    assert not any(p.requires_grad for p in module._average_q_net.parameters())
    assert "_average_q_net" not in module.get_non_inference_attributes()
    state = module.get_state()
    assert "average_count" in state and any(k.startswith("_average_q_net") for k in state)
    fresh = module_with_game(GAME, average_weights_from=0)
    fresh.set_state(state)
    assert torch.equal(fresh.policy_q_values(torch.zeros(1, 1)), averaged)


def test_average_weights_from_is_validated_and_fixes_the_checkpoint():
    from nashrl.checkpoints import shape_settings
    from nashrl.config import ConfigError, load_config

    for value in ("-1", "soon", "1.5"):
        with pytest.raises(ConfigError, match="algorithm.average_weights_from"):
            load_config("configs/demand_shocks.yaml", [f"algorithm.average_weights_from={value}"])
    config = load_config("configs/demand_shocks.yaml", ["algorithm.average_weights_from=1000"])
    assert shape_settings(config["algorithm"])["average_weights_from"] == 1000
    assert shape_settings(load_config("configs/demand_shocks.yaml")["algorithm"])["average_weights_from"] is None
