"""Metrics on hand-made policies whose answers are known."""

import json

import numpy as np
import pytest

from nashrl.analysis.best_response import dynamic_nash_gap
from nashrl.analysis.evaluation import play, scalar_metrics, summarize
from nashrl.analysis.impulse import impulse_response
from nashrl.analysis.metrics import grid_steps, profit_gain, profit_gain_per_firm, stage_nash_gap
from nashrl.markets import make_market
from nashrl.theory.capacity import solve_mpe


class Constant:
    """Always the same joint action (indices)."""

    def __init__(self, joint):
        self.joint = np.asarray(joint)

    def act(self, obs, state):
        return self.joint


def nearest(grid, value):
    return int(np.argmin(np.abs(np.asarray(grid) - value)))


def test_profit_gain_formula():
    assert profit_gain(0.22293, 0.22293, 0.33749) == pytest.approx(0.0)
    assert profit_gain(0.33749, 0.22293, 0.33749) == pytest.approx(1.0)
    assert profit_gain(0.28021, 0.22293, 0.33749) == pytest.approx(0.5, abs=1e-4)


def test_profit_gain_on_average_profits_with_an_inactive_firm():
    """Firm 3 is out at Nash and in the cartel: Delta is defined (no 0/0), its own ratio is None."""
    market = make_market({"type": "cournot", "n_firms": 3, "costs": [1.0, 1.0, 9.5], "memory": 0})
    s = summarize(Constant([0, 0, 0]), market, steps=10)
    nash = next(r for r in s["comparisons"] if r["concept"] == "nash")
    cartel = next(r for r in s["comparisons"] if r["concept"] == "cartel")
    assert nash["profits"][2] == 0.0 and cartel["profits"][2] == 0.0
    expected = (np.mean(s["mean_profit"]) - np.mean(nash["profits"])) / (
        np.mean(cartel["profits"]) - np.mean(nash["profits"])
    )
    assert s["profit_gain"] == pytest.approx(expected) and np.isfinite(s["profit_gain"])
    assert s["profit_gain_per_firm"][2] is None and s["profit_gain_per_firm"][0] is not None
    assert profit_gain_per_firm([1.0, 0.0], [1.0, 0.0], [2.0, 0.0]) == [0.0, None]


def test_profit_gain_undefined_where_nash_is_joint_profit():
    """Independent demands (gamma = 0): Nash prices are the joint-profit prices, Delta is undefined."""
    market = make_market(
        {"type": "linear_bertrand", "gamma": 0.0, "memory": 0, "prices": {"low": 0.3, "high": 0.6, "size": 4}}
    )
    s = summarize(Constant([3, 3]), market, steps=10)
    assert s["profit_gain"] is None and "undefined" in s["profit_gain_note"]
    assert "eval/profit_gain" not in scalar_metrics(s)


def test_nash_play_has_zero_gap_and_zero_delta():
    market = make_market({"type": "cournot", "memory": 0, "quantities": {"low": 0, "high": 6, "size": 13}})
    s = summarize(Constant([6, 6]), market, steps=10)  # q = 3 each: the Cournot-Nash profile
    assert s["final_actions"] == [3.0, 3.0]
    assert s["stage_nash_gap"] == 0.0
    assert s["profit_gain"] == pytest.approx(0.0)
    nash = next(c for c in s["comparisons"] if c["concept"] == "nash")
    assert nash["max_grid_steps"] == 0


def test_monopoly_play_has_delta_one_and_positive_gap():
    market = make_market({"type": "linear_bertrand", "memory": 0})  # both pN and pM on the default grid
    i = nearest(market.grids[0], 0.5)
    s = summarize(Constant([i, i]), market, steps=10)
    assert s["final_actions"] == pytest.approx([0.5, 0.5])
    assert s["profit_gain"] == pytest.approx(1.0, abs=1e-9)
    assert s["stage_nash_gap"] > 0  # undercutting the joint-profit price pays


def test_stage_nash_gap_is_the_best_unilateral_gain():
    table = np.zeros((2, 2, 2))
    table[0] = [[3, 0], [5, 1]]
    table[1] = [[3, 5], [0, 1]]  # prisoner's dilemma
    gap, gains = stage_nash_gap(table, (0, 0))
    assert gap == 2.0 and gains.tolist() == [2.0, 2.0]
    assert stage_nash_gap(table, (1, 1))[0] == 0.0


def test_grid_steps():
    grid = np.linspace(0, 6, 13)
    assert grid_steps(grid, 6, 3.0) == 0 and grid_steps(grid, 8, 3.0) == 2 and grid_steps(grid, 5, 3.1) == 1


def test_dynamic_gap_zero_for_mpe_and_positive_otherwise():
    market = make_market({"type": "capacity"})
    mpe = solve_mpe(market)
    lookup = {tuple(s): k for k, s in enumerate(market.state_list)}

    class MPE:
        def act(self, obs, state):
            k = lookup[tuple(int(x) for x in state)]
            return np.array([int(mpe.strategies[i][k].argmax()) for i in range(2)])

    assert dynamic_nash_gap(MPE(), market)["dynamic_nash_gap"] < 1e-8
    assert dynamic_nash_gap(Constant([0, 0]), market)["dynamic_nash_gap"] > 1.0
    s = summarize(MPE(), market, steps=5)
    assert s["mpe_max_investment_gap"] < 1e-9
    # One-period profits are not the MPE's stage game: no stage gap (the MPE would score > 0 on it) ...
    last = play(MPE(), market, 5)["states"][-1]
    assert stage_nash_gap(market.payoff_table(last), MPE().act(None, last))[0] > 0
    assert s["stage_nash_gap"] is None and "eval/stage_nash_gap" not in scalar_metrics(s)
    # ... but the one-step deviation gain in the value sense: 0 at the MPE, positive for idle firms.
    assert s["one_step_deviation_gain"] < 1e-8
    assert summarize(Constant([0, 0]), market, steps=5)["one_step_deviation_gain"] > 0.1


def test_mpe_share_counts_states_by_their_ergodic_weight():
    market = make_market({"type": "capacity", "n_firms": 3, "costs": [0.0, 1.0, 2.0]})
    mpe = solve_mpe(market)
    mu = mpe.ergodic(market)
    lookup = {tuple(s): k for k, s in enumerate(market.state_list)}
    # mu is the chain's stationary distribution under the MPE's play.
    joint = mpe.joint().reshape(len(mu), -1)
    from nashrl.theory.capacity import transition_tensor

    chain = np.einsum("sa,sat->st", joint, transition_tensor(market).reshape(len(mu), joint.shape[1], -1))
    assert abs(mu.sum() - 1) < 1e-12 and np.abs(mu @ chain - mu).max() < 1e-12 and mu.min() >= 0

    wrong = {lookup[(0, 0, 0)], lookup[(4, 4, 4)]}  # firm 2 invests otherwise in two states

    class Deviating:
        def act(self, obs, state):
            k = lookup[tuple(int(x) for x in state)]
            joint = np.array([int(mpe.strategies[i][k].argmax()) for i in range(3)])
            if k in wrong:
                joint[2] = (joint[2] + 1) % 4
            return joint

    s = summarize(Deviating(), market, steps=5)
    lost = sum(mu[k] for k in wrong)
    assert s["mpe_ergodic_share_equal"] == pytest.approx(1 - lost, abs=1e-12) and lost > 0
    assert s["mpe_ergodic_share_by_firm"][:2] == pytest.approx([1.0, 1.0])
    assert scalar_metrics(s)["eval/mpe_ergodic_share_equal"] == pytest.approx(1 - lost, abs=1e-12)
    always_two = summarize(Constant([3, 3, 3]), market, steps=5)
    assert always_two["mpe_ergodic_share_equal"] < 0.5 and always_two["ergodic_investment"] == pytest.approx([2.0] * 3)

    class MPE(Deviating):
        def act(self, obs, state):
            k = lookup[tuple(int(x) for x in state)]
            return np.array([int(mpe.strategies[i][k].argmax()) for i in range(3)])

    at_mpe = summarize(MPE(), market, steps=5)
    assert at_mpe["mpe_ergodic_share_equal"] == pytest.approx(1.0)
    # The MPE's long-run investment, two ways: its rows' ergodic weights and the policy's own chain.
    assert at_mpe["ergodic_investment"] == pytest.approx(at_mpe["mpe_ergodic_investment"], abs=1e-10)
    assert at_mpe["mpe_ergodic_investment"] == pytest.approx((mu @ mpe.expected_investment(market.grids[0])).tolist())


def test_mpe_stage_loss_prices_each_difference_in_the_mpes_stage_game():
    """The 3-firm capacity game: firm 3 nearly indifferent at its capacity 2 (the MPE's most visited
    states). A policy that moves firm 3 by one investment in two states loses, in the MPE's stage
    game there, exactly U(best) - U(played); the near share counts a state only if that loss is
    within NEAR_MPE of the mean |value|."""
    from nashrl.analysis.evaluation import NEAR_MPE
    from nashrl.theory.capacity import own_action_payoffs, stage_games

    market = make_market({"type": "capacity", "n_firms": 3, "costs": [0.0, 1.0, 2.0]})
    mpe = solve_mpe(market)
    mu = mpe.ergodic(market)
    lookup = {tuple(s): k for k, s in enumerate(market.state_list)}
    greedy = np.stack([s.argmax(1) for s in mpe.strategies], 1)
    games = stage_games(market, mpe.values)
    payoffs = own_action_payoffs(market, mpe.values, mpe.strategies)
    for k in (0, lookup[(4, 4, 2)], 124):  # the pure MPE: each row is the stage game's slice at the rivals' actions
        for i in range(3):
            index = [k, i, *greedy[k]]
            for a in range(4):
                index[2 + i] = a
                assert payoffs[i][k, a] == pytest.approx(games[tuple(index)], abs=1e-12)
            assert payoffs[i][k].argmax() == greedy[k, i]
    scale = np.abs(mpe.values).mean()
    tie, sharp = lookup[(4, 4, 2)], lookup[(0, 0, 0)]
    moved = {tie: 1, sharp: (greedy[sharp, 2] + 1) % 4}  # firm 3: a near tie, and a clear mistake

    class Moved:
        def act(self, obs, state):
            k = lookup[tuple(int(x) for x in state)]
            joint = greedy[k].copy()
            joint[2] = moved.get(k, joint[2])
            return joint

    s = summarize(Moved(), market, steps=5)
    loss = {k: (payoffs[2][k].max() - payoffs[2][k, a]) / scale for k, a in moved.items()}
    assert 0 < loss[tie] <= NEAR_MPE < loss[sharp]
    assert s["mpe_ergodic_share_equal"] == pytest.approx(1 - mu[tie] - mu[sharp], abs=1e-12)
    assert s["mpe_ergodic_share_near"] == pytest.approx(1 - mu[sharp], abs=1e-12)
    assert s["mpe_ergodic_stage_loss"] == pytest.approx(mu[tie] * loss[tie] + mu[sharp] * loss[sharp], rel=1e-9)
    metrics = scalar_metrics(s)
    assert metrics["eval/mpe_ergodic_share_near"] == pytest.approx(s["mpe_ergodic_share_near"])


def test_dynamic_gap_for_demand_shocks_is_per_state_nash():
    market = make_market({"type": "demand_shocks", "memory": 0, "quantities": {"low": 0, "high": 7.5, "size": 16}})
    from nashrl.theory.grid import grid_equilibria

    class StateNash:
        """The static grid Nash equilibrium of the current demand level."""

        def act(self, obs, state):
            return np.array(grid_equilibria(market, state)["selected_indices"])

    assert dynamic_nash_gap(StateNash(), market)["dynamic_nash_gap"] < 1e-9
    s = summarize(StateNash(), market, steps=5)
    assert all(c["max_grid_steps"] <= 1 for c in s["state_comparisons"])


def test_state_stage_gap_bounds_the_dynamic_gap_where_actions_do_not_move_the_state():
    """Demand shocks, memory 0 (uniform stationary law): a policy off Nash at one demand level
    has a positive dynamic gap, at most the largest state's deviation gain over the mean profit."""
    market = make_market({"type": "demand_shocks", "memory": 0, "quantities": {"low": 0, "high": 7.5, "size": 16}})
    from nashrl.theory.grid import grid_equilibria

    class OffAtOneLevel:
        def act(self, obs, state):
            joint = np.array(grid_equilibria(market, state)["selected_indices"])
            return joint + np.array([2, 0]) if int(state[0]) == 1 else joint

    s = summarize(OffAtOneLevel(), market, steps=5)
    bound, dynamic = s["state_stage_gap"], s["dynamic_nash_gap"]
    assert bound["states"] == 3 and bound["max_gain"] > 0.1
    assert 0 < dynamic["relative"] <= bound["relative"]
    metrics = scalar_metrics(s)
    assert metrics["eval/state_stage_gap_relative"] == bound["relative"]
    assert metrics["eval/max_grid_steps_to_state_nash"] == 2.0
    gaining = {c["state"] for c in s["state_comparisons"] if max(c["deviation_gains"]) > 0}
    assert len(gaining) == 1  # only the demand level played off Nash


def test_state_following_tells_a_state_independent_policy_from_one_that_follows_the_nash():
    """Demand shocks (memory 0): the per-state grid Nash follows the state's Nash with slope near 1, a
    constant policy has slope 0, and the best constant's worst-state distance is the brute-force one."""
    market = make_market({"type": "demand_shocks", "memory": 0, "quantities": {"low": 0, "high": 7.5, "size": 16}})
    from nashrl.analysis.evaluation import state_following
    from nashrl.analysis.metrics import grid_steps
    from nashrl.theory.grid import grid_equilibria

    class StateNash:
        def act(self, obs, state):
            return np.array(grid_equilibria(market, state)["selected_indices"])

    follows = summarize(StateNash(), market, steps=5)
    constant = summarize(Constant([7, 7]), market, steps=5)
    f, c = follows["state_following"], constant["state_following"]
    assert f["states"] == 3 and f["nash_range_steps"] >= 2
    assert f["slope"] == pytest.approx(1.0, abs=0.15) and c["slope"] == 0.0
    nash = [r["benchmark_actions"] for r in follows["state_comparisons"] if r["concept"] == "nash"]
    grid = market.grids[0]
    brute = min(max(grid_steps(grid, a, n[i]) for n in nash for i in range(2)) for a in range(len(grid)))
    assert f["best_constant_steps"] == c["best_constant_steps"] == brute
    assert scalar_metrics(follows)["eval/state_following_slope"] == f["slope"]

    class Against:  # plays the grid Nash of the mirrored demand level: moves against the state's Nash
        def act(self, obs, state):
            return np.array(grid_equilibria(market, np.array([2 - int(state[0])]))["selected_indices"])

    assert summarize(Against(), market, steps=5)["state_following"]["slope"] < -0.5
    assert state_following(market, []) is None


def test_segments_policy_is_compared_at_stationary_draws():
    """The segments market is evaluated at equal weights and at evaluation_states draws; the
    Nash row at every state solves the first-order conditions, and the draws are the same each time."""
    from nashrl.theory import segments

    market = make_market({"type": "logit_segments", "n_segments": 8, "evaluation_states": 5})
    rows = market.benchmarks()
    assert [r["concept"] for r in rows] == ["nash", "grid_nash"] * 6
    assert len({r["state"] for r in rows}) == 6
    assert rows == make_market({"type": "logit_segments", "n_segments": 8, "evaluation_states": 5}).benchmarks()
    for r in rows[::2]:
        w = market.weights(np.asarray(r["state_vector"]))
        p = np.asarray(r["actions"])
        sig = segments.segment_shares(market.a, market.a0s, market.mus, p)
        slope = (sig * (1 - sig) / market.mus[:, None]).T @ w
        assert np.max(np.abs(p - market.costs - (sig.T @ w) / slope)) < 1e-9
    s = summarize(Constant([0, 0]), market, steps=5)
    assert s["state_stage_gap"]["states"] == 6 and s["state_stage_gap"]["relative"] > 0
    with pytest.raises(ValueError, match="market.evaluation_states"):
        make_market({"type": "logit_segments", "evaluation_states": -1})


def test_impulse_response_of_grim_like_policy():
    """A policy that answers any deviation from monopoly with one period of Nash prices."""
    market = make_market({"type": "logit_bertrand", "memory": 1})
    grid = market.grids[0]
    mono, nash = nearest(grid, 1.92498), nearest(grid, 1.47293)

    class Punish:
        def act(self, obs, state):
            last = state[-1]
            return np.array([nash, nash]) if (last != mono).any() and (last != nash).any() else np.array([mono, mono])

    ir = impulse_response(Punish(), market, warmup=5, horizon=6)
    assert ir["pre_deviation_actions"] == pytest.approx([grid[mono]] * 2)
    assert ir["rival_relative_change_next_period"][0] == pytest.approx(grid[nash] / grid[mono] - 1)
    assert ir["periods_to_return"] is not None and ir["periods_to_return"] <= 3
    assert ir["deviation_profitable"] is False

    class Ignore:
        def act(self, obs, state):
            return np.array([mono, mono])

    ir = impulse_response(Ignore(), market, warmup=5, horizon=6)
    assert ir["rival_relative_change_next_period"][0] == 0.0 and ir["deviation_profitable"] is True


def test_long_run_outcome_is_the_limit_cycle_from_the_state_reached():
    """Calvano's convention: a grim-trigger policy that is fully collusive from the collusive
    state scores Delta = 1 from there (averaging a random start's path scored ~0), and a
    two-period price cycle is averaged over the cycle."""
    market = make_market({"type": "logit_bertrand", "memory": 1})
    grid = market.grids[0]
    mono, nash = nearest(grid, 1.92498), nearest(grid, 1.47293)

    class Grim:
        def act(self, obs, state):
            return np.array([mono, mono]) if (state[-1] == mono).all() else np.array([nash, nash])

    table = market.payoff_table(np.zeros((1, 2), int))

    def delta_of(joint):  # Delta of playing the grid point `joint` forever
        pi_n = market.price_or_quantity_profits(market.p_nash).mean()
        pi_m = market.price_or_quantity_profits(market.p_monopoly).mean()
        return (table[:, joint, joint].mean() - pi_n) / (pi_m - pi_n)

    collusive = summarize(Grim(), market, steps=50, start_state=[[mono, mono]])
    assert collusive["profit_gain"] == pytest.approx(delta_of(mono), abs=1e-12) and delta_of(mono) > 0.97
    assert collusive["long_run"]["cycle_length"] == 1 and collusive["long_run"]["periods_to_cycle"] == 0
    punished = summarize(Grim(), market, steps=50, start_state=[[0, 3]])
    assert punished["profit_gain"] == pytest.approx(delta_of(nash), abs=1e-12) and abs(delta_of(nash)) < 0.03
    assert punished["long_run"]["periods_to_cycle"] == 1

    class Alternate:  # high, low, high, ... : a cycle of length 2
        def act(self, obs, state):
            return np.array([nash, nash]) if (state[-1] == mono).all() else np.array([mono, mono])

    s = summarize(Alternate(), market, steps=50, start_state=[[0, 0]])
    assert s["long_run"]["cycle_length"] == 2
    expected = (table[:, mono, mono] + table[:, nash, nash]) / 2
    assert s["mean_profit"] == pytest.approx(expected.tolist())
    # The same arguments give the same numbers, bit for bit.
    again = summarize(Alternate(), market, steps=50, start_state=[[0, 0]])
    assert again == s


def test_play_records_forced_deviation():
    market = make_market({"type": "cournot", "memory": 1})
    path = play(Constant([6, 6]), market, 4, forced={2: np.array([0, 6])})
    assert path["actions"][2].tolist() == [0, 6] and path["actions"][3].tolist() == [6, 6]


def test_report_of_a_tabular_run(tmp_path):
    from nashrl.analysis.report import capacity_policy_maps, evaluate_checkpoint, write_report
    from nashrl.config import validate
    from nashrl.train import run_training

    config = validate(
        {
            "name": "rep",
            "market": {"type": "cournot", "memory": 1},
            "algorithm": {"name": "tabular_q", "steps_per_iteration": 2000, "beta": 1e-3},
            "run": {
                "stop": {"iterations": 3},
                "output_dir": str(tmp_path),
                "progress": False,
                "eval_every": 1,
                "evaluation_steps": 5,
            },
        }
    )
    summary = run_training(config, quiet=True)
    report = write_report(summary["run_dir"])
    text = report.read_text()
    figures = report.parent / "figures"
    for figure in ("action_paths", "impulse_response", "eval_stage_nash_gap", "eval_profit_gain", "mean_profit"):
        assert f"figures/{figure}.png" in text
        assert (figures / f"{figure}.png").stat().st_size > 1000
        data = json.loads((figures / f"{figure}.json").read_text())  # the data behind the picture
        assert data["xlabel"] and data["ylabel"]
        for series in data["series"]:
            assert len(series["x"]) == len(series["y"]) > 0 and np.isfinite(series["y"]).all()
    gain = json.loads((figures / "eval_profit_gain.json").read_text())
    assert {r["y"] for r in gain["references"]} == {0.0, 1.0}  # Delta = 0 (Nash) and 1 (joint profit)
    paths = json.loads((figures / "action_paths.json").read_text())
    assert paths["ylabel"] == "quantity" and any(r["label"] == "Nash" and r["y"] == 3.0 for r in paths["references"])
    assert len(json.loads((figures / "mean_profit.json").read_text())["series"]) == 2  # one per firm
    # Several runs: curves as mean with a min-max band.
    second = run_training(validate({**config, "run": {**config["run"], "seed": 1}}), quiet=True)
    both = write_report([summary["run_dir"], second["run_dir"]], out_dir=tmp_path / "both")
    curve = json.loads((both.parent / "figures" / "eval_profit_gain.json").read_text())["series"][0]
    assert "mean of 2 runs" in curve["label"] and len(curve["low"]) == len(curve["y"])
    assert all(lo <= m + 1e-12 and m <= hi + 1e-12 for lo, m, hi in zip(curve["low"], curve["y"], curve["high"]))
    # memory 0: no punishment is possible, so no impulse response is drawn.
    static = validate({**config, "market": {"type": "cournot", "memory": 0}, "run": {**config["run"], "seed": 2}})
    static_report = write_report(run_training(static, quiet=True)["run_dir"]).read_text()
    assert "impulse_response" not in static_report
    result = evaluate_checkpoint(summary["checkpoint"])
    assert result["summary"]["final_actions"] and "impulse_response" in result
    # The run's summary and `nashrl evaluate` of its final checkpoint agree exactly.
    assert result["summary"] == summary["evaluation"]
    assert summary["final_state"] == result["meta"]["final_state"] is not None

    market = make_market({"type": "capacity"})
    maps = capacity_policy_maps(Constant([1, 1]), market, tmp_path / "maps.png")
    assert maps.stat().st_size > 1000
    duopoly = json.loads(maps.with_suffix(".json").read_text())["maps"]
    assert len(duopoly) == 1 and np.allclose(duopoly[0]["learned"], market.grids[0][1])
    mpe = solve_mpe(market)  # the MPE map: firm 0's investment at (own, rival) capacity
    invest = mpe.expected_investment(market.grids[0])
    k = market.levels
    assert np.allclose(duopoly[0]["mpe"], invest[:, 0].reshape(k, k))
    # Three firms: a map per firm, the third firm held at its level in the MPE's most visited state.
    triopoly = make_market({"type": "capacity", "n_firms": 3, "costs": [0.0, 1.0, 2.0]})
    three = capacity_policy_maps(Constant([0, 1, 2]), triopoly, tmp_path / "maps3.png")
    data = json.loads(three.with_suffix(".json").read_text())["maps"]
    mpe3 = solve_mpe(triopoly)
    mode = triopoly.state_list[int(np.argmax(mpe3.ergodic(triopoly)))]
    lookup = {tuple(int(x) for x in s): r for r, s in enumerate(triopoly.state_list)}
    invest3 = mpe3.expected_investment(triopoly.grids[0])
    assert [(m["firm"], m["rival"]) for m in data] == [(0, 1), (1, 2), (2, 0)]
    for m in data:
        held = {int(j): level for j, level in m["held"].items()}
        assert held == {3 - m["firm"] - m["rival"]: int(mode[3 - m["firm"] - m["rival"]])}
        assert np.allclose(m["learned"], triopoly.grids[0][m["firm"]])  # Constant([0, 1, 2]): firm i plays action i
        state = [0, 0, 0]
        state[m["firm"]], state[m["rival"]], state[3 - m["firm"] - m["rival"]] = 2, 3, mode[3 - m["firm"] - m["rival"]]
        assert m["mpe"][2][3] == pytest.approx(invest3[lookup[tuple(state)], m["firm"]])
