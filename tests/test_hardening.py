"""Regression tests built from the hardening audit (issue #8): each bad input, corruption or
crash case is refused with a one-line error naming the field, before Ray starts."""

import json
import threading

import numpy as np
import pytest
import torch
import yaml

from nashrl.checkpoints import CheckpointError
from nashrl.cli import main
from nashrl.config import load_config, validate
from nashrl.equilibrium import solve
from nashrl.markets.validation import ConfigError

BASE = {"market": {"type": "cournot", "memory": 0}, "algorithm": {"name": "nash_q"}}


def write(tmp_path, config, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "override, field",
    [
        ("algorithm.train_batch_size=0", "algorithm.train_batch_size"),
        ("algorithm.lr=.inf", "algorithm.lr"),
        ("algorithm.grad_clip=abc", "algorithm.grad_clip"),
        ("algorithm.foo=1", "algorithm.foo"),
        ("algorithm.rollout_fragment_length=0", "algorithm.rollout_fragment_length"),
        ("algorithm.rollout_fragment_length=-3", "algorithm.rollout_fragment_length"),
        ("algorithm.hiddens=[100000]", "algorithm.hiddens"),
        ("algorithm.hiddens=[8192, 8192, 8192, 8192]", "algorithm.hiddens"),  # 2e8 parameters
        ("algorithm.gamma='0.9'", "algorithm.gamma"),
        ("algorithm.train_batch_size='256'", "algorithm.train_batch_size"),
        ("algorithm.epsilon=5.0", "algorithm.epsilon"),
        ("algorithm.num_steps_sampled_before_learning_starts=-1", "algorithm.num_steps_sampled_before_learning_starts"),
        ("algorithm.double_q='yes'", "algorithm.double_q"),
        ("algorithm.equilibrium_search=all", "algorithm.equilibrium_search"),  # 13x13: 10.4M support pairs
        ("algorithm.equilibrium_search=support", "algorithm.equilibrium_search"),  # N-player search, duopoly
        ("algorithm=[1, 2]", "algorithm"),
        ("run=5", "run"),
        ("run.stop.env_steps=.nan", "run.stop.env_steps"),
        ("run.stop.env_steps=.inf", "run.stop.env_steps"),
        ("run.num_env_runners=64", "run.num_env_runners"),
        ("run.progress='no'", "run.progress"),
        ("market.n_firms=40", "algorithm.hiddens"),  # Cournot is aggregative: the joint head is refused
        ("market={type: linear_bertrand, n_firms: 40, memory: 0}", "market"),  # not aggregative: a 40-firm table
        ("market.n_firms=100000", "market.n_firms"),
        ("market.quantities={low: 0, high: 6, size: 200000}", "market.quantities.size"),
        ("market.normalise_rewards='false'", "market.normalise_rewards"),
        ("name=5", "name"),
        ("name='../../x'", "name"),
        ("name='/tmp/abs'", "name"),
        ("name='..'", "name"),
    ],
)
def test_bad_values_are_refused_before_ray(tmp_path, capsys, override, field):
    import ray

    config = write(tmp_path, {**BASE, "run": {"output_dir": str(tmp_path / "runs")}})
    with pytest.raises(ConfigError) as err:
        load_config(config, [override])
    message = str(err.value)
    assert message.startswith(field) and "\n" not in message, message
    assert main(["train", str(config), "--set", override]) == 2  # CLI: one line, exit 2
    assert capsys.readouterr().err.startswith(f"nashrl: error: {field}")
    assert not ray.is_initialized() and not (tmp_path / "runs").exists()


def test_dqn_and_tabular_settings_are_type_checked(tmp_path):
    for algo, field in (
        ({"name": "dqn", "train_batch_size": 1e400}, "algorithm.train_batch_size"),
        ({"name": "dqn", "epsilon": 2}, "algorithm.epsilon"),
        ({"name": "tabular_q", "alpha": True}, "algorithm.alpha"),
        ({"name": "tabular_q", "beta": float("inf")}, "algorithm.beta"),
    ):
        with pytest.raises(ConfigError, match=f"^{field}"):
            validate({"name": "x", **BASE, "algorithm": algo})


def test_table_and_state_caps(tmp_path):
    market = {"type": "logit_bertrand", "memory": 4}
    with pytest.raises(
        ConfigError, match=r"^market.memory: tabular_q with memory 4 needs a Q table of 7.69e\+10 entries"
    ):
        validate({"name": "x", "market": market, "algorithm": {"name": "tabular_q"}})
    with pytest.raises(ConfigError, match="^market.capacity_levels"):
        validate({"name": "x", "market": {"type": "capacity", "n_firms": 6, "capacity_levels": 15}})


def test_output_dir_under_a_file_and_non_utf8_config(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="^run.output_dir: .* which is a file"):
        load_config(write(tmp_path, {**BASE, "run": {"output_dir": str(blocker / "runs")}}))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="^config: .* is not UTF-8"):
        load_config(latin)


def test_cluster_address_that_does_not_answer(tmp_path, capsys):
    import ray

    config = write(tmp_path, {**BASE, "run": {"output_dir": str(tmp_path / "runs")}})
    assert main(["train", str(config), "--set", "run.address=127.0.0.1:1"]) == 2
    assert capsys.readouterr().err.startswith("nashrl: error: run.address: nothing answers at 127.0.0.1:1")
    assert not ray.is_initialized()


@pytest.mark.parametrize(
    "text, message",
    [
        ("experiments: [unclosed", "suite: .* is not valid YAML"),
        ("experiments: 5", "suite.experiments: expected a non-empty list"),
        ("seeds: -3\nexperiments: [{name: a, config: configs/cournot_duopoly.yaml}]", "suite.seeds"),
        (
            "experiments: [{name: a, config: configs/cournot_duopoly.yaml, seeds: [1, 1]}]",
            r"suite.experiments\[0\].seeds",
        ),
    ],
)
def test_bad_suites(tmp_path, text, message):
    from nashrl.experiments import load_suite

    path = tmp_path / "suite.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{message}"):
        load_suite(path)


def test_cli_argument_errors_exit_2_without_traceback(tmp_path):
    config = write(tmp_path, BASE)
    for argv in (["theory", str(config), "--selection", "bogus"], ["evaluate", str(tmp_path), "--steps", "0"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2


def test_strict_selection_is_refused_where_no_joint_game_is_built(capsys):
    """A market solved by best replies (10 Cournot firms) has no joint stage game to measure margins in."""
    assert main(["theory", "configs/cournot_many_firms.yaml", "--selection", "strict"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --selection: 'strict' needs the joint stage game") and "\n" not in err
    assert main(["theory", "configs/cournot_duopoly.yaml", "--selection", "strict"]) == 0


def test_run_directories_are_unique_and_exclusive(tmp_path):
    from nashrl.train import new_run_dir

    config = load_config(write(tmp_path, {**BASE, "run": {"output_dir": str(tmp_path / "runs")}}))
    made = []
    threads = [threading.Thread(target=lambda: made.append(new_run_dir(config))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 16 and all(p.parent == tmp_path / "runs" / "exp" for p in made)


def test_atomic_json_keeps_the_old_file_on_failure(tmp_path):
    from nashrl.files import write_json

    path = tmp_path / "results.json"
    write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left


def _tabular_run(tmp_path, **market):
    from nashrl.train import run_training

    config = validate(
        {
            "name": "tab",
            "market": {"type": "cournot", "memory": 1, **market},
            "algorithm": {"name": "tabular_q", "steps_per_iteration": 500, "beta": 1e-3},
            "run": {"stop": {"iterations": 3}, "output_dir": str(tmp_path), "progress": False, "evaluation_steps": 5},
        }
    )
    return config, run_training(config, quiet=True)


def test_checkpoints_are_verified_before_loading(tmp_path):
    from nashrl.analysis.report import evaluate_checkpoint

    config, summary = _tabular_run(tmp_path)
    checkpoint = summary["checkpoint"]
    assert evaluate_checkpoint(checkpoint)["summary"] == summary["evaluation"]
    # experiment.yaml edited after the run: the checkpoint's own stored config is what counts.
    run_dir = tmp_path / "tab" / summary["run_dir"].split("/")[-1]
    (run_dir / "experiment.yaml").write_text("market: {type: nonsense}\n")
    assert evaluate_checkpoint(checkpoint)["summary"] == summary["evaluation"]
    # A flipped bit in the Q table: refused, naming the file.
    q_file = tmp_path.joinpath(checkpoint, "q.npy")
    data = bytearray(q_file.read_bytes())
    data[-1] ^= 1
    q_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="q.npy .* does not match the sha256"):
        evaluate_checkpoint(checkpoint)
    data[-1] ^= 1
    q_file.write_bytes(bytes(data))
    # An extra (unlisted) pickle: refused before anything is loaded.
    (tmp_path / checkpoint / "evil.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(CheckpointError, match="unlisted"):
        evaluate_checkpoint(checkpoint)


def test_resume_names_the_differing_market_keys(tmp_path):
    from nashrl.train import run_training

    config, summary = _tabular_run(tmp_path)
    other = validate({**config, "market": {**config["market"], "a": 12}})
    with pytest.raises(CheckpointError, match=r"other settings for market\.a;"):
        run_training(other, resume=summary["checkpoint"])


def test_resume_reads_a_left_out_network_setting_as_its_default():
    from nashrl.checkpoints import shape_settings

    implicit = shape_settings({"name": "nash_q"})
    assert implicit == shape_settings(
        {"name": "nash_q", "hiddens": [64, 64], "q_head": "joint", "aggregate_knots": 33, "share_firms": False}
    )
    assert implicit != shape_settings({"name": "nash_q", "q_head": "aggregative"})
    assert implicit != shape_settings({"name": "nash_q", "hiddens": [128, 128]})
    assert shape_settings({"name": "tabular_q"})["q_head"] is None  # other algorithms: as written


def test_report_of_killed_and_torn_runs(tmp_path):
    from nashrl.analysis.report import write_report
    from nashrl.train import run_status, set_status

    _, summary = _tabular_run(tmp_path)
    run_dir = tmp_path / "tab" / summary["run_dir"].split("/")[-1]
    assert run_status(run_dir)["status"] == "complete"
    with open(run_dir / "progress.jsonl", "a") as f:
        f.write('{"iteration": 4, "env_st')  # torn by a kill
    set_status(run_dir, "running")
    text = write_report(run_dir).read_text()
    assert "is incomplete (status running)" in text
    (run_dir / "progress.jsonl").unlink()
    assert "No training progress was logged for" in write_report(run_dir).read_text()
    (run_dir / "summary.json").unlink()
    with pytest.raises(CheckpointError, match="no summary.json .status running"):
        write_report(run_dir)


def test_tabular_runs_are_reproducible(tmp_path):
    rows = []
    for k in range(2):
        _, summary = _tabular_run(tmp_path / str(k))
        log = (tmp_path / str(k) / "tab" / summary["run_dir"].split("/")[-1] / "progress.jsonl").read_text()
        rows.append([{key: v for key, v in json.loads(line).items() if key != "time_s"} for line in log.splitlines()])
    assert rows[0] == rows[1] and len(rows[0]) == 3


def test_solver_edge_cases():
    empty = solve(np.zeros((0, 2, 3, 4)))
    assert empty.values.shape == (0, 2) and empty.strategies[1].shape == (0, 4) and empty.n_unsolved == 0
    with pytest.raises(ValueError, match="payoffs: expected real numbers"):
        solve(np.ones((2, 2, 3, 3)) + 1j)
    with pytest.raises(ValueError, match="payoffs: expected real numbers"):
        solve(torch.ones(2, 2, 3, 3, dtype=torch.complex64))
    games = np.random.default_rng(0).uniform(size=(64, 2, 5, 5))
    small, huge = solve(games), solve(games * 1e200)  # scale-invariant: same equilibria, no failures
    assert huge.n_unsolved == 0
    for a, b in zip(small.strategies, huge.strategies):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-9)
    np.testing.assert_allclose(huge.values.numpy(), small.values.numpy() * 1e200, rtol=1e-9)
