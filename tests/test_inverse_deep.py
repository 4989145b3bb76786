"""The deep inverse estimator and the many-firm design it is for: its choice values against the
exact ones, agreement with the classical estimators, the symmetric MPE of many firms, and the
refusals (settings, games too large for the enumerating estimators)."""

import numpy as np
import pytest
import torch

from nashrl.inverse import InverseModel, estimate
from nashrl.inverse.deep import DeepEstimator, DeepSettings, _Panel
from nashrl.inverse.estimators import choice_index
from nashrl.markets import ConfigError, make_market
from nashrl.panels import policy_for_panel, simulate
from nashrl.theory.ccp import CCPGame, cached_mpe, solve_mpe
from nashrl.theory.symmetric_entry import full_ccp, symmetric_mpe

AM1 = {"type": "entry_exit", "theta_rn": 1.0}


@pytest.fixture(scope="module")
def am_panel():
    market = make_market(AM1)
    return simulate(market, cached_mpe(market)["equilibria"][0].ccp, markets=20_000, periods=1, seed=21)


def test_deep_choice_values_match_the_exact_ones_at_its_own_ccps():
    """Steps 2-3 of the deep estimator (simulated difference network, rivals enumerated) against
    the exact linear-system values at the same neural CCPs: the choice-value differences that the
    likelihood reads agree to a few hundredths (mean over the observations; the difference of two
    separately fitted values missed by 0.17)."""
    market = make_market(AM1)
    panel = simulate(market, cached_mpe(market)["equilibria"][0].ccp, markets=4000, periods=1, seed=5)
    model = InverseModel.from_market_config(AM1)
    data = _Panel(model, panel)
    est = DeepEstimator(model, DeepSettings())
    est.fit_ccp(data)
    est.fit_values(data)
    z_deep, e_deep = est.choice_index(data)
    phat = est.ccp(market.state_array()).permute(1, 0, 2)  # [N, S, A] the network's CCPs everywhere
    z_exact, e_exact = choice_index(model, phat)
    at = market.state_index(data.states)
    theta = torch.as_tensor(model.true_free())
    v_deep = z_deep @ theta + e_deep
    v_exact = (z_exact @ theta + e_exact)[:, at].permute(1, 0, 2)
    gap = ((v_deep[..., 1] - v_deep[..., 0]) - (v_exact[..., 1] - v_exact[..., 0])).abs()
    assert float(gap.mean()) < 0.03, float(gap.mean())
    assert float(gap.max()) < 0.25, float(gap.max())


def test_deep_agrees_with_the_classical_estimators_and_the_truth(am_panel):
    deep = estimate(AM1, am_panel, method="deep")
    npl = estimate(AM1, am_panel, method="npl")
    truth = np.array(list(make_market(AM1).coefficients().values()))
    assert deep.converged and deep.method == "deep"
    assert list(deep.params.index) == list(npl.params.index)
    np.testing.assert_array_less(np.abs(deep.params.to_numpy() - npl.params.to_numpy()), 0.1)
    np.testing.assert_array_less(np.abs(deep.params.to_numpy() - truth), 0.3)
    assert (deep.bse.to_numpy() > 0).all() and "neural first stage" in deep.se_method
    assert "difference network" in deep.summary()


def test_symmetric_mpe_is_the_full_games_mpe():
    """Three exchangeable firms: the reduced-state equilibrium, spread to every full state, is a
    fixed point of the full game's Psi and is the equilibrium the full-state solver finds."""
    for theta_rn in (1.0, 2.5):
        market = make_market({"type": "entry_exit", "n_firms": 3, "theta_rn": theta_rn})
        eq = symmetric_mpe(market)
        ccp = full_ccp(market, eq)
        assert eq.residual < 1e-10
        assert CCPGame.of(market).residual(torch.as_tensor(ccp)) < 1e-10
        found = solve_mpe(market)["equilibria"]
        assert min(float(np.abs(e.ccp - ccp).max()) for e in found) < 1e-8


def test_symmetric_mpe_needs_exchangeable_firms():
    with pytest.raises(ConfigError, match="market.theta_fc: the symmetric MPE needs one fixed cost"):
        symmetric_mpe(make_market({"type": "entry_exit"}))
    with pytest.raises(ConfigError, match="market.type"):
        symmetric_mpe(make_market({"type": "psd_entry"}))


def test_twelve_firms_the_deep_estimator_runs_where_the_classical_ones_cannot():
    """5 x 2^12 = 20,480 states: the enumerating estimators refuse, pointing at deep; the panel
    comes from the symmetric MPE (burn-in instead of the exact ergodic distribution); deep
    recovers the coefficients (loose bounds: 3,000 markets, a two-step estimator's small-sample
    bias; docs/inverse_montecarlo.md has the Monte Carlo)."""
    config = {"type": "entry_exit", "n_firms": 12, "theta_rn": 1.0}
    market = make_market(config)
    ccp, policy = policy_for_panel(market, "mpe", config)
    assert policy["kind"] == "symmetric_mpe" and policy["fixed_point_residual"] < 1e-10
    with pytest.raises(ConfigError, match="--initial market --burn-in"):
        simulate(market, ccp, markets=10, periods=1)
    panel = simulate(market, ccp, markets=3000, periods=1, seed=2, initial="market", burn_in=60)
    for method in ("two_step", "npl", "mle"):
        with pytest.raises(ConfigError, match=f"--method {method}: enumerates 20,480 states.*use --method deep"):
            estimate(config, panel, method=method)
    result = estimate(config, panel, method="deep", deep_settings={"seed": 1})
    p = result.params
    assert result.converged and len(p) == 15
    assert abs(p["theta_ec"] - 1.0) < 0.15 and abs(p["theta_rs"] - 1.0) < 0.3 and abs(p["theta_rn"] - 1.0) < 0.6
    assert abs(p[[f"theta_fc_{i}" for i in range(12)]].mean() + 1.7) < 0.3


def test_burn_in_zero_leaves_seeded_panels_unchanged(am_panel):
    market = make_market(AM1)
    ccp = cached_mpe(market)["equilibria"][0].ccp
    a = simulate(market, ccp, markets=50, periods=3, seed=4, initial="market")
    b = simulate(market, ccp, markets=50, periods=3, seed=4, initial="market", burn_in=0)
    assert a.equals(b)
    c = simulate(market, ccp, markets=50, periods=2, seed=4, initial="market", burn_in=1)
    # the burn-in period is played and dropped: c's periods are a's periods 1 and 2
    first = a[a["period"] > 0].assign(period=lambda d: d["period"] - 1).reset_index(drop=True)
    assert first.equals(c.reset_index(drop=True))
    with pytest.raises(ConfigError, match="--burn-in"):
        simulate(market, ccp, markets=5, periods=1, burn_in=-1)


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"hiden": 3}, "--deep hiden: unknown setting"),
        ({"hidden": 0}, "--deep hidden: expected a positive integer"),
        ({"lr": "fast"}, "--deep lr: expected a number"),
        ({"tail": 2.0}, r"--deep tail: expected a number in \(0, 1\)"),
        ({"validation": 0.7}, "--deep validation"),
    ],
)
def test_bad_deep_settings_are_refused(settings, match):
    with pytest.raises(ConfigError, match=match):
        DeepSettings.from_mapping(settings)


def test_deep_refuses_a_first_stage_it_does_not_use_and_others_refuse_its_settings(am_panel):
    with pytest.raises(ConfigError, match="--first-stage: the deep estimator fits its own"):
        estimate(AM1, am_panel.head(5000), method="deep", first_stage="frequency")
    with pytest.raises(ConfigError, match="--deep: settings of the deep estimator given with --method npl"):
        estimate(AM1, am_panel.head(5000), method="npl", deep_settings={"hidden": 8})


def test_montecarlo_refuses_an_enumerating_method_on_a_game_too_large_before_ray(tmp_path):
    from nashrl.config import load_config
    from nashrl.inverse.montecarlo import run_montecarlo, sampling

    config = load_config("configs/entry_exit.yaml", ["market.n_firms=12", "market.theta_fc=-1.7"])
    with pytest.raises(ConfigError, match="--method two_step: enumerates 20,480 states"):
        run_montecarlo(config, 2, 500, tmp_path / "mc", methods=["deep", "two_step"])
    assert sampling(make_market(config["market"])) == {"initial": "market", "burn_in": 100}
    assert sampling(make_market(AM1)) == {"initial": "ergodic", "burn_in": 0}
    assert not (tmp_path / "mc").exists()  # refused before anything was written


def test_many_firm_commands_of_the_readme(tmp_path, capsys):
    """The README's many-firm commands: simulate from the symmetric MPE with a burn-in, estimate
    by deep (few steps here), the JSON table; an enumerating method is refused in one line."""
    import json

    from nashrl.cli import main

    panel = tmp_path / "n12.parquet"
    sets = ["--set", "market.n_firms=12", "--set", "market.theta_fc=-1.7", "--set", "market.theta_rn=1.0"]
    args = ["simulate", "configs/entry_exit.yaml", *sets, "--markets", "1500", "--periods", "1"]
    assert main([*args, "--initial", "market", "--burn-in", "50", "--out", str(panel)]) == 0
    capsys.readouterr()
    base = ["estimate", "configs/entry_exit.yaml", str(panel), *sets]
    assert main([*base, "--method", "deep", "--deep", "value_steps=100", "--deep", "ccp_steps=200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "deep" and out["n_obs"] == 1500 * 12
    rn = next(c for c in out["coefficients"] if c["coefficient"] == "theta_rn")
    assert rn["true"] == 1.0 and np.isfinite(rn["estimate"]) and rn["std_err"] > 0
    assert main([*base, "--method", "two_step"]) == 2
    assert "nashrl: error: --method two_step: enumerates 20,480 states" in capsys.readouterr().err
    assert main([*base, "--method", "deep", "--deep", "hidden=wide"]) == 2
    assert "nashrl: error: --deep hidden: expected an integer, got 'wide'" in capsys.readouterr().err
