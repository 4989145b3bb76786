"""``NashQConfig``: the settings of Deep Nash-Q, in RLlib's ``AlgorithmConfig`` style."""

from __future__ import annotations

import math
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from nashrl.equilibrium import CONCEPTS, SEARCHES, SELECTIONS
from nashrl.markets.validation import is_int, is_real

EXPLORATIONS = ("epsilon", "boltzmann")


def schedule_ok(value: Any, low: float = 0.0, high: float = math.inf) -> bool:
    """A finite number in ``[low, high]``, or ``[[step, value], ...]`` with increasing
    integer steps >= 0 and values in ``[low, high]``."""
    if is_real(value):
        return low <= value <= high
    if isinstance(value, (list, tuple)) and value:
        return all(
            isinstance(p, (list, tuple))
            and len(p) == 2
            and is_real(p[0])
            and p[0] >= 0
            and is_real(p[1])
            and low <= p[1] <= high
            for p in value
        ) and all(a[0] < b[0] for a, b in zip(value, value[1:]))
    return False


def hiddens_ok(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) <= MAX_LAYERS and all(is_int(h, 1, MAX_WIDTH) for h in value)


MAX_LAYERS, MAX_WIDTH = 16, 8192
#: RLlib settings nashrl passes on for Deep Nash-Q; any other key is refused, not forwarded.
RLLIB_KEYS = ("lr", "gamma", "train_batch_size", "rollout_fragment_length", "grad_clip")


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
    replay in checkpoints, so a resumed run samples the same data; default ``"auto"``: when
    the filled buffer is under 256 MiB); plus RLlib's ``lr``
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
        self.store_buffer_in_checkpoints = "auto"

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
    """Every invalid Nash-Q setting, each naming its key and what was expected (type-safe)."""
    errors = []
    if not hiddens_ok(config.hiddens):
        errors.append(
            f"hiddens: expected a list of at most {MAX_LAYERS} integers in [1, {MAX_WIDTH}], got {config.hiddens!r}"
        )
    for key, allowed in (
        ("solution_concept", CONCEPTS),
        ("selection", SELECTIONS),
        ("solver_backend", ("auto", "torch", "numba")),
        ("equilibrium_search", SEARCHES),
        ("exploration", EXPLORATIONS),
        ("td_error_loss_fn", ("huber", "mse")),
    ):
        value = getattr(config, key)
        if not isinstance(value, str) or value not in allowed:
            errors.append(f"{key}: expected one of {allowed}, got {value!r}")
    if not schedule_ok(config.lr) or config.lr == 0:
        errors.append(f"lr: expected a finite positive number or [[env_step, lr], ...], got {config.lr!r}")
    if not schedule_ok(config.epsilon, 0.0, 1.0):
        errors.append(f"epsilon: expected a probability in [0, 1] or [[env_step, value], ...], got {config.epsilon!r}")
    if not schedule_ok(config.temperature):
        errors.append(
            f"temperature: expected a finite number >= 0 or [[env_step, value], ...], got {config.temperature!r}"
        )
    for key, minimum in (
        ("target_network_update_freq", 1),
        ("train_batch_size", 1),
        ("updates_per_iteration", 1),
        ("num_steps_sampled_before_learning_starts", 0),
    ):
        if not is_int(getattr(config, key), minimum):
            errors.append(f"{key}: expected an integer >= {minimum}, got {getattr(config, key)!r}")
    if not is_int(config.rollout_fragment_length, 1):
        errors.append(f"rollout_fragment_length: expected an integer >= 1, got {config.rollout_fragment_length!r}")
    if not (is_real(config.tau) and 0 < config.tau <= 1):
        errors.append(f"tau: expected a number in (0, 1], got {config.tau!r}")
    if not is_int(config.replay_capacity, 1) or (
        is_int(config.train_batch_size, 1) and config.replay_capacity < config.train_batch_size
    ):
        errors.append(f"replay_capacity: expected an integer >= train_batch_size, got {config.replay_capacity!r}")
    if not (is_real(config.gamma) and 0 <= config.gamma < 1):
        errors.append(f"gamma: expected a discount in [0, 1), got {config.gamma!r}")
    if not isinstance(config.double_q, bool):
        errors.append(f"double_q: expected true or false, got {config.double_q!r}")
    if not (isinstance(config.store_buffer_in_checkpoints, bool) or config.store_buffer_in_checkpoints == "auto"):
        errors.append(
            f"store_buffer_in_checkpoints: expected true, false or 'auto', got {config.store_buffer_in_checkpoints!r}"
        )
    if config.grad_clip is not None and not (is_real(config.grad_clip) and config.grad_clip > 0):
        errors.append(f"grad_clip: expected a finite positive number or null, got {config.grad_clip!r}")
    return errors


def _nash_q_class():
    from nashrl.algorithms.nash_q.algorithm import NashQ

    return NashQ
