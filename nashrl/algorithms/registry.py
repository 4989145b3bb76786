"""Algorithm names -> settings checks and trainers; the one place the CLI dispatches on.

- ``nash_q``: Deep Nash-Q on RLlib (:mod:`nashrl.algorithms.nash_q`).
- ``independent_dqn``: independent DQN learners on the same machinery (vector runner, joint
  replay, lean learner; each firm's Q over its own actions, :class:`~nashrl.algorithms.nash_q.heads.IndependentHead`):
  the like-with-like baseline, at equal gradient steps *and* equal wall time.
- ``dqn``: independent learners, RLlib's own DQN, one module per firm.
- ``tabular_q``: tabular independent Q-learning (Calvano et al. 2020).
- ``tabular_nash_q``: tabular Nash-Q (Hu and Wellman 2003).
"""

from __future__ import annotations

from typing import Any


def validate_settings(name: str, settings: dict[str, Any]) -> list[str]:
    """Messages ``"key: expected ..."`` for every invalid setting of algorithm ``name`` (typed
    schemas, :mod:`nashrl.schema`; unknown keys are refused, never forwarded to RLlib)."""
    from nashrl.schema import SETTINGS, errors

    return errors(SETTINGS[name], settings)


def build_trainer(config: dict[str, Any]):
    """A trainer (``train()``, ``save()``, ``restore()``, ``policy()``, ``stop()``) for the config."""
    from nashrl.config import RLLIB_ALGORITHMS

    name = config["algorithm"]["name"]
    if name in RLLIB_ALGORITHMS:
        from nashrl.algorithms.rllib_trainer import RLlibTrainer

        return RLlibTrainer(config)
    from nashrl.algorithms.baselines.tabular import TabularTrainer

    return TabularTrainer(config)


def baseline_settings(name: str, reference: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """Settings for baseline ``name`` matched to a Nash-Q ``reference`` algorithm section.

    Independent DQN on Nash-Q's machinery (``independent_dqn``) gets every setting of the
    reference but the equilibrium's (selection, search, solver; correlated and maximin concepts
    become ``nash``): the same network, runner, replay, replay ratio and schedules. RLlib's DQN
    gets the same discount, network, exploration schedule, batch size, target-update period and
    warm-up, and the training intensity that gives it as many gradient steps per sampling round
    as Nash-Q's ``updates_per_iteration`` (RLlib divides the intensity
    by ``batch / (fragment * envs_per_runner * (runners + 1))``); tabular learners get the
    same discount and an exploration decay :math:`e^{-\beta t}` reaching 5% around the end
    of Nash-Q's epsilon schedule.
    """
    if name == reference.get("name"):
        return dict(reference)
    if name == "independent_dqn":
        from nashrl.schema import INDEPENDENT_UNUSED

        settings = {
            k: v for k, v in reference.items() if k not in (*INDEPENDENT_UNUSED, "name", "q_head", "share_firms")
        }
        if settings.get("solution_concept") in ("correlated", "maximin"):
            settings["solution_concept"] = "nash"
        return {"name": "independent_dqn", **settings}
    gamma = reference.get("gamma", 0.95)
    schedule = reference.get("epsilon", [[0, 1.0], [20_000, 0.02]])
    horizon = schedule[-1][0] if isinstance(schedule, list) else 20_000
    if name == "dqn":
        keys = (
            "lr",
            "gamma",
            "train_batch_size",
            "hiddens",
            "epsilon",
            "target_network_update_freq",
            "num_steps_sampled_before_learning_starts",
            "rollout_fragment_length",
        )
        settings = {k: reference[k] for k in keys if k in reference}
        batch = reference.get("train_batch_size", 256)
        fragment = reference.get("rollout_fragment_length", 25)
        updates = reference.get("updates_per_iteration", 1)
        envs = run.get("num_envs_per_env_runner", 1) * (run.get("num_env_runners", 1) + 1)
        settings["training_intensity"] = max(1, round(updates * batch / (fragment * envs)))
        return {"name": "dqn", **settings}
    beta = 3.0 / max(horizon, 1)  # exp(-beta * horizon) ~ 0.05
    settings = {"name": name, "gamma": gamma, "beta": beta, "steps_per_iteration": 250, "convergence_window": 10**9}
    settings["alpha"] = 0.2 if name == "tabular_nash_q" else 0.15
    return settings
