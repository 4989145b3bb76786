"""The trainer behind ``nashrl train`` for RLlib algorithms (Deep Nash-Q, independent DQN on Nash-Q's
machinery, RLlib's DQN)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)

from nashrl.algorithms.theory_metrics import TheoryMetrics, final_state, greedy_policy
from nashrl.config import NASH_Q_MACHINERY, algorithm_settings
from nashrl.markets import make_market
from nashrl.ray_session import remove_logdir, rllib_logdir
from nashrl.threads import default_learner_threads

LEARNER_KEYS = (
    "td_loss",
    "qf_loss",
    "solver_unsolved",
    "solver_mean_equilibria",
    "solver_max_gap",
    "solver_seconds",
    "q_taken_mean",
    "non_finite_updates",
)


def rllib_resources(run: dict[str, Any]) -> dict[str, Any]:
    return {k: run[k] for k in ("seed", "num_env_runners", "num_envs_per_env_runner")}


def algorithm_config(config: dict[str, Any], trials: bool = False):
    """The RLlib ``AlgorithmConfig`` of an experiment config (``nash_q`` or ``dqn``); ``trials``:
    for Tune, where concurrent trials share the machine (one learner thread each by default)."""
    name = config["algorithm"]["name"]
    settings = algorithm_settings(config["algorithm"])
    if name == "independent_dqn":  # Nash-Q's machinery with each firm's Q over its own actions
        settings["q_head"] = "independent"
    if name in NASH_Q_MACHINERY:
        from nashrl.algorithms.nash_q import NashQConfig
        from nashrl.markets import register_rllib_envs, rllib_env_name

        register_rllib_envs()
        run = config["run"]
        algo = (
            NashQConfig()
            .environment(rllib_env_name(config["market"]["type"]), env_config=dict(config["market"]))
            .env_runners(num_env_runners=run["num_env_runners"], num_envs_per_env_runner=run["num_envs_per_env_runner"])
            .training(**settings)
            .debugging(seed=run["seed"])
        )
    else:
        from nashrl.algorithms.baselines.dqn import dqn_config

        algo = dqn_config(config["market"], settings, rllib_resources(config["run"])).callbacks(TheoryMetrics)
    default = 1 if trials else default_learner_threads(config["run"]["num_env_runners"])
    threads = config["run"].get("learner_threads") or default
    algo.resources(num_cpus_for_main_process=threads)  # the learner's thread budget (nashrl.threads)
    # The comparison with theory runs inside RLlib (eval/* in every result), and checkpoints
    # written by Tune carry the experiment for `nashrl evaluate`.
    algo.nashrl_eval = {"every": config["run"]["eval_every"], "steps": config["run"]["evaluation_steps"]}
    algo.nashrl_experiment = copy.deepcopy(config)
    return algo


def flatten_result(result: dict[str, Any]) -> dict[str, float]:
    runners = result.get(ENV_RUNNER_RESULTS, {})
    out = {
        "iteration": result.get("training_iteration", 0),
        "env_steps": float(runners.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0) or 0),
    }
    if result.get("eval_iteration") == out["iteration"]:  # logged where measured, not where repeated
        for key, value in (result.get("eval") or {}).items():  # TheoryMetrics
            out[f"eval/{key}"] = float(value)
    for key, value in runners.items():  # per-firm mean profit per period over the last episodes
        if key.startswith("mean_profit/") and math.isfinite(float(value)):  # (none ended yet: not logged)
            out[f"{key.split('/', 1)[1]}/mean_profit"] = float(value)
    for key in ("replay_size", "exploration"):
        if key in result:
            out[key] = float(result[key])
    if EPISODE_RETURN_MEAN in runners and math.isfinite(float(runners[EPISODE_RETURN_MEAN])):
        out["episode_return_mean"] = float(runners[EPISODE_RETURN_MEAN])
    for module_id, metrics in (result.get(LEARNER_RESULTS) or {}).items():
        if not isinstance(metrics, dict):
            continue
        for key in LEARNER_KEYS:
            if key in metrics:
                out[f"{module_id}/{key}"] = float(metrics[key])
    return out


class RLlibTrainer:
    #: eval/* comes with every result (TheoryMetrics): the training loop does not evaluate itself.
    reports_theory = True

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.name = config["algorithm"]["name"]
        with rllib_logdir() as self._logdir:  # not ~/ray_results/<stamp>
            self.algo = algorithm_config(config).build_algo()

    def train(self) -> dict[str, float]:
        return flatten_result(self.algo.train())

    def save(self, path: Path) -> None:
        self.algo.save_to_path(str(Path(path).resolve()))

    def restore(self, path: Path) -> None:
        self.algo.restore_from_path(str(Path(path).resolve()))

    def final_state(self) -> list | None:
        """The market state reached by the first env runner's first env copy (None if not available)."""
        return final_state(self.algo)

    def policy(self):
        return greedy_policy(self.algo, make_market(self.config["market"]))

    def last_evaluation(self, steps: int, seed: int) -> tuple[int, dict[str, Any]] | None:
        """(iteration, summary) of the latest in-training evaluation (:class:`TheoryMetrics`) if it
        used these evaluation ``steps`` and ``seed``; None otherwise."""
        last = getattr(self.algo, "_nashrl_summary", None)
        if last is None or "iteration" not in last or (last["steps"], last["seed"]) != (steps, seed):
            return None
        return last["iteration"], last["summary"]

    def module_state(self) -> dict[str, Any]:
        """Learner-side module weights and optimizer state (what a resume must reproduce)."""
        return self.algo.learner_group.get_state(components=["learner"])

    def stop(self) -> None:
        self.algo.stop()
        remove_logdir(self._logdir)
