"""``NashQConfig``: the settings of Deep Nash-Q, in RLlib's ``AlgorithmConfig`` style."""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from nashrl.equilibrium import CONCEPTS, SEARCHES, SELECTIONS

EXPLORATIONS = ("epsilon", "boltzmann")


def schedule_ok(value: Any) -> bool:
    """A number >= 0, or ``[[step, value], ...]`` with increasing steps and values >= 0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value >= 0
    if isinstance(value, (list, tuple)) and value:
        return all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, (int, float)) for x in p) and p[1] >= 0
            for p in value
        ) and all(a[0] < b[0] for a, b in zip(value, value[1:]))
    return False


class NashQConfig(AlgorithmConfig):
    """Deep Nash-Q settings (see :mod:`nashrl.algorithms.nash_q.learner` for the targets).

    Training keys: ``hiddens``, ``solution_concept`` (nash | correlated | maximin),
    ``selection`` (pareto | utilitarian | egalitarian | first) among the equilibria that
    ``equilibrium_search`` finds (auto | always | labels | all, see
    :func:`nashrl.equilibrium.solve`), ``solver_backend``,
    ``exploration`` (epsilon | boltzmann), ``epsilon`` and ``temperature`` (a number or
    ``[[env_step, value], ...]`` piecewise-linear schedules), ``double_q``,
    ``target_network_update_freq`` (env steps), ``tau``, ``replay_capacity``,
    ``num_steps_sampled_before_learning_starts``, ``updates_per_iteration``,
    ``td_error_loss_fn`` (huber | mse), ``store_buffer_in_checkpoints`` (keep the joint
    replay in checkpoints, so a resumed run samples the same data); plus RLlib's ``lr``
    (a number or a schedule), ``gamma``, ``train_batch_size``.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or _nash_q_class())
        self.lr = 1e-3
        self.gamma = 0.95
        self.train_batch_size = 256
        self.rollout_fragment_length = 25
        self.min_sample_timesteps_per_iteration = 0
        self.hiddens = [64, 64]
        self.solution_concept = "nash"
        self.selection = "pareto"
        self.solver_backend = "auto"
        self.equilibrium_search = "auto"
        self.exploration = "epsilon"
        self.epsilon = [(0, 1.0), (20_000, 0.02)]
        self.temperature = [(0, 1.0), (20_000, 0.01)]
        self.double_q = False
        self.target_network_update_freq = 500
        self.tau = 1.0
        self.replay_capacity = 100_000
        self.num_steps_sampled_before_learning_starts = 1_000
        self.updates_per_iteration = 1
        self.td_error_loss_fn = "huber"
        self.store_buffer_in_checkpoints = False

    def training(
        self,
        *,
        hiddens=NotProvided,
        solution_concept=NotProvided,
        selection=NotProvided,
        solver_backend=NotProvided,
        equilibrium_search=NotProvided,
        exploration=NotProvided,
        epsilon=NotProvided,
        temperature=NotProvided,
        double_q=NotProvided,
        target_network_update_freq=NotProvided,
        tau=NotProvided,
        replay_capacity=NotProvided,
        num_steps_sampled_before_learning_starts=NotProvided,
        updates_per_iteration=NotProvided,
        td_error_loss_fn=NotProvided,
        store_buffer_in_checkpoints=NotProvided,
        rollout_fragment_length=NotProvided,
        **kwargs,
    ) -> NashQConfig:
        super().training(**kwargs)
        if rollout_fragment_length is not NotProvided:
            self.env_runners(rollout_fragment_length=rollout_fragment_length)
        for key, value in dict(
            hiddens=hiddens,
            solution_concept=solution_concept,
            selection=selection,
            solver_backend=solver_backend,
            equilibrium_search=equilibrium_search,
            exploration=exploration,
            epsilon=epsilon,
            temperature=temperature,
            double_q=double_q,
            target_network_update_freq=target_network_update_freq,
            tau=tau,
            replay_capacity=replay_capacity,
            num_steps_sampled_before_learning_starts=num_steps_sampled_before_learning_starts,
            updates_per_iteration=updates_per_iteration,
            td_error_loss_fn=td_error_loss_fn,
            store_buffer_in_checkpoints=store_buffer_in_checkpoints,
        ).items():
            if value is not NotProvided:
                setattr(self, key, value)
        return self

    def validate(self) -> None:
        super().validate()
        errors = nash_q_errors(self)
        if errors:
            self._value_error("; ".join(errors))

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from nashrl.algorithms.nash_q.module import NashQTorchRLModule

        return RLModuleSpec(module_class=NashQTorchRLModule)

    def get_default_learner_class(self):
        from nashrl.algorithms.nash_q.learner import NashQTorchLearner

        return NashQTorchLearner

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return super()._model_config_auto_includes | {
            "hiddens": list(self.hiddens),
            "solution_concept": self.solution_concept,
            "selection": self.selection,
            "solver_backend": self.solver_backend,
            "equilibrium_search": self.equilibrium_search,
            "exploration": self.exploration,
            "epsilon": self.epsilon,
            "temperature": self.temperature,
        }


def nash_q_errors(config: NashQConfig) -> list[str]:
    """Every invalid Nash-Q setting, each naming its key and what was expected."""
    errors = []
    if not (isinstance(config.hiddens, (list, tuple)) and all(isinstance(h, int) and h > 0 for h in config.hiddens)):
        errors.append(f"hiddens: expected a list of positive integers, got {config.hiddens!r}")
    if config.solution_concept not in CONCEPTS:
        errors.append(f"solution_concept: expected one of {CONCEPTS}, got {config.solution_concept!r}")
    if config.selection not in SELECTIONS:
        errors.append(f"selection: expected one of {SELECTIONS}, got {config.selection!r}")
    if config.solver_backend not in ("auto", "torch", "numba"):
        errors.append(f"solver_backend: expected auto, torch or numba, got {config.solver_backend!r}")
    if config.equilibrium_search not in SEARCHES:
        errors.append(f"equilibrium_search: expected one of {SEARCHES}, got {config.equilibrium_search!r}")
    if config.exploration not in EXPLORATIONS:
        errors.append(f"exploration: expected one of {EXPLORATIONS}, got {config.exploration!r}")
    if not schedule_ok(config.lr) or config.lr == 0:
        errors.append(f"lr: expected a positive number or [[env_step, lr], ...], got {config.lr!r}")
    for key in ("epsilon", "temperature"):
        if not schedule_ok(getattr(config, key)):
            errors.append(f"{key}: expected a number >= 0 or [[env_step, value], ...] with increasing steps")
    if not (isinstance(config.target_network_update_freq, int) and config.target_network_update_freq >= 1):
        errors.append(
            f"target_network_update_freq: expected an integer >= 1, got {config.target_network_update_freq!r}"
        )
    if not (0 < config.tau <= 1):
        errors.append(f"tau: expected a number in (0, 1], got {config.tau!r}")
    if not (isinstance(config.replay_capacity, int) and config.replay_capacity >= config.train_batch_size):
        errors.append(f"replay_capacity: expected an integer >= train_batch_size, got {config.replay_capacity!r}")
    if not (isinstance(config.updates_per_iteration, int) and config.updates_per_iteration >= 1):
        errors.append(f"updates_per_iteration: expected an integer >= 1, got {config.updates_per_iteration!r}")
    if config.td_error_loss_fn not in ("huber", "mse"):
        errors.append(f"td_error_loss_fn: expected 'huber' or 'mse', got {config.td_error_loss_fn!r}")
    if not (0 <= config.gamma < 1):
        errors.append(f"gamma: expected a discount in [0, 1), got {config.gamma!r}")
    return errors


def _nash_q_class():
    from nashrl.algorithms.nash_q.algorithm import NashQ

    return NashQ
