"""Inverse estimation: recovery of the profit coefficients from simulated panels, standard errors,
NPL's fixed point, and refusals of data that cannot identify them."""

import json

import numpy as np
import pytest
import torch

from nashrl.inverse import InverseModel, estimate
from nashrl.inverse.estimators import choice_index, two_step
from nashrl.inverse.first_stage import first_stage
from nashrl.inverse.model import choice_counts
from nashrl.markets import ConfigError, make_market
from nashrl.panels import simulate
from nashrl.theory.ccp import cached_mpe

AM1 = {"type": "entry_exit", "theta_rn": 1.0}


@pytest.fixture(scope="module")
def am_panel():
    market = make_market(AM1)
    eq = cached_mpe(market)["equilibria"][0]
    return simulate(market, eq.ccp, markets=40_000, periods=1, seed=7)


@pytest.mark.parametrize("kind", ["entry_exit", "psd_entry"])
def test_profits_are_linear_in_the_coefficients(kind):
    market = make_market({"type": kind})
    theta = np.array(list(market.coefficients().values()))
    np.testing.assert_allclose(market.feature_table() @ theta, market.profit_table(), atol=1e-12)


def test_choice_index_reproduces_the_equilibrium_choice_values():
    """At the true theta and the MPE's CCPs, Z~ theta + e~ are the MPE's choice values (so the
    pseudo-likelihood's logit of them is Psi(P) = P)."""
    market = make_market(AM1)
    model = InverseModel.from_market_config(AM1)
    eq = torch.as_tensor(cached_mpe(market)["equilibria"][0].ccp)
    z_tilde, e_tilde = choice_index(model, eq)
    values = z_tilde @ torch.as_tensor(model.true_free()) + e_tilde
    game = model.game
    np.testing.assert_allclose(values.numpy(), game.choice_values(eq, game.values(eq)).numpy(), atol=1e-9)
    np.testing.assert_allclose(game.response(values).numpy(), eq.numpy(), atol=1e-9)


@pytest.mark.parametrize("method, tolerance", [("two_step", 0.3), ("npl", 0.12), ("mle", 0.12)])
def test_every_estimator_recovers_theta_on_a_large_panel(am_panel, method, tolerance):
    result = estimate(AM1, am_panel, method=method)
    truth = np.array(list(make_market(AM1).coefficients().values()))
    assert result.converged
    error = np.abs(result.params.to_numpy() - truth)
    assert error.max() < tolerance, result.summary()
    assert (error < 4 * result.bse.to_numpy() + 0.02).all() or method == "two_step", result.summary()
    assert list(result.params.index) == list(make_market(AM1).coefficients())
    text = result.summary()
    assert "theta_rn" in text and "std_err" in text


def test_npl_fixed_point_is_a_two_step_solution_at_its_ccps(am_panel):
    model = InverseModel.from_market_config(AM1)
    counts = choice_counts(model, am_panel)
    from nashrl.inverse.estimators import npl

    out = npl(model, counts, first_stage(model, counts))
    assert out["converged"]
    again = two_step(model, counts, out["ccp"], start=out["theta"] * 0)
    np.testing.assert_allclose(again["theta"].numpy(), out["theta"].numpy(), atol=1e-6)


def test_npl_reports_non_convergence_where_the_equilibrium_is_unstable():
    """theta_RN = 2.5: the MPE is unstable under best responses (spectral radius 1.16); NPL does
    not converge and says so, the maximum-likelihood estimator does."""
    config = {"type": "entry_exit", "theta_rn": 2.5}
    market = make_market(config)
    eq = cached_mpe(market)["equilibria"][0]
    assert not eq.stable
    panel = simulate(market, eq.ccp, markets=20_000, periods=1, seed=3)
    result = estimate(config, panel, method="npl")
    assert not result.converged and result.iterations == 100 and "did not converge" in result.summary()
    mle = estimate(config, panel, method="mle")
    assert mle.converged
    assert abs(mle.params["theta_rn"] - 2.5) < 3 * mle.bse["theta_rn"]


@pytest.mark.slow
def test_analytic_standard_errors_agree_with_the_monte_carlo_spread():
    """PSD game (scrap value fixed, as in Pesendorfer and Schmidt-Dengler), 3000 markets: the
    inverse information's SEs against the spread of 20 replications (robust: interquartile)."""
    from scipy import stats

    config = {"type": "psd_entry"}
    market = make_market(config)
    eq = cached_mpe(market)["equilibria"][0]
    estimates, ses = [], []
    for r in range(20):
        panel = simulate(market, eq.ccp, markets=3000, periods=1, seed=100 + r)
        result = estimate(config, panel, method="mle", fix={"scrap_value": 0.1})
        estimates.append(result.params.to_numpy())
        ses.append(result.bse.to_numpy())
    spread = stats.iqr(np.array(estimates), axis=0) / 1.349
    ratio = spread / np.array(ses).mean(0)
    assert ((ratio > 0.6) & (ratio < 1.7)).all(), ratio


def test_psd_entry_cost_and_scrap_value_are_not_separately_identified():
    config = {"type": "psd_entry"}
    market = make_market(config)
    panel = simulate(market, cached_mpe(market)["equilibria"][0].ccp, markets=2000, periods=1, seed=0)
    with pytest.raises(ConfigError, match="entry_cost, scrap_value: not identified"):
        estimate(config, panel, method="two_step")
    assert estimate(config, panel, method="two_step", fix={"scrap_value": 0.1}).converged


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda df: df.drop(columns="market_size"), "missing column 'market_size'"),
        (lambda df: df[df["market"] == 0], "one market only"),
        (lambda df: df.assign(action=np.where(df["firm"] == 2, 0, df["action"])), "firm 2 always chooses"),
        (lambda df: df.assign(market_size=df["market_size"] + 9), "panel.market_size"),
    ],
)
def test_panels_that_cannot_be_estimated_are_refused(am_panel, mutate, match):
    with pytest.raises(ConfigError, match=match):
        estimate(AM1, mutate(am_panel.head(5000)), method="two_step")


def test_bad_fix_and_method_are_refused(am_panel):
    with pytest.raises(ConfigError, match="--fix theta_xx"):
        estimate(AM1, am_panel, fix={"theta_xx": 1.0})
    with pytest.raises(ConfigError, match="--method"):
        estimate(AM1, am_panel.head(5000), method="gmm")


def test_estimate_cli_writes_the_table(ray_session, tmp_path, capsys):
    from nashrl.cli import main

    panel = tmp_path / "p.parquet"
    assert (
        main(
            [
                "simulate",
                "configs/entry_exit.yaml",
                "--markets",
                "3000",
                "--periods",
                "2",
                "--out",
                str(panel),
                "--set",
                "market.theta_rn=1.0",
            ]
        )
        == 0
    )
    out = tmp_path / "est.csv"
    base = ["estimate", "configs/entry_exit.yaml", str(panel), "--method", "two_step", "--set", "market.theta_rn=1.0"]
    code = main([*base, "--fix", "theta_rs=1.0", "--csv", str(out)])
    assert code == 0
    import pandas as pd

    table = pd.read_csv(out, index_col=0)
    assert "theta_rs" not in table.index and list(table.columns)[:2] == ["estimate", "std_err"]
    assert table.loc["theta_rn", "true"] == 1.0
    assert "fixed: theta_rs = 1" in capsys.readouterr().out
    # --bootstrap: standard errors from markets resampled B times (here 3), in parallel over Ray
    code = main([*base, "--bootstrap", "3", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["se_method"] == "bootstrap over markets, 3 replications, parallel over Ray"
    assert all(c["std_err"] > 0 for c in out["coefficients"])
    assert next(c for c in out["coefficients"] if c["coefficient"] == "theta_rn")["true"] == 1.0


def test_bootstrap_over_ray_equals_the_serial_bootstrap(ray_session, am_panel):
    """The resamples are drawn in the driver, so where the replications run changes nothing."""
    from nashrl.inverse import bootstrap, estimate

    panel = am_panel[am_panel["market"] < 3000]
    serial = bootstrap(estimate(AM1, panel, method="two_step"), AM1, panel, 4, seed=3, parallel=False)
    parallel = bootstrap(estimate(AM1, panel, method="two_step"), AM1, panel, 4, seed=3, parallel=True)
    np.testing.assert_allclose(parallel.cov, serial.cov, rtol=1e-10)
    assert (np.diag(serial.cov) > 0).all() and parallel.se_method.endswith("parallel over Ray")


@pytest.mark.slow
def test_montecarlo_runs_over_ray_resumes_and_tabulates(ray_session, tmp_path):
    import json

    from nashrl.config import load_config
    from nashrl.inverse.montecarlo import run_montecarlo

    config = load_config("configs/entry_exit.yaml", ["market.theta_rn=1.0"])
    out = tmp_path / "mc"
    run_montecarlo(config, 2, 1600, out, methods=["two_step"])
    with pytest.raises(ConfigError, match="--resume"):
        run_montecarlo(config, 3, 1600, out, methods=["two_step"])
    path = run_montecarlo(config, 3, 1600, out, methods=["two_step"], resume=True)
    rows = [json.loads(line) for line in (out / "replications.jsonl").read_text().splitlines()]
    assert sorted(r["seed"] for r in rows) == [0, 1, 2]  # seeds 0, 1 kept, 2 added
    table = json.loads((out / "montecarlo.json").read_text())["table"]["two_step"]
    assert table["replications"] == 3 and table["converged"] + table["not_converged"] == 3
    estimates = [r["results"]["two_step"]["params"]["theta_rs"] for r in rows]
    c = table["coefficients"]["theta_rs"]
    assert c["mean"] == pytest.approx(np.mean(estimates)) and c["bias"] == pytest.approx(np.mean(estimates) - 1.0)
    assert c["mse"] == pytest.approx(c["bias"] ** 2 + np.std(estimates) ** 2)
    assert "| theta_rn | 1 |" in path.read_text()

    # another design is refused by name; a method the log lacks runs on the logged seeds' panels
    with pytest.raises(ConfigError, match="markets=1600"):
        run_montecarlo(config, 3, 2000, out, methods=["two_step"], resume=True)
    before = (out / "replications.jsonl").read_text()
    run_montecarlo(config, 2, 1600, out, methods=["two_step", "npl"], resume=True, workers=1)
    added = (out / "replications.jsonl").read_text()[len(before) :].splitlines()
    assert sorted(json.loads(line)["seed"] for line in added) == [0, 1]  # only the missing method ran
    assert all(set(json.loads(line)["results"]) == {"npl"} for line in added)
    table = json.loads((out / "montecarlo.json").read_text())["table"]
    assert table["npl"]["replications"] == 2 and table["two_step"]["replications"] == 2  # seeds 0..R-1
    logged = (out / "replications.jsonl").read_text()
    run_montecarlo(config, 3, 1600, out, tabulate=True)  # runs nothing: each method over the seeds it has
    assert (out / "replications.jsonl").read_text() == logged
    table = json.loads((out / "montecarlo.json").read_text())["table"]
    assert (table["two_step"]["replications"], table["npl"]["replications"]) == (3, 2)


def test_montecarlo_resume_reads_every_line_of_a_seed_and_refuses_an_unknown_design(tmp_path):
    import json

    from nashrl.config import load_config
    from nashrl.inverse.montecarlo import read_log, run_montecarlo

    log = tmp_path / "replications.jsonl"
    log.write_text('{"seed": 0, "results": {"a": {"x": 1}}}\n{"seed": 0, "results": {"b": {"x": 2}}}\n')
    assert read_log(log) == {0: {"seed": 0, "results": {"a": {"x": 1}, "b": {"x": 2}}}}
    log.write_text('{"results": {}}\n')
    with pytest.raises(ConfigError, match="line 1 is not a replication"):
        read_log(log)
    log.write_text('{"seed": 0, "results": {}}\n')  # a log without its design
    config = load_config("configs/entry_exit.yaml", ["market.theta_rn=1.0"])
    with pytest.raises(ConfigError, match="has no design.json"):
        run_montecarlo(config, 1, 1600, tmp_path, methods=["two_step"], resume=True)
    with pytest.raises(ConfigError, match="--tabulate: .* holds no replications.jsonl"):
        run_montecarlo(config, 1, 1600, tmp_path / "empty", tabulate=True)
    (tmp_path / "design.json").write_text(json.dumps({"market": dict(config["market"]), "markets": 1600}))
    with pytest.raises(ConfigError, match="periods=None"):
        run_montecarlo(config, 1, 1600, tmp_path, methods=["two_step"], resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["design.json", "replications.jsonl"]  # nothing written
