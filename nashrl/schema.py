"""Typed schemas of the config sections that are settings (``run`` and each algorithm's).

One pydantic model per section, strict (``"0.9"`` is not a number, ``true`` is not 1), with
ranges and finiteness in the types, unknown keys forbidden. :func:`errors` turns pydantic's
report into the one-line messages nashrl prints, naming the key:
``algorithm.gamma: expected a valid number, got '0.9'``. Market parameters are checked by
each market class (:mod:`nashrl.markets.validation`), the ``tune`` section by
:func:`nashrl.tune.validate_tune`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from nashrl.equilibrium import SEARCHES, SELECTIONS

Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Discount = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
MAX_LAYERS, MAX_WIDTH = 16, 8192
Hiddens = Annotated[list[Annotated[int, Field(ge=1, le=MAX_WIDTH)]], Field(max_length=MAX_LAYERS)]


def describe(low: float | None = None, high: float | None = None, positive: bool = False) -> str:
    lo = "> 0" if positive else (f">= {low:g}" if low is not None else "")
    hi = f"<= {high:g}" if high is not None else ""
    what = " and ".join(x for x in (lo, hi) if x)
    return f"a finite number {what} or [[env_step, value], ...] with increasing steps".replace("  ", " ")


def schedule(low: float | None = None, high: float | None = None, positive: bool = False):
    """A number, or ``[[env_step, value], ...]`` (piecewise linear, increasing steps >= 0) with
    every value in range."""
    description = describe(low, high, positive)

    def check(value: Any) -> Any:
        points = value if isinstance(value, list) else [[0.0, value]]
        for step, v in points:
            if step < 0 or (positive and v <= 0) or (low is not None and v < low) or (high is not None and v > high):
                raise ValueError(description)
        if any(b[0] <= a[0] for a, b in zip(points, points[1:])):
            raise ValueError(description)
        return value

    pair = Annotated[list[Finite], Field(min_length=2, max_length=2)]
    return Annotated[Finite | Annotated[list[pair], Field(min_length=1)], AfterValidator(check)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StopSection(Section):
    env_steps: Positive | None = None
    iterations: Positive | None = None
    time_s: Positive | None = None

    @model_validator(mode="after")
    def _some(self):
        if not self.model_fields_set:
            raise ValueError("some of env_steps, iterations, time_s")
        return self


class RunSection(Section):
    seed: NonNegativeInt = 0
    stop: StopSection = StopSection(env_steps=20_000)
    num_env_runners: NonNegativeInt = 1
    num_envs_per_env_runner: Count = 1
    checkpoint_every: NonNegativeInt = 25
    output_dir: Annotated[str, Field(min_length=1)] = "runs"
    evaluation_steps: Count = 50
    eval_every: NonNegativeInt = 25
    progress: bool = True
    address: Annotated[str, Field(min_length=1)] | None = None
    #: Torch/numba threads of the learner's (driver's) process; default: the cores left after
    #: one per env runner (nashrl.threads.default_learner_threads).
    learner_threads: Count | None = None


class NashQSettings(Section):
    """Deep Nash-Q's settings (see :class:`nashrl.algorithms.nash_q.NashQConfig`) and the RLlib
    ones nashrl passes on (``lr``, ``gamma``, ``train_batch_size``, ``rollout_fragment_length``,
    ``grad_clip``); ``None`` = not given (NashQConfig's default)."""

    hiddens: Hiddens | None = None
    q_head: Literal["joint", "aggregative"] | None = None
    aggregate_knots: Annotated[int, Field(ge=2, le=100_000, strict=True)] | None = None
    share_firms: bool | None = None
    dueling: bool | None = None
    average_weights_from: NonNegativeInt | None = None
    solution_concept: Literal["nash", "correlated", "maximin", "logit"] | None = None
    logit_temperature: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    selection: Literal[SELECTIONS] | None = None  # type: ignore[valid-type]
    solver_backend: Literal["auto", "torch", "numba"] | None = None
    equilibrium_search: Literal[SEARCHES] | None = None  # type: ignore[valid-type]
    exploration: Literal["epsilon", "boltzmann"] | None = None
    epsilon: schedule(0.0, 1.0) | None = Field(None, description=describe(0.0, 1.0))
    temperature: schedule(0.0) | None = Field(None, description=describe(0.0))
    double_q: bool | None = None
    target_network_update_freq: Count | None = None
    tau: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    replay_capacity: Count | None = None
    prioritized_replay_alpha: NonNegative | None = None
    prioritized_replay_beta: schedule(0.0, 1.0) | None = Field(None, description=describe(0.0, 1.0))
    prioritized_replay_eps: Positive | None = None
    num_steps_sampled_before_learning_starts: NonNegativeInt | None = None
    updates_per_iteration: Count | None = None
    td_error_loss_fn: Literal["huber", "mse"] | None = None
    store_buffer_in_checkpoints: bool | Literal["auto"] | None = Field(None, description="true, false or 'auto'")
    sampler: Literal["vector", "episodes"] | None = None
    lr: schedule(positive=True) | None = Field(None, description=describe(positive=True))
    gamma: Discount | None = None
    train_batch_size: Count | None = None
    rollout_fragment_length: Count | None = None
    grad_clip: Positive | None = Field(None, description="a finite positive number or null")

    @model_validator(mode="after")
    def _replay_holds_a_batch(self):
        if self.replay_capacity is not None and self.train_batch_size is not None:
            if self.replay_capacity < self.train_batch_size:
                raise ValueError(f"replay_capacity: expected at least train_batch_size ({self.train_batch_size})")
        return self


#: Nash-Q settings that independent learners do not use (no equilibrium to select or search).
INDEPENDENT_UNUSED = ("selection", "equilibrium_search", "solver_backend")


class IndependentDQNSettings(NashQSettings):
    """Independent DQN on Nash-Q's machinery (``algorithm.name: independent_dqn``): the same
    settings, each firm's Q over its own actions (``q_head: independent``); a firm's own argmax
    (``nash``) or logit choice (``logit``, markets with private shocks) replaces the equilibrium,
    so there is no equilibrium to select or search."""

    q_head: Literal["independent"] | None = None
    solution_concept: Literal["nash", "logit"] | None = None

    @model_validator(mode="after")
    def _no_equilibrium_settings(self):
        for key in INDEPENDENT_UNUSED:
            if getattr(self, key) is not None:
                raise ValueError(f"{key}: unset (independent learners select and search no equilibrium)")
        return self


class DQNSettings(Section):
    """The independent-DQN baseline's settings (RLlib's DQN, one module per firm)."""

    lr: schedule(positive=True) = Field(1e-3, description=describe(positive=True))
    gamma: Discount = 0.95
    train_batch_size: Count = 128
    hiddens: Hiddens = [64, 64]
    epsilon: schedule(0.0, 1.0) = Field([[0, 1.0], [20_000, 0.02]], description=describe(0.0, 1.0))
    target_network_update_freq: Count = 500
    double_q: bool = True
    dueling: bool = False
    n_step: Count = 1
    replay_capacity: Count = 100_000
    num_steps_sampled_before_learning_starts: NonNegativeInt = 1_000
    training_intensity: Positive | None = Field(None, description="a finite positive number or null")
    rollout_fragment_length: Count = 25


class TabularQSettings(Section):
    """Calvano et al.'s tabular Q-learning."""

    alpha: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.15
    beta: NonNegative = 4e-6
    gamma: Discount = 0.95
    convergence_window: Count = 100_000
    steps_per_iteration: Count = 100_000


class TabularNashQSettings(TabularQSettings):
    """Tabular Nash-Q (Hu and Wellman 2003)."""

    selection: Literal[SELECTIONS] = "pareto"  # type: ignore[valid-type]


SETTINGS: dict[str, type[Section]] = {
    "nash_q": NashQSettings,
    "independent_dqn": IndependentDQNSettings,
    "dqn": DQNSettings,
    "tabular_q": TabularQSettings,
    "tabular_nash_q": TabularNashQSettings,
}


def plain(value: Any) -> Any:
    """Tuples as lists (schedules in an AlgorithmConfig are tuples; the schemas are strict)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def errors(model: type[Section], data: dict[str, Any], prefix: str = "") -> list[str]:
    """One-line messages ``key: expected ..., got ...``, one per key at fault (empty when valid)."""
    try:
        model(**data)
    except ValidationError as err:
        by_field: dict[str, list[dict[str, Any]]] = {}
        for e in err.errors():
            by_field.setdefault(_field(e, prefix), []).append(e)
        return [_message(field, found, model, data, prefix) for field, found in by_field.items()]
    except TypeError as err:  # e.g. keys that are not strings
        return [f"{prefix}: {err}"]
    return []


def _field(error: dict[str, Any], prefix: str) -> str:
    loc = [str(p) for p in error["loc"] if not _is_union_tag(p) and not str(p).isdigit()]
    if not loc and error["type"] == "value_error":  # a model-level check names its field first
        text = str(error["msg"]).removeprefix("Value error, ")
        if ":" in text.split(" ", 1)[0]:
            loc = [text.split(":", 1)[0]]
    return ".".join(p for p in (prefix, *loc[:2]) if p)


def _message(field: str, found: list[dict[str, Any]], model: type[Section], data: dict[str, Any], prefix: str) -> str:
    first = found[0]
    path = field.removeprefix(f"{prefix}.").split(".") if prefix else field.split(".")
    key = path[0]
    if first["type"] == "extra_forbidden":
        return f"{field}: unknown setting; expected some of {sorted(_model_at(model, path[:-1]).model_fields)}"
    info = _model_at(model, path[:-1]).model_fields.get(path[-1])
    described = [e for e in found if e["type"] == "value_error"]
    if described:
        text = str(described[0]["msg"]).removeprefix("Value error, ")
        text = text.split(": ", 1)[1] if ":" in text.split(" ", 1)[0] else text
        text = text if text.startswith("expected") else f"expected {text}"
    elif len(found) > 1 and info is not None and info.description:
        text = f"expected {info.description}"
    else:
        text = str(first["msg"]).replace("Input should be ", "expected ")
        text = text.replace("expected greater", "expected a value greater").replace(
            "expected less", "expected a value less"
        )
    got = data.get(key, first.get("input")) if len(field.split(".")) <= (2 if prefix else 1) else first.get("input")
    return f"{field}: {text}, got {got!r}"


def _model_at(model: type[Section], path: list[str]) -> type[Section]:
    """The (nested) section model at ``path`` (e.g. ``["stop"]`` of the run section)."""
    for part in path:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, Section)):
            return model
        model = annotation
    return model


def _is_union_tag(part: Any) -> bool:
    # pydantic names union members and validators in locations ('float', 'list[...]', 'function-after[...]')
    return isinstance(part, str) and (part in ("float", "int", "bool", "str", "none") or "[" in part or "-" in part)
