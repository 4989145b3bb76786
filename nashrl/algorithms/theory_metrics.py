"""The comparison with theory inside RLlib: ``eval/*`` entries in every training result.

:class:`TheoryMetrics` (an ``RLlibCallback``, on by default for ``NashQConfig`` and the DQN
baseline) plays the greedy joint policy in its market every ``every`` iterations and adds
the scalar comparisons of :func:`nashrl.analysis.evaluation.scalar_metrics` (grid steps to
Nash or SPE, stage / one-step / dynamic Nash gaps, profit gain Delta, MPE investment gap)
to the result under ``eval``; between evaluations the last values are repeated, so every
result carries them and Tune can search on, say, ``eval/max_grid_steps_to_nash``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback

from nashrl.threads import set_thread_budget

#: ``config.nashrl_eval`` defaults: evaluate every 25 iterations, simulate 50 periods in random markets.
DEFAULT_EVAL = {"every": 25, "steps": 50}


def eval_spec(config) -> dict[str, int]:
    """How often and how long to compare with theory: ``config.nashrl_eval`` over the defaults."""
    return {**DEFAULT_EVAL, **(getattr(config, "nashrl_eval", None) or {})}


def market_state(runner) -> list | None:
    """The current market state of an env runner's first env copy (None when it has no env or
    has not played yet)."""
    vector = getattr(runner, "vector", None)  # the vectorised runner's copies
    if vector is not None:
        return None if vector.states is None else np.asarray(vector.states[0]).tolist()
    try:
        state = runner.env.envs[0].unwrapped.market.state_
    except AttributeError:
        return None
    return None if state is None else np.asarray(state).tolist()


def final_state(algorithm) -> list | None:
    """The market state reached by the first env runner's first env copy (None if not available)."""
    group = algorithm.env_runner_group
    remote = group.num_remote_env_runners() > 0
    states = group.foreach_env_runner(market_state, local_env_runner=not remote)
    return next((s for s in states if s is not None), None)


def greedy_policy(algorithm, market):
    """The greedy joint policy of a Nash-Q or independent-DQN algorithm."""
    from nashrl.algorithms.nash_q import MODULE_ID
    from nashrl.algorithms.policies import IndependentPolicy, NashQPolicy

    if MODULE_ID in algorithm.config.policies:
        return NashQPolicy(algorithm.get_module(MODULE_ID))
    agents = list(market.possible_agents)
    return IndependentPolicy({a: algorithm.get_module(a) for a in agents}, agents)


def theory_metrics(algorithm) -> dict[str, float]:
    from nashrl.analysis.evaluation import scalar_metrics, summarize
    from nashrl.markets import market_from_env

    spec = eval_spec(algorithm.config)
    market = market_from_env(algorithm.config.env, algorithm.config.env_config)
    summary = summarize(
        greedy_policy(algorithm, market),
        market,
        steps=spec["steps"],
        seed=algorithm.config.seed or 0,
        start_state=final_state(algorithm),
    )
    # The whole summary too, so a run whose last iteration was evaluated reuses it (nashrl.train).
    algorithm._nashrl_summary = {"steps": spec["steps"], "seed": algorithm.config.seed or 0, "summary": summary}
    return {key.split("/", 1)[1]: value for key, value in scalar_metrics(summary).items()}


class TheoryMetrics(RLlibCallback):
    """Also sets each process's thread budget (:mod:`nashrl.threads`): the algorithm's process
    (learner, solver) gets ``num_cpus_for_main_process`` threads, every remote env runner
    ``num_cpus_per_env_runner``."""

    def on_algorithm_init(self, *, algorithm, **kwargs) -> None:
        set_thread_budget(algorithm.config.num_cpus_for_main_process)

    def on_environment_created(self, *, env_runner, **kwargs) -> None:
        if (env_runner.worker_index or 0) > 0:  # a remote env runner (the local one is the driver)
            set_thread_budget(env_runner.config.num_cpus_per_env_runner)

    def on_episode_end(self, *, episode, metrics_logger=None, **kwargs) -> None:
        """Each firm's mean per-period profit (in money, not the scaled reward) over the episode."""
        if metrics_logger is None:
            return
        for agent_id, agent_episode in getattr(episode, "agent_episodes", {}).items():
            profits = [
                info["profit"] for info in agent_episode.get_infos() if isinstance(info, dict) and "profit" in info
            ]
            if profits:
                metrics_logger.log_value(f"mean_profit/{agent_id}", float(np.mean(profits)), window=20)

    def on_train_result(self, *, algorithm, metrics_logger=None, result: dict[str, Any], **kwargs) -> None:
        every = eval_spec(algorithm.config)["every"]
        if not every:
            return
        iteration = int(result.get("training_iteration", 0))
        last = getattr(algorithm, "_nashrl_eval", None)
        if last is None or iteration % every == 0:
            last = {**theory_metrics(algorithm), "iteration": iteration}
            algorithm._nashrl_eval = last
            algorithm._nashrl_summary["iteration"] = iteration
        result["eval"] = {k: v for k, v in last.items() if k != "iteration"}
        result["eval_iteration"] = last["iteration"]  # when these were measured (Tune sees them every result)
