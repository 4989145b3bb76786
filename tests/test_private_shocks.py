"""Games with private shocks: the markets, their MPE in CCPs, soft Nash-Q's target, panels."""

import json
import math

import numpy as np
import pytest
import torch

from nashrl.markets import ConfigError, make_market
from nashrl.theory.ccp import CCPGame, best_response_gap, cached_mpe, equilibrium_statistics, solve_mpe


@pytest.fixture(scope="module")
def am():
    market = make_market({"type": "entry_exit"})
    return market, cached_mpe(market)


@pytest.fixture(scope="module")
def psd():
    market = make_market({"type": "psd_entry"})
    return market, cached_mpe(market)


# ----- markets -----
def test_entry_exit_is_the_am2007_design():
    m = make_market({"type": "entry_exit"})
    assert m.n_states == 160 and m.n_firms == 5 and m.discount == 0.95 and m.sigma == 1.0
    np.testing.assert_allclose(m.theta_fc, [-1.9, -1.8, -1.7, -1.6, -1.5])
    np.testing.assert_allclose(m.exo_transition[0], [0.8, 0.2, 0, 0, 0])
    np.testing.assert_allclose(m.exo_transition[2], [0, 0.2, 0.6, 0.2, 0])
    np.testing.assert_allclose(m.exo_transition[4], [0, 0, 0, 0.2, 0.8])
    # market size 3 (z = 2); firm 0 was out, firms 1, 2 in; now firms 0, 1, 3 active.
    state, joint = np.array([2, 0, 1, 1, 0, 0]), np.array([[1, 1, 0, 1, 0]])
    profits = m.stage_profits(state, joint)[0]
    expected0 = -1.9 - 1.0 * 1 + 1.0 * 3 - 2.5 * math.log(1 + 2)
    expected1 = -1.8 - 0.0 + 3 - 2.5 * math.log(3)
    np.testing.assert_allclose(profits, [expected0, expected1, 0.0, -1.6 - 1.0 + 3 - 2.5 * math.log(3), 0.0])


def test_rewards_include_the_realised_shock_and_observations_keep_rivals_shocks_private():
    m = make_market({"type": "entry_exit", "episode_length": 5})
    obs, _ = m.reset(seed=3)
    public = [o[: m.public_size] for o in obs.values()]
    assert all(np.array_equal(public[0], p) for p in public)
    own = np.stack([o[m.public_size :] for o in obs.values()])
    assert own.shape == (5, 2) and len(np.unique(own)) == 10  # each firm sees its own shocks only
    state = m.state_.copy()
    joint = {f"firm_{i}": i % 2 for i in range(5)}
    _, rewards, *_, infos = m.step(joint)
    actions = np.array([i % 2 for i in range(5)])
    deterministic = m.stage_profits(state, actions[None])[0]
    for i in range(5):
        assert rewards[f"firm_{i}"] == pytest.approx(deterministic[i] + own[i, actions[i]], rel=1e-6)
        assert infos[f"firm_{i}"]["profit"] == pytest.approx(rewards[f"firm_{i}"])


def test_gumbel_shocks_are_centred_with_the_configured_scale():
    m = make_market({"type": "entry_exit", "sigma": 2.0})
    draws = m.draw_shocks(np.random.default_rng(0), (200_000,))
    assert abs(draws.mean()) < 0.02
    assert draws.std() == pytest.approx(2.0 * math.pi / math.sqrt(6), rel=0.01)


@pytest.mark.parametrize(
    "override, field",
    [
        ({"sigma": 0}, "market.sigma"),
        ({"sigma": -1}, "market.sigma"),
        ({"discount": 1.0}, "market.discount"),
        ({"discount": -0.1}, "market.discount"),
        ({"size_transition": [[0.5, 0.4], [0.5, 0.5]], "market_sizes": 2}, "market.size_transition"),
        ({"size_transition": [[1.0, 0.0], [0.0, 1.0]]}, "market.size_transition"),
        ({"theta_fc": [-1.9, -1.8]}, "market.theta_fc"),
        ({"shock": "cauchy"}, "market.shock"),
        ({"theta_rn": "big"}, "market.theta_rn"),
        ({"initial_state": [9, 0, 0, 0, 0, 0]}, "market.initial_state"),
        ({"encoding": "binary"}, "market.encoding"),
        ({"encoding": "state", "n_firms": 10}, "market.encoding"),
    ],
)
def test_impossible_parameters_are_refused_naming_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as err:
        make_market({"type": "entry_exit", **override})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("encoding, size", [("scaled", 6), ("onehot", 5 + 5 * 2), ("state", 5 * 2**5)])
def test_every_encoding_tells_every_public_state_apart(encoding, size):
    m = make_market({"type": "entry_exit", "encoding": encoding})
    states = m.state_array()
    public = m.observe_all(states)
    assert m.public_size == size and public.shape == (len(states), size)
    assert len(np.unique(public, axis=0)) == len(states)  # one-to-one
    np.testing.assert_array_equal(public[7], m.observe(states[7]))  # single copy = K copies
    if encoding != "scaled":
        assert set(np.unique(public)) == {0.0, 1.0}
        assert (public.sum(1) == (1 if encoding == "state" else 1 + m.n_firms)).all()
    obs = m.reset(seed=0)[0]["firm_0"]
    assert obs.shape == (size + m.n_actions,)  # the shocks follow the public part


def test_the_exact_mpe_of_a_game_too_large_to_enumerate_is_refused():
    from nashrl.analysis.ccp_eval import ccp_summary

    m = make_market({"type": "entry_exit", "n_firms": 12, "normalise_rewards": True})  # the market itself trains
    assert m.n_states == 5 * 2**12
    with pytest.raises(ConfigError, match="exact MPE"):
        solve_mpe(m)
    # Evaluation says so instead of failing where even one firm's factored best response does not
    # fit (15 firms: 163,840 states x 16,384 rival profiles); 12 firms are evaluated that way
    # (tests/test_aggregative_logit.py, and the shipped 12-firm config's run).
    huge = make_market({"type": "entry_exit", "n_firms": 15})
    note = ccp_summary(None, huge)["mpe_note"]
    assert "no exact MPE" in note and "no exact best response either" in note and "n_firms" in note
    # The reward scale is the largest |profit| over 256 sampled states: the 12-firm design's
    # monopolist at market size 5 who entered this period earns -1.7 - 1 + 5 = 2.3; the largest
    # loss is an entrant at size 1 facing 11 active rivals, -1.7 - 1 + 1 - 2.5 ln 12.
    assert m.reward_scale == pytest.approx(1.7 + 1 - 1 + 2.5 * math.log(12), rel=0.1)


# ----- MPE -----
def test_every_reported_equilibrium_is_a_fixed_point_and_a_best_response(am, psd):
    for _, result in (am, psd):
        game = result["game"]
        assert result["equilibria"]
        for eq in result["equilibria"]:
            assert game.residual(torch.as_tensor(eq.ccp)) <= 1e-10
            gap = best_response_gap(game, eq.ccp)
            assert gap["dynamic_nash_gap"] < 1e-8 and gap["one_step_deviation_gain"] < 1e-8


def test_a_non_equilibrium_profile_has_a_positive_gap(am):
    market, result = am
    ccp = result["equilibria"][0].ccp.copy()
    ccp[0, :, 1] = 0.5
    ccp[0, :, 0] = 0.5
    gap = best_response_gap(result["game"], ccp)
    assert gap["dynamic_nash_gap"] > 0.05 and gap["per_firm"][0] > 0.05


def test_psd_entry_has_the_replication_equilibria(psd):
    """Dearing and Blevins' mc-psd2008 lists three equilibria (to two decimals) as probabilities of
    entering in states (xx, xe, ex, ee); the game is symmetric, so the two asymmetric ones come
    with their mirror images: five in all."""
    _, result = psd
    found = [eq.ccp[:, :, 1] for eq in result["equilibria"]]
    assert len(found) == 5
    replication = [
        (1 - np.array([0.27, 0.39, 0.20, 0.25]), 1 - np.array([0.72, 0.58, 0.78, 0.71])),
        (1 - np.array([0.38, 0.69, 0.17, 0.39]), 1 - np.array([0.47, 0.16, 0.70, 0.42])),
        (1 - np.array([0.42, 0.70, 0.16, 0.41]), 1 - np.array([0.42, 0.16, 0.70, 0.41])),
    ]
    for p1, p2 in replication:
        assert any(np.abs(f - np.stack([p1, p2])).max() <= 0.006 for f in found), (p1, p2)
        mirror = np.stack([p2[[0, 2, 1, 3]], p1[[0, 2, 1, 3]]])
        assert any(np.abs(f - mirror).max() <= 0.006 for f in found)
    stable = [eq.stable for eq in result["equilibria"]]
    assert stable.count(True) == 2 and stable.count(False) == 3


def test_two_firm_entry_exit_reference_values():
    """REFERENCE.md: entry cost 1, monopoly profit 1, duopoly profit 0.4, beta 0.9, normal shocks
    of standard deviation 1 -> P(active | neither active) 0.581, entrant 0.537, incumbent 0.824,
    both active 0.793."""
    m = make_market(
        {
            "type": "psd_entry",
            "monopoly_profit": 1.0,
            "competition_effect": -0.6,
            "entry_cost": -1.0,
            "scrap_value": 0.0,
            "sigma": 1.0,
        }
    )
    result = solve_mpe(m, starts=8)
    assert len(result["equilibria"]) == 1
    p = result["equilibria"][0].ccp[0, :, 1]  # firm 0 in states (out,out), (out,in), (in,out), (in,in)
    np.testing.assert_allclose(p, [0.581, 0.537, 0.824, 0.793], atol=6e-4)


def test_statistics_match_a_simulated_panel(am):
    from nashrl.panels import simulate

    market, result = am
    eq = result["equilibria"][0]
    stats, _ = equilibrium_statistics(result["game"], market, eq.ccp)
    assert stats["mean_entries"] == pytest.approx(stats["mean_exits"], abs=1e-9)  # stationarity
    panel = simulate(market, eq.ccp, markets=4000, periods=60, seed=1)
    wide = panel.pivot_table(index=["market", "period"], columns="firm", values="action").to_numpy()
    last = panel.pivot_table(index=["market", "period"], columns="firm", values="active_last_0").to_numpy()[:, 0]
    n_active = wide.sum(1)
    assert n_active.mean() == pytest.approx(stats["mean_active"], abs=0.02)
    assert n_active.std() == pytest.approx(stats["sd_active"], abs=0.02)
    np.testing.assert_allclose(wide.mean(0), stats["prob_active"], atol=0.01)
    before = panel[["market", "period", *[f"active_last_{i}" for i in range(5)]]].drop_duplicates(["market", "period"])
    prev = before[[f"active_last_{i}" for i in range(5)]].to_numpy()
    entries = ((1 - prev) * wide).sum(1)
    exits = (prev * (1 - wide)).sum(1)
    assert entries.mean() == pytest.approx(stats["mean_entries"], abs=0.02)
    assert (entries + exits - np.abs(entries - exits)).mean() == pytest.approx(stats["excess_turnover"], abs=0.02)
    assert np.corrcoef(entries, exits)[0, 1] == pytest.approx(stats["corr_entries_exits"], abs=0.03)
    assert np.corrcoef(n_active, prev.sum(1))[0, 1] == pytest.approx(stats["ar1_active"], abs=0.03)
    assert last.shape[0] == len(n_active)


# ----- soft Nash-Q -----
def test_soft_nash_q_target_on_a_hand_computed_case():
    """Two firms whose Q do not depend on the rival: the logit equilibrium is softmax(Q_i / tau)
    and each value tau * log sum exp(Q_i / tau); the target subtracts the firm's own shock."""
    from types import SimpleNamespace

    from nashrl.algorithms.nash_q.learner import NashQTorchLearner
    from nashrl.equilibrium import SolutionCache

    tau = 1.0
    q = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    q[0, 0] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # firm 0: action 0 worth 1, action 1 worth 0
    q[0, 1] = torch.tensor([[0.0, 2.0], [0.0, 2.0]])  # firm 1: action 0 worth 0, action 1 worth 2
    cache = SolutionCache(concept="logit", temperature=tau)
    from nashrl.algorithms.nash_q.heads import JointHead

    module = SimpleNamespace(
        head=JointHead((2, 2)),
        target_q_values=lambda obs: q.float(),
        q_values=lambda obs: q.float(),
        solve_stage_games=lambda game: cache(game),
        logit_temperature=tau,
        public_size=1,
    )
    from ray.rllib.core.columns import Columns

    batch = {
        Columns.NEXT_OBS: torch.zeros(1, 1),
        Columns.TERMINATEDS: torch.zeros(1),
        Columns.REWARDS: torch.tensor([[0.7, -0.2]]),
        "own_shocks": torch.tensor([[0.5, -0.3]]),
    }
    config = SimpleNamespace(double_q=False, gamma=0.9)
    y, _ = NashQTorchLearner.equilibrium_targets(None, module, batch, config)
    v0, v1 = math.log(math.e + 1.0), math.log(1.0 + math.e**2)
    np.testing.assert_allclose(y[0].numpy(), [0.7 - 0.5 + 0.9 * v0, -0.2 + 0.3 + 0.9 * v1], rtol=1e-5)


def test_shock_choice_reproduces_the_logit_strategy():
    """A firm that sees its shocks and takes argmax(expected Q + shock) plays its logit strategy."""
    from nashrl.algorithms.nash_q import NashQConfig
    from nashrl.algorithms.nash_q.connectors import FIRM_INDEX
    from nashrl.algorithms.nash_q.module import NashQTorchRLModule

    config = (
        NashQConfig()
        .environment("nashrl/entry_exit", env_config={"type": "entry_exit", "n_firms": 2})
        .training(solution_concept="logit")
    )
    market = config.market()
    module = NashQTorchRLModule(
        observation_space=market.observation_space("firm_0"),
        action_space=market.action_space("firm_0"),
        model_config=config.model_config,
    )
    assert module.public_size == market.public_size and module.private_shocks
    assert module.logit_temperature == pytest.approx(market.sigma)
    state = np.array([2, 1, 0])
    draws = 40_000
    shocks = market.draw_shocks(np.random.default_rng(0), (draws,))
    obs = np.concatenate([np.repeat(market.observe(state)[None], draws, 0), shocks], 1)
    with torch.no_grad():
        q = module.q_values(torch.as_tensor(obs[:1], dtype=torch.float32))
        strategy = module.choice_probabilities(q)
        for firm in (0, 1):
            batch = {"obs": torch.as_tensor(obs, dtype=torch.float32), FIRM_INDEX: torch.full((draws,), firm)}
            actions = module.forward_inference(batch)["actions"].numpy()
            assert actions.mean() == pytest.approx(float(strategy[firm][0, 1]), abs=4 * 0.5 / math.sqrt(draws))


@pytest.mark.parametrize(
    "market, algorithm, match",
    [
        ({"type": "entry_exit"}, {"solution_concept": "nash"}, "solution_concept"),
        ({"type": "psd_entry"}, {"solution_concept": "logit"}, "extreme-value"),
        ({"type": "entry_exit"}, {"solution_concept": "logit", "logit_temperature": 0.5}, "logit_temperature"),
        ({"type": "cournot"}, {"solution_concept": "logit"}, "logit_temperature"),
    ],
)
def test_logit_concept_settings_are_checked_against_the_market(market, algorithm, match):
    from nashrl.algorithms.nash_q import NashQConfig
    from nashrl.algorithms.nash_q.nash_q import nash_q_errors
    from nashrl.markets import rllib_env_name

    config = NashQConfig().environment(rllib_env_name(market["type"]), env_config=market).training(**algorithm)
    assert any(match in e for e in nash_q_errors(config)), nash_q_errors(config)


# ----- panels -----
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_panel_round_trip_and_frequencies(psd, tmp_path, suffix):
    from nashrl.panels import panel_metadata, read_panel, simulate, write_panel

    market, result = psd
    eq = result["equilibria"][2]
    panel = simulate(market, eq.ccp, markets=20_000, periods=10, seed=0, profits=True)
    meta = panel_metadata(market, {"type": "psd_entry"}, {"kind": "mpe", "equilibrium": 2}, seed=0)
    path = write_panel(panel, tmp_path / f"panel{suffix}", meta)
    back, meta_back = read_panel(path, market)
    assert meta_back["true_coefficients"] == market.coefficients() and meta_back["policy"]["equilibrium"] == 2
    np.testing.assert_array_equal(
        back[["market", "period", "firm", "action"]], panel[["market", "period", "firm", "action"]]
    )
    np.testing.assert_allclose(back["profit"], panel["profit"], rtol=1e-12 if suffix == ".parquet" else 1e-9)
    index = back["active_last_0"] * 2 + back["active_last_1"]
    for firm in (0, 1):
        rows = back["firm"] == firm
        freq = back[rows].groupby(index[rows])["action"].agg(["mean", "size"])
        for state, row in freq.iterrows():
            p = eq.ccp[firm, state, 1]
            assert abs(row["mean"] - p) <= 4 * math.sqrt(p * (1 - p) / row["size"]) + 1e-3


def test_simulated_realised_profits_have_the_equilibrium_mean(am):
    """Mean realised profit (shock included) per firm equals the equilibrium's ergodic flow payoff."""
    from nashrl.panels import simulate
    from nashrl.theory.ccp import stationary

    market, result = am
    game, eq = result["game"], result["equilibria"][0]
    p = torch.as_tensor(eq.ccp)
    joint = game.joint(p)
    mu = stationary(game.transition(joint))
    flow = torch.einsum("sj,sjn->sn", joint, game.profits) + game.expected_shock(p).T
    expected = (mu.unsqueeze(1) * flow).sum(0).numpy()
    panel = simulate(market, eq.ccp, markets=20_000, periods=20, seed=2, profits=True)
    means = panel.groupby("firm")["profit"].mean().to_numpy()
    np.testing.assert_allclose(means, expected, atol=0.02)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda df: df.drop(columns="action"), "missing column 'action'"),
        (lambda df: df.assign(action=df["action"].astype(float).where(df.index != 3)), "panel.action"),
        (lambda df: df.assign(action=df["action"] + 5), "panel.action: expected actions"),
        (lambda df: df.assign(active_last_1=7), "panel.active_last_1"),
        (lambda df: df.iloc[1:], "firm rows per market and period"),
    ],
)
def test_bad_panels_are_refused_naming_the_column(psd, tmp_path, mutate, match):
    from nashrl.panels import read_panel, simulate

    market, result = psd
    panel = mutate(simulate(market, result["equilibria"][0].ccp, markets=5, periods=3))
    path = tmp_path / "bad.csv"
    panel.to_csv(path, index=False)
    with pytest.raises(ConfigError, match=match):
        read_panel(path, market)


def test_simulate_and_theory_cli(tmp_path, capsys):
    from nashrl.cli import main
    from nashrl.panels import read_panel

    out = tmp_path / "p.parquet"
    assert (
        main(
            [
                "simulate",
                "configs/psd_entry.yaml",
                "--markets",
                "50",
                "--periods",
                "4",
                "--policy",
                "mpe:1",
                "--seed",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    panel, meta = read_panel(out, make_market({"type": "psd_entry", "episode_length": 100}))
    assert len(panel) == 50 * 4 * 2 and meta["seed"] == 3 and meta["policy"]["equilibrium"] == 1
    capsys.readouterr()
    assert main(["theory", "configs/psd_entry.yaml", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["benchmarks"]
    assert [r["concept"] for r in rows] == ["mpe"] * 5
    assert all(r["fixed_point_residual"] <= 1e-10 for r in rows)
    assert (
        main(
            [
                "simulate",
                "configs/psd_entry.yaml",
                "--markets",
                "5",
                "--periods",
                "2",
                "--policy",
                "mpe:9",
                "--out",
                str(tmp_path / "q.csv"),
            ]
        )
        == 2
    )
    assert "mpe:9 but 5 MPE found" in capsys.readouterr().err
    assert not (tmp_path / "q.csv").exists()
    bad_out = str(tmp_path / "missing" / "p.csv")
    assert main(["simulate", "configs/psd_entry.yaml", "--markets", "5", "--periods", "2", "--out", bad_out]) == 2
    assert "--out: no folder" in capsys.readouterr().err


def test_numba_and_torch_logit_paths_agree():
    from nashrl.equilibrium.logit import logit_equilibrium

    g = torch.randn(64, 3, 2, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a, ra = logit_equilibrium(g, 0.5, backend="torch")
    b, rb = logit_equilibrium(g, 0.5, backend="numba")
    ok = (ra <= 1e-10) & (rb <= 1e-10)
    assert int(ok.sum()) >= 60
    for x, y in zip(a, b):
        assert float((x - y)[ok].abs().max()) < 1e-8


def test_ccp_game_matches_direct_valuation_on_psd(psd):
    """V from the linear system equals the discounted sum of flows simulated by matrix powers."""
    _, result = psd
    game: CCPGame = result["game"]
    p = torch.as_tensor(result["equilibria"][0].ccp)
    joint = game.joint(p)
    flow = torch.einsum("sj,sjn->sn", joint, game.profits) + game.expected_shock(p).T
    f = game.transition(joint)
    total, power = torch.zeros_like(flow), torch.eye(game.n_states, dtype=flow.dtype)
    for t in range(400):
        total += game.beta**t * power @ flow
        power = power @ f
    np.testing.assert_allclose(game.values(p).numpy(), total.numpy(), atol=1e-9)


@pytest.mark.slow
def test_replay_keeps_each_firms_own_shock_so_targets_use_shock_free_profits(ray_session):
    """In a real run, reward minus the stored own shock is the deterministic flow profit of the
    state (read back from the public observation) and the joint action."""
    from nashrl.algorithms.nash_q import NashQConfig

    config = (
        NashQConfig()
        .environment("nashrl/entry_exit", env_config={"type": "entry_exit", "n_firms": 3, "episode_length": 20})
        .env_runners(num_env_runners=0)
        .training(solution_concept="logit", num_steps_sampled_before_learning_starts=10_000, hiddens=[8])
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        algo.train()
        replay, market = algo.replay, config.market()
        n = len(replay)
        assert n > 0
        data = {k: v[:n] for k, v in replay.data.items()}
        shocks = data["own_shocks"]
        assert np.abs(shocks).max() > 0
        public = data["obs"][:, : market.public_size]
        states = np.column_stack([np.rint(public[:, 0] * (market.n_exo - 1)), public[:, 1:]]).astype(np.int64)
        profits = np.stack([market.stage_profits(s, a[None])[0] for s, a in zip(states, data["actions"])])
        np.testing.assert_allclose(data["rewards"] - shocks, profits, atol=1e-5)
    finally:
        algo.stop()


@pytest.mark.slow
def test_entry_exit_run_evaluates_and_reports_ccps_against_the_mpe(ray_session, tmp_path):
    from nashrl.analysis.report import evaluate_checkpoint, write_report
    from nashrl.config import load_config
    from nashrl.train import run_training

    overrides = ["run.stop={iterations: 3}", "run.checkpoint_every=0", "run.progress=false", "run.eval_every=1"]
    config = load_config("configs/entry_exit.yaml", [*overrides, f"run.output_dir={tmp_path}"])
    config["algorithm"]["num_steps_sampled_before_learning_starts"] = 0
    summary = run_training(config, quiet=True)
    ev = summary["evaluation"]
    assert ev["ccp_estimate"] == "exact" and ev["mpe_equilibria"] == 1
    assert 0 < ev["mpe_max_ccp_diff"] <= 1 and ev["mpe_visited_states"] == 154
    assert "eval/mpe_max_ccp_diff" in summary["final_metrics"]
    # Long-run entry: the learned profile's figures are logged, the MPE's beside them.
    assert summary["final_metrics"]["eval/ergodic_active_firms"] == pytest.approx(ev["ergodic_active_firms"])
    assert 0 < ev["ergodic_active_firms"] < 5 and 0 < ev["mpe_ergodic_entries"] < 5
    assert ev["ergodic_entries"] == pytest.approx(ev["ergodic_exits"], rel=1e-6)  # at its own stationary law
    assert evaluate_checkpoint(summary["checkpoint"])["summary"] == ev
    report = write_report([summary["run_dir"]], out_dir=tmp_path / "report")
    assert "Learned choice probabilities against the MPE" in report.read_text()
    data = json.loads((tmp_path / "report" / "figures" / "ccp_vs_mpe.json").read_text())
    mpe = cached_mpe(make_market(config["market"]))["equilibria"][0].ccp
    assert len(data["series"]) == 5
    for i, series in enumerate(data["series"]):
        np.testing.assert_allclose(series["x"], mpe[i, :, 1])  # the MPE's CCPs, state by state
        np.testing.assert_allclose(series["y"], ev["learned_prob_active"][i], atol=1e-12)


def test_soft_nash_q_fixed_point_is_the_mpe():
    """Tabular soft Nash-Q with exact expectations (the learner's target: flow profit + beta E[sigma'Q + tau H])
    converges to the MPE's CCPs: the soft Nash-Q operator's fixed point is the Markov perfect equilibrium."""
    from nashrl.algorithms.nash_q.learner import shock_rent
    from nashrl.equilibrium import solve

    market = make_market({"type": "entry_exit", "n_firms": 3, "theta_rn": 2.5})
    n, a, z_count = market.n_firms, market.n_actions, market.n_exo
    joint = market.all_profiles()
    profits = torch.as_tensor(market.profit_table())  # [S, J, N]
    pi = torch.as_tensor(market.exo_transition)[torch.as_tensor(market.state_array()[:, 0])]  # [S, Z]
    tau = market.shock_temperature()
    values = torch.zeros(market.n_states, n, dtype=torch.float64)
    for _ in range(2000):
        q = profits + market.discount * torch.einsum("sz,zjn->sjn", pi, values.view(z_count, len(joint), n))
        solution = solve(q.permute(0, 2, 1).reshape(-1, n, *([a] * n)), concept="logit", temperature=tau)
        new = (q * solution.joint.reshape(len(q), -1, 1)).sum(1) + tau * shock_rent(solution.strategies)
        step = float((new - values).abs().max())
        values = new
        if step < 1e-11:
            break
    assert step < 1e-11 and solution.n_unsolved == 0
    mpe = cached_mpe(market)["equilibria"][0].ccp
    np.testing.assert_allclose(torch.stack(solution.strategies).numpy(), mpe, atol=1e-7)
