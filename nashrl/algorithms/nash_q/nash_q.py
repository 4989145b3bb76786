"""Deep Nash-Q as an RLlib algorithm: :class:`NashQConfig` and :class:`NashQ` (RLlib's layout).

``NashQConfig().environment("nashrl/cournot", env_config={...}).build_algo()`` works as for
RLlib's own algorithms: every firm maps to the one module ``"nash_q"``, the env-to-module
connector adds the firm index, and the module's joint-action head is sized from the market
(:meth:`NashQConfig.market`). The module lives in :mod:`~nashrl.algorithms.nash_q.module`, the
equilibrium targets in :mod:`~nashrl.algorithms.nash_q.learner`.

One iteration of ``NashQ`` (``training_step``), CleanRL-plain:

1. env runners start playing ``rollout_fragment_length`` periods of their
   ``num_envs_per_env_runner`` market copies with the current weights (equilibrium play +
   exploration): remote runners in the background, while
2. the learner takes ``updates_per_iteration`` gradient steps on batches of
   ``train_batch_size`` from :class:`~nashrl.algorithms.nash_q.replay.JointTransitionBuffer`
   (equilibrium targets computed on the learner's device), in one call, once
   ``num_steps_sampled_before_learning_starts`` env steps were sampled;
3. the runners' joint transitions go into the replay (they are learned from from the next
   iteration on: sampling and learning overlap, at the cost of one iteration's delay);
4. the new weights go to the env runners.

``sampler: "vector"`` (default) plays the copies as arrays
(:mod:`~nashrl.algorithms.nash_q.vector_runner`); ``sampler: "episodes"`` uses RLlib's own
``MultiAgentEnvRunner`` and converts its ``MultiAgentEpisode`` chunks (slower, kept as the
reference the vectorised path is tested against).
"""

from __future__ import annotations

import copy
import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)

from nashrl.algorithms.nash_q.connectors import AddFirmIndex
from nashrl.algorithms.nash_q.replay import INDICES, TRAIN_COLUMNS, JointTransitionBuffer
from nashrl.algorithms.nash_q.vector_runner import VectorEnvRunner
from nashrl.algorithms.theory_metrics import DEFAULT_EVAL, TheoryMetrics, final_state
from nashrl.startup import eager_deterministic_flag, import_in_background

MODULE_ID = "nash_q"
#: RLlib settings nashrl passes on for Deep Nash-Q; any other key is refused, not forwarded.
RLLIB_KEYS = ("lr", "gamma", "train_batch_size", "rollout_fragment_length", "grad_clip")


def to_nash_q_module(agent_id, *args, **kwargs) -> str:
    """Policy mapping: every firm is played by the one shared Nash-Q module."""
    return MODULE_ID


def add_firm_index(env=None, spaces=None, device=None) -> AddFirmIndex:
    """Env-to-module connector factory (RLlib calls it on every env runner)."""
    return AddFirmIndex()


EXPLORATIONS = ("epsilon", "boltzmann")
#: How env runners play: market copies as arrays, or RLlib's MultiAgentEnvRunner with episodes.
SAMPLERS = {"vector": VectorEnvRunner, "episodes": MultiAgentEnvRunner}
SAMPLE_TAG = "nashrl_sample"


class NashQConfig(AlgorithmConfig):
    """Deep Nash-Q settings (see :mod:`nashrl.algorithms.nash_q.learner` for the targets).

    Training keys: ``hiddens``, ``q_head`` (joint | independent: each firm's Q over its own
    actions, independent DQN | aggregative: each firm's Q over its own action and its rivals'
    aggregate, for aggregative markets with many firms, its ``aggregate_knots`` where the
    aggregate is not on a shared even grid; see :mod:`~nashrl.algorithms.nash_q.heads`), ``share_firms``
    (aggregative head, exchangeable firms: one network over each firm's own view of the state), ``dueling``
    (each firm's Q as a state value plus centred advantages; not with ``share_firms``),
    ``average_weights_from`` (env steps: from then on the greedy policy, the one evaluated and
    checkpointed, reads the running mean of the online weights, Polyak-Ruppert averaging; the
    learner and exploration keep the online ones; default None: the online weights), ``solution_concept``
    (nash | correlated | maximin | logit;
    logit is soft Nash-Q for games with private extreme-value shocks, its ``logit_temperature``
    the market's shock scale in reward units unless given for a market without shocks),
    ``selection`` (pareto | utilitarian | egalitarian | first | strict, see
    :mod:`nashrl.equilibrium.selection`) among the equilibria that
    ``equilibrium_search`` finds (auto | always | labels | all, see
    :func:`nashrl.equilibrium.solve`), ``solver_backend``,
    ``exploration`` (epsilon | boltzmann), ``epsilon`` and ``temperature`` (a number or
    ``[[env_step, value], ...]`` piecewise-linear schedules), ``double_q``,
    ``target_network_update_freq`` (env steps), ``tau``, ``replay_capacity``,
    ``prioritized_replay_alpha`` (0, the default: uniform replay; > 0: proportional prioritised
    replay, :mod:`~nashrl.algorithms.nash_q.priorities`), ``prioritized_replay_beta`` (its
    importance-sampling exponent, a number or a schedule over env steps) and
    ``prioritized_replay_eps`` (added to |TD error|),
    ``num_steps_sampled_before_learning_starts``, ``updates_per_iteration``,
    ``td_error_loss_fn`` (huber | mse), ``sampler`` (vector | episodes, see the module doc),
    ``store_buffer_in_checkpoints`` (keep the joint
    replay in checkpoints, so a resumed run samples the same data; default ``"auto"``: when
    the filled buffer is under 256 MiB); plus RLlib's ``lr``
    (a number or a schedule), ``gamma``, ``train_batch_size``.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or NashQ)
        self.multi_agent(policies={MODULE_ID}, policy_mapping_fn=to_nash_q_module)
        self.env_runners(env_to_module_connector=add_firm_index, env_runner_cls=VectorEnvRunner)
        # Equilibrium targets on the driver's GPU when it has one (num_learners=0: the local learner).
        self.num_gpus_per_learner = 1 if torch.cuda.is_available() else 0
        # The learner checks gradients and the updated weights itself (NashQTorchLearner.apply_gradients).
        self.torch_skip_nan_gradients = True
        # eval/* comparisons with theory in every result (see nashrl.algorithms.theory_metrics).
        self.callbacks(TheoryMetrics)
        self.nashrl_eval = dict(DEFAULT_EVAL)
        # The nashrl experiment config this algorithm runs (set by the CLI; rebuilt from the
        # RLlib settings otherwise), written into every checkpoint's nashrl.json.
        self.nashrl_experiment = None
        self.lr = 1e-3
        self.gamma = 0.95
        self.train_batch_size = 256
        self.rollout_fragment_length = 25
        self.min_sample_timesteps_per_iteration = 0
        self.hiddens = [64, 64]
        self.q_head = "joint"
        self.aggregate_knots = 33
        self.share_firms = False
        self.dueling = False
        self.average_weights_from = None
        self.solution_concept = "nash"
        self.logit_temperature = None
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
        self.prioritized_replay_alpha = 0.0
        self.prioritized_replay_beta = 0.4
        self.prioritized_replay_eps = 1e-6
        self.num_steps_sampled_before_learning_starts = 1_000
        self.updates_per_iteration = 1
        self.td_error_loss_fn = "huber"
        self.store_buffer_in_checkpoints = "auto"
        self.sampler = "vector"

    def training(
        self,
        *,
        hiddens=NotProvided,
        q_head=NotProvided,
        aggregate_knots=NotProvided,
        share_firms=NotProvided,
        dueling=NotProvided,
        average_weights_from=NotProvided,
        solution_concept=NotProvided,
        logit_temperature=NotProvided,
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
        prioritized_replay_alpha=NotProvided,
        prioritized_replay_beta=NotProvided,
        prioritized_replay_eps=NotProvided,
        num_steps_sampled_before_learning_starts=NotProvided,
        updates_per_iteration=NotProvided,
        td_error_loss_fn=NotProvided,
        store_buffer_in_checkpoints=NotProvided,
        sampler=NotProvided,
        rollout_fragment_length=NotProvided,
        **kwargs,
    ) -> NashQConfig:
        super().training(**kwargs)
        if rollout_fragment_length is not NotProvided:
            self.env_runners(rollout_fragment_length=rollout_fragment_length)
        for key, value in dict(
            hiddens=hiddens,
            q_head=q_head,
            aggregate_knots=aggregate_knots,
            share_firms=share_firms,
            dueling=dueling,
            average_weights_from=average_weights_from,
            solution_concept=solution_concept,
            logit_temperature=logit_temperature,
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
            prioritized_replay_alpha=prioritized_replay_alpha,
            prioritized_replay_beta=prioritized_replay_beta,
            prioritized_replay_eps=prioritized_replay_eps,
            num_steps_sampled_before_learning_starts=num_steps_sampled_before_learning_starts,
            updates_per_iteration=updates_per_iteration,
            td_error_loss_fn=td_error_loss_fn,
            store_buffer_in_checkpoints=store_buffer_in_checkpoints,
            sampler=sampler,
        ).items():
            if value is not NotProvided:
                setattr(self, key, value)
        if sampler is not NotProvided and sampler in SAMPLERS:  # (an unknown one is refused by validate)
            self.env_runners(env_runner_cls=SAMPLERS[sampler])
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

    def market(self):
        """The market this config trains on, from ``env`` ("nashrl/<type>" or "nashrl/market") and ``env_config``."""
        from nashrl.markets import market_from_env

        return market_from_env(self.env, self.env_config)

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        # The joint-action head's shape comes from the market, so a plain
        # NashQConfig().environment("nashrl/cournot", ...) needs no module spec.
        market = self.market() if self.env is not None else None
        sizes = {"action_sizes": list(market.action_sizes), "public_size": market.public_size} if market else {}
        return (
            super()._model_config_auto_includes
            | sizes
            | {
                "logit_temperature": resolved_logit_temperature(self, market),
                "hiddens": list(self.hiddens),
                "q_head": self.q_head,
                "dueling": self.dueling,
                "average_weights_from": self.average_weights_from,
                **aggregation_entry(self, market),
                "solution_concept": self.solution_concept,
                "selection": self.selection,
                "solver_backend": self.solver_backend,
                "equilibrium_search": self.equilibrium_search,
                "exploration": self.exploration,
                "epsilon": self.epsilon,
                "temperature": self.temperature,
            }
        )


def nash_q_errors(config: NashQConfig) -> list[str]:
    """Every invalid Nash-Q setting of a config, each naming its key (the typed schema
    :class:`nashrl.schema.NashQSettings`, then the logit concept against the market)."""
    from nashrl.schema import INDEPENDENT_UNUSED, IndependentDQNSettings, NashQSettings, errors, plain

    schema = IndependentDQNSettings if config.q_head == "independent" else NashQSettings
    values = {key: plain(getattr(config, key)) for key in schema.model_fields}
    if schema is IndependentDQNSettings:  # its defaults are Nash-Q's: only settings made by hand count
        values.update(dict.fromkeys(INDEPENDENT_UNUSED))
    found = errors(schema, values)
    if not found and config.env is not None:
        market = config.market()
        try:
            resolved_logit_temperature(config, market)
        except ValueError as err:
            found.append(str(err))
        if config.q_head == "aggregative" and not market.aggregative:
            found.append(
                f"algorithm.q_head: 'aggregative' needs an aggregative market (cournot, logit_bertrand, "
                f"entry_exit); {market.market_type!r} is not"
            )
        elif config.q_head == "aggregative" and config.solution_concept not in ("nash", "logit"):
            found.append(
                "algorithm.solution_concept: the aggregative head solves for pure Nash or logit equilibria; "
                f"expected 'nash' or 'logit', got {config.solution_concept!r}"
            )
        elif config.q_head == "aggregative" and config.selection == "strict":
            found.append(
                "algorithm.selection: 'strict' needs the joint stage game's deviation payoffs; the aggregative head "
                "selects among best-reply equilibria: expected pareto, utilitarian, egalitarian or first"
            )
        elif config.q_head == "aggregative" and config.solution_concept == "logit":
            from nashrl.equilibrium.aggregative_logit import count_index

            if count_index(market.aggregation(config.aggregate_knots)) is None:
                found.append(
                    "algorithm.solution_concept: logit with q_head 'aggregative' needs contributions on one count "
                    f"grid held at every attainable aggregate; market {market.market_type!r} does not have one"
                )
        if config.dueling and config.q_head == "independent" and len(set(market.action_sizes)) > 1:
            found.append("algorithm.dueling: the independent head needs equal action sets for dueling")
        if config.share_firms and market.firm_views() is None:
            found.append(
                f"algorithm.share_firms: the firms of market {market.market_type!r} are not exchangeable (expected one "
                "shared action grid and symmetric costs, demand and qualities, in a market that states firm_views)"
            )
    if config.prioritized_replay_alpha > 0 and (config.num_learners or 0) > 0:
        found.append(
            "algorithm.prioritized_replay_alpha: prioritised replay needs the local learner "
            f"(num_learners 0, got {config.num_learners}); expected 0 for uniform replay"
        )
    if config.share_firms and config.dueling:
        found.append("algorithm.dueling: expected false with share_firms (one network's outputs are one firm's)")
    if config.share_firms and config.q_head != "aggregative":
        found.append(f"algorithm.share_firms: expected q_head 'aggregative' (got {config.q_head!r})")
    return found


def aggregation_entry(config: NashQConfig, market) -> dict[str, Any]:
    """``{"aggregation": ...}`` for the aggregative head's ``model_config`` (empty otherwise)."""
    if config.q_head != "aggregative" or market is None or not market.aggregative:
        return {}
    from nashrl.algorithms.nash_q.module import aggregation_spec

    entry: dict[str, Any] = {"aggregation": aggregation_spec(market.aggregation(config.aggregate_knots))}
    views = market.firm_views() if config.share_firms else None
    if views is not None:
        entry["firm_views"] = views.tolist()
    return entry


def resolved_logit_temperature(config: NashQConfig, market) -> float | None:
    """The logit concept's temperature in reward units: the market's shock scale
    (``sigma / reward_scale``) in a market with private type-1 extreme-value shocks, else
    ``logit_temperature``; None for the other concepts. Mismatches are refused."""
    if config.solution_concept != "logit":
        if market is not None and market.private_shocks:
            raise ValueError(
                f"algorithm.solution_concept: {config.solution_concept!r} ignores the private shocks of "
                f"market {market.market_type!r}; expected 'logit' (soft Nash-Q)"
            )
        if config.logit_temperature is not None:
            raise ValueError("algorithm.logit_temperature: only used with solution_concept: logit")
        return None
    if market is not None and market.private_shocks:
        if market.shock != "gumbel":
            raise ValueError(
                f"algorithm.solution_concept: logit assumes type-1 extreme-value shocks; market.shock is "
                f"{market.shock!r} (train independent DQN on it, or set market.shock: gumbel)"
            )
        if config.logit_temperature is not None:
            raise ValueError("algorithm.logit_temperature: set by market.sigma in a market with private shocks")
        return float(market.shock_temperature())
    if config.logit_temperature is None:
        raise ValueError(
            "algorithm.logit_temperature: expected a number > 0 with solution_concept: logit (the market has no shocks)"
        )
    return float(config.logit_temperature)


def to_train_batch(sample: dict[str, np.ndarray]) -> MultiAgentBatch:
    """A joint-replay sample as the learner's ``MultiAgentBatch`` (RLlib column names)."""
    columns = {TRAIN_COLUMNS[key]: value for key, value in sample.items()}
    return MultiAgentBatch({MODULE_ID: SampleBatch(columns)}, env_steps=len(sample["obs"]))


class NashQ(Algorithm):
    @classmethod
    def get_default_config(cls) -> NashQConfig:
        return NashQConfig()

    def setup(self, config: NashQConfig) -> None:
        # The learner's optimizer imports TorchDynamo: done while the env runners start (nashrl.startup).
        import_in_background("torch._dynamo")
        with eager_deterministic_flag():  # RLlib seeds torch here (nashrl.startup)
            super().setup(config)
        market = self.config.market()
        self.replay = JointTransitionBuffer(
            self.config.replay_capacity,
            market.n_firms,
            market.observation_size,
            seed=self.config.seed,
            public_size=market.public_size if market.private_shocks else None,
            alpha=self.config.prioritized_replay_alpha,
            priority_epsilon=self.config.prioritized_replay_eps,
        )

    def training_step(self) -> None:
        group = self.env_runner_group
        remote = group.num_remote_env_runners() > 0
        sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        schedule = self.config.epsilon if self.config.exploration == "epsilon" else self.config.temperature
        self.metrics.log_value("exploration", schedule_value(schedule, sampled), window=1)
        learn = sampled >= self.config.num_steps_sampled_before_learning_starts and len(self.replay) > 0

        if remote:  # remote runners sample while the learner learns
            requested = group.foreach_env_runner_async(_sample_with_metrics, tag=SAMPLE_TAG)
            if learn:
                self._learn(sampled)
            samples = _collect(group, requested, self.config.sample_timeout_s)
        else:
            samples = [_sample_with_metrics(group.local_env_runner)]
            if learn:
                self._learn(sampled)

        self.metrics.aggregate([metrics for _, metrics in samples], key=ENV_RUNNER_RESULTS)
        added = sum(self.replay.add_sample(data) for data, _ in samples)
        self.metrics.log_value("replay_transitions_added", added, reduce="sum")
        self.metrics.log_value("replay_size", len(self.replay), window=1)
        if learn:
            group.sync_weights(
                from_worker_or_learner_group=self.learner_group, policies=[MODULE_ID], inference_only=True
            )

    def _learn(self, sampled: int) -> None:
        """``updates_per_iteration`` gradient steps on batches of ``train_batch_size``, in one learner
        call: the learner's own loop (:meth:`NashQTorchLearner.learn`) on the driver, RLlib's
        minibatch loop over remote learners (``num_learners`` > 0)."""
        size = self.config.train_batch_size
        beta = schedule_value(self.config.prioritized_replay_beta, sampled)
        sample = self.replay.sample(size * self.config.updates_per_iteration, beta=beta)
        indices = sample.pop(INDICES, None)  # (prioritised replay)
        timesteps = {NUM_ENV_STEPS_SAMPLED_LIFETIME: sampled}
        group = self.learner_group
        if group.is_local:
            results = group.foreach_learner(lambda learner: (learner.learn(sample, size, timesteps), learner.td_errors))
            results = [r.get() for r in results]
            if indices is not None:  # (the local learner: one)
                (_, td_errors), *_ = results
                # Non-finite errors come from an update the learner rolled back (non_finite_updates),
                # which stops the run with its last finite checkpoint: the priorities stay as they were.
                if np.isfinite(td_errors).all():
                    self.replay.update_priorities(indices, td_errors)
                self.metrics.log_value("replay_beta", beta, window=1)
            results = [metrics for metrics, _ in results]
        else:
            results = group.update(batch=to_train_batch(sample), minibatch_size=size, num_epochs=1, timesteps=timesteps)
        self.metrics.aggregate(results, key=LEARNER_RESULTS)

    def save_to_path(self, path=None, *args, **kwargs):
        """RLlib's checkpoint, plus nashrl.json (experiment config, sha256 manifest, state reached),
        so any NashQ checkpoint, Tune's included, can be verified and evaluated by nashrl."""
        from nashrl.checkpoints import write_meta

        path = super().save_to_path(path, *args, **kwargs)
        metrics = {
            "iteration": self.iteration,
            "env_steps": self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0),
        }
        write_meta(Path(path), experiment_config(self.config), metrics, final_state(self))
        return path

    def get_state(self, *args, **kwargs):
        state = super().get_state(*args, **kwargs)
        if store_replay(self.config, self.replay):
            state["joint_replay"] = self.replay.get_state()
        # The last comparison with theory (TheoryMetrics repeats it between evaluations).
        state["theory_metrics"] = getattr(self, "_nashrl_eval", None)
        # Exploration randomness of every env runner (RLlib checkpoints weights and counters, not RNGs).
        state["env_runner_rng"] = self.env_runner_group.foreach_env_runner(
            _rng_state, local_env_runner=self.env_runner_group.num_remote_env_runners() == 0
        )
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        if "joint_replay" in state:
            self.replay.set_state(state["joint_replay"])
        if state.get("theory_metrics") is not None:
            self._nashrl_eval = dict(state["theory_metrics"])
        saved = {s["worker_index"]: s for s in state.get("env_runner_rng", [])}
        if saved:
            self.env_runner_group.foreach_env_runner(
                lambda runner: _set_rng_state(runner, saved.get(runner.worker_index)),
                local_env_runner=self.env_runner_group.num_remote_env_runners() == 0,
            )


def _sample_with_metrics(runner) -> tuple[Any, Any]:
    """One sample of an env runner and its metrics (a vector runner's joint arrays, else episodes)."""
    if isinstance(runner, VectorEnvRunner):
        return runner.sample_with_metrics()
    return runner.sample(), runner.get_metrics()


def _collect(group, requested: int, timeout_s: float | None) -> list[tuple[Any, Any]]:
    """Wait for the ``requested`` async samples of the env runners, at most ``timeout_s``
    (``sample_timeout_s``) seconds; a runner that failed is left out (RLlib's fault tolerance)."""
    samples = []
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while len(samples) < requested and group.num_in_flight_async_reqs(SAMPLE_TAG) > 0:
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        samples += [result for _, result in group.fetch_ready_async_reqs(tags=SAMPLE_TAG, timeout_seconds=left)]
        if deadline is not None and time.monotonic() >= deadline:
            break
    if not samples and requested:
        raise RuntimeError(
            f"env runners: none of {requested} sample requests returned within sample_timeout_s={timeout_s} "
            "(see the env runners' errors)"
        )
    return samples


def schedule_value(schedule: Any, t: float) -> float:
    """A number, or the piecewise-linear ``[[step, value], ...]`` schedule at step ``t`` (RLlib's Scheduler)."""
    if not isinstance(schedule, (list, tuple)):
        return float(schedule)
    steps = [float(p[0]) for p in schedule]
    values = [float(p[1]) for p in schedule]
    return float(np.interp(t, steps, values))


def experiment_config(config: NashQConfig) -> dict[str, Any]:
    """The nashrl experiment config of an algorithm config (the CLI's when set, else rebuilt from
    its market and Nash-Q settings, e.g. for Tune trials with sampled settings)."""
    from nashrl.markets import GENERIC_ENV
    from nashrl.schema import INDEPENDENT_UNUSED, RunSection

    base = copy.deepcopy(config.nashrl_experiment) if config.nashrl_experiment else None
    market = dict(config.env_config)
    if config.env != GENERIC_ENV:
        market["type"] = str(config.env).split("/", 1)[1]
    keys = [k for k in inspect.signature(NashQConfig.training).parameters if k not in ("self", "kwargs")]
    algorithm = {"name": "independent_dqn" if config.q_head == "independent" else "nash_q"}
    for key in [*keys, *RLLIB_KEYS]:
        if (key == "q_head" and config.q_head != "aggregative") or (
            config.q_head == "independent" and key in INDEPENDENT_UNUSED
        ):
            continue
        value = getattr(config, key, None)
        if value is not None:
            algorithm[key] = (
                [list(p) for p in value]
                if key in ("lr", "epsilon", "temperature") and isinstance(value, (list, tuple))
                else value
            )
    run = base["run"] if base else RunSection(seed=config.seed or 0).model_dump(exclude_none=True, warnings=False)
    name = base["name"] if base else "nash_q"
    return {"name": name, "market": market, "algorithm": algorithm, "run": run}


#: Joint replay up to this size (bytes) goes into checkpoints by default.
REPLAY_IN_CHECKPOINT_BYTES = 256 * 2**20


def store_replay(config, replay) -> bool:
    """``store_buffer_in_checkpoints``: true, false, or "auto" (when the filled buffer is under 256 MiB)."""
    if config.store_buffer_in_checkpoints == "auto":
        used = sum(x[: len(replay)].nbytes for x in replay.data.values())
        return used <= REPLAY_IN_CHECKPOINT_BYTES
    return bool(config.store_buffer_in_checkpoints)


def _rng_state(runner) -> dict[str, Any]:
    import random

    return {
        "worker_index": runner.worker_index,
        "torch": torch.random.get_rng_state().numpy(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "markets": [market.rng_state() for market in _markets(runner)],
    }


def _markets(runner) -> list:
    """What holds each env copy's random generator: a vector runner's VectorMarket, else the market
    of every env copy of an RLlib env runner (none where the runner has no env)."""
    if isinstance(runner, VectorEnvRunner) and getattr(runner, "vector", None) is not None:
        return [runner.vector]
    envs = getattr(getattr(runner, "env", None), "envs", None) or []
    return [env.unwrapped.market for env in envs]


def _set_rng_state(runner, state: dict[str, Any] | None) -> None:
    import random

    if state is None:
        return
    torch.random.set_rng_state(torch.as_tensor(state["torch"]))
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for market, rng in zip(_markets(runner), state.get("markets", [])):
        market.resume_rng(rng)
