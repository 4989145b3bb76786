"""Experiment configs: every bad value is refused before Ray starts, naming its key."""

import json

import pytest
import yaml

from nashrl.cli import main
from nashrl.config import load_config, validate
from nashrl.markets.validation import ConfigError


def write(tmp_path, config):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


BASE = {"market": {"type": "cournot", "memory": 0}, "algorithm": {"name": "nash_q"}}


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"algorithm": {"name": "ppo"}}, "algorithm.name"),
        ({"algorithm": {"name": "nash_q", "lr_schedule": 3}}, "algorithm.lr_schedule"),
        ({"algorithm": {"name": "nash_q", "selection": "best"}}, "algorithm.selection"),
        ({"algorithm": {"name": "nash_q", "hiddens": [0]}}, "algorithm.hiddens"),
        ({"algorithm": {"name": "nash_q", "gamma": 1.5}}, "algorithm.gamma"),
        ({"algorithm": {"name": "nash_q", "epsilon": [[10, 1.0], [5, 0.1]]}}, "algorithm.epsilon"),
        ({"algorithm": {"name": "nash_q", "tau": 0}}, "algorithm.tau"),
        ({"algorithm": {"name": "nash_q", "sampler": "fast"}}, "algorithm.sampler"),
        ({"algorithm": {"name": "nash_q", "prioritized_replay_alpha": -0.5}}, "algorithm.prioritized_replay_alpha"),
        ({"algorithm": {"name": "nash_q", "selection": "risk"}}, "algorithm.selection"),
        ({"algorithm": {"name": "nash_q", "prioritized_replay_beta": 1.5}}, "algorithm.prioritized_replay_beta"),
        ({"algorithm": {"name": "independent_dqn", "prioritized_replay_eps": 0}}, "algorithm.prioritized_replay_eps"),
        ({"algorithm": {"name": "dqn", "hiddens": "big"}}, "algorithm.hiddens"),
        ({"algorithm": {"name": "dqn", "alpha": 0.1}}, "algorithm.alpha"),
        ({"algorithm": {"name": "tabular_q", "alpha": 2}}, "algorithm.alpha"),
        ({"market": {"type": "capacity"}, "algorithm": {"name": "tabular_q"}}, "algorithm.name"),
        ({"run": {"stop": {"episodes": 3}}}, "run.stop"),
        ({"run": {"stop": {"env_steps": -1}}}, "run.stop.env_steps"),
        ({"run": {"num_env_runners": -1}}, "run.num_env_runners"),
        ({"run": {"gpus": 1}}, "run"),
        ({"extra": {}}, "config"),
        ({"market": {"type": "cournot", "b": 0}}, "market.b"),
        ({"tune": {"search_space": {"lr": {"normal": [0, 1]}}}}, "tune.search_space.lr"),
        ({"tune": {"search_space": {"selection": {"choice": ["pareto", "nope"]}}}}, "tune.search_space.selection"),
        ({"tune": {"num_samples": 0}}, "tune.num_samples"),
    ],
)
def test_bad_values_name_their_key(tmp_path, patch, message):
    config = {**BASE, **patch}
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, config))
    assert str(err.value).startswith(message), str(err.value)


def test_overrides_and_defaults(tmp_path):
    config = load_config(write(tmp_path, BASE), ["algorithm.lr=0.01", "market.n_firms=3", "run.stop={iterations: 2}"])
    assert config["algorithm"]["lr"] == 0.01 and config["market"]["n_firms"] == 3
    assert config["run"]["stop"] == {"iterations": 2} and config["run"]["seed"] == 0
    with pytest.raises(ConfigError, match="--set"):
        load_config(write(tmp_path, BASE), ["algorithm.lr"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("market: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_cli_reports_config_errors_without_starting_ray(tmp_path, capsys, monkeypatch):
    """The error comes before Ray is touched (whether or not an earlier test started Ray)."""
    import ray

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for an invalid config")

    monkeypatch.setattr(ray, "init", no_ray)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # so init_ray would call ray.init
    path = write(tmp_path, {**BASE, "algorithm": {"name": "nash_q", "selection": "best"}})
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "algorithm.selection" in err


def test_every_shipped_config_is_valid_and_has_theory(capsys):
    from pathlib import Path

    from nashrl.experiments import expand, load_suite

    configs = sorted(Path("configs").glob("*.yaml"))
    assert configs
    for path in configs:
        config = load_config(path)
        assert validate(config)["algorithm"]["name"]
    suites = sorted(Path("configs/experiments").glob("*.yaml"))
    assert suites
    for path in suites:  # every run of every shipped suite expands to a valid config
        suite = load_suite(path)
        assert all(validate(c) for exp in suite["experiments"] for c in expand(suite, exp))
    assert main(["theory", "configs/cournot_duopoly.yaml", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    nash = next(r for r in out["benchmarks"] if r["concept"] == "nash")
    assert nash["actions"] == [3.0, 3.0] and nash["profits"] == [9.0, 9.0]


def test_one_discount_unless_a_mismatch_is_asked_for(tmp_path):
    market = {"type": "cournot", "memory": 0, "discount": 0.8}
    config = validate({"name": "d", "market": market, "algorithm": {"name": "nash_q"}})
    assert config["algorithm"]["gamma"] == 0.8  # learning discount defaults to the market's
    with pytest.raises(ConfigError, match=r"^algorithm.gamma: 0.9 differs from market.discount 0.8"):
        validate({"name": "d", "market": market, "algorithm": {"name": "nash_q", "gamma": 0.9}})
    chosen = validate(
        {"name": "d", "market": market, "algorithm": {"name": "tabular_q", "gamma": 0.9, "discount_mismatch": True}}
    )
    assert chosen["algorithm"]["gamma"] == 0.9
    with pytest.raises(ConfigError, match="^algorithm.discount_mismatch"):
        validate({"name": "d", "market": market, "algorithm": {"name": "nash_q", "discount_mismatch": "yes"}})


def test_substitutability_is_not_a_discount(tmp_path):
    from nashrl.markets import make_market

    assert make_market({"type": "linear_bertrand", "substitutability": 0.3}).gamma == 0.3
    assert make_market({"type": "linear_bertrand", "gamma": 0.3}).gamma == 0.3  # the old name still works
    with pytest.raises(ConfigError, match="^market.substitutability: give substitutability or"):
        make_market({"type": "linear_bertrand", "gamma": 0.3, "substitutability": 0.3})


def test_switching_algorithm_on_a_nash_q_config_maps_the_shared_settings():
    """`--set algorithm.name=dqn` on a Nash-Q config: Nash-Q-only keys (selection, ...) are not
    forwarded to DQN, the shared ones (lr, gamma, network, exploration, batch) are kept."""
    written = load_config("configs/cournot_duopoly.yaml")["algorithm"]
    dqn = load_config("configs/cournot_duopoly.yaml", ["algorithm.name=dqn", "algorithm.lr=0.01"])["algorithm"]
    assert dqn["name"] == "dqn" and "selection" not in dqn and "updates_per_iteration" not in dqn
    assert dqn["gamma"] == written["gamma"] == 0.5 and dqn["hiddens"] == written["hiddens"]
    assert dqn["epsilon"] == written["epsilon"] and dqn["lr"] == 0.01  # later overrides still apply
    tab = load_config("configs/cournot_duopoly.yaml", ["algorithm.name=tabular_q"])["algorithm"]
    assert tab["name"] == "tabular_q" and tab["gamma"] == 0.5 and "hiddens" not in tab
    with pytest.raises(ConfigError, match="^algorithm.name"):
        load_config("configs/cournot_duopoly.yaml", ["algorithm.name=ppo"])
    idqn = load_config("configs/cournot_duopoly.yaml", ["algorithm.name=independent_dqn"])["algorithm"]
    assert idqn["name"] == "independent_dqn" and "selection" not in idqn and "equilibrium_search" not in idqn
    same = ("lr", "gamma", "hiddens", "epsilon", "updates_per_iteration", "train_batch_size", "td_error_loss_fn")
    assert all(idqn.get(k) == written.get(k) for k in same)  # Nash-Q's network, replay ratio and schedules


@pytest.mark.parametrize(
    "setting, message",
    [
        ("algorithm.selection=pareto", r"algorithm.selection: expected unset \(independent learners select"),
        ("algorithm.solution_concept=correlated", "algorithm.solution_concept: expected"),
        ("algorithm.q_head=joint", "algorithm.q_head: expected"),
    ],
)
def test_independent_dqn_refuses_equilibrium_settings(setting, message):
    base = ["algorithm.name=independent_dqn"]
    with pytest.raises(ConfigError, match=message):
        load_config("configs/cournot_duopoly.yaml", [*base, setting])
