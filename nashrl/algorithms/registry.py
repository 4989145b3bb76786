"""Algorithm names -> settings checks and trainers; the one place the CLI dispatches on.

- ``nash_q``: Deep Nash-Q on RLlib (:mod:`nashrl.algorithms.nash_q`).
- ``dqn``: independent learners, RLlib's own DQN, one module per firm.
- ``tabular_q``: tabular independent Q-learning (Calvano et al. 2020).
- ``tabular_nash_q``: tabular Nash-Q (Hu and Wellman 2003).
"""

from __future__ import annotations

from typing import Any


def validate_settings(name: str, settings: dict[str, Any]) -> list[str]:
    """Messages ``"key: expected ..."`` for every invalid setting of algorithm ``name``."""
    if name == "nash_q":
        from nashrl.algorithms.nash_q.config import NashQConfig, nash_q_errors

        config = NashQConfig()
        try:
            config.training(**settings)
        except TypeError as err:
            return [f"{_unknown_key(err, settings)}: unknown Nash-Q setting"]
        return nash_q_errors(config)
    if name == "dqn":
        from nashrl.algorithms.baselines.dqn import dqn_errors

        return dqn_errors(settings)
    from nashrl.algorithms.baselines.tabular import tabular_errors

    return tabular_errors(name, settings)


def _unknown_key(err: TypeError, settings: dict[str, Any]) -> str:
    text = str(err)
    for key in settings:
        if f"'{key}'" in text:
            return key
    return text


def build_trainer(config: dict[str, Any]):
    """A trainer (``train()``, ``save()``, ``restore()``, ``policy()``, ``stop()``) for the config."""
    name = config["algorithm"]["name"]
    if name in ("nash_q", "dqn"):
        from nashrl.algorithms.rllib_trainer import RLlibTrainer

        return RLlibTrainer(config)
    from nashrl.algorithms.baselines.tabular import TabularTrainer

    return TabularTrainer(config)
