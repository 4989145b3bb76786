"""``nashrl tune``: a Ray Tune search over algorithm settings (ASHA or FIFO), best trial reported.

Config section::

    tune:
      num_samples: 8
      metric: eval/max_grid_steps_to_nash   # closeness to equilibrium, reported by TheoryMetrics
      mode: min
      scheduler: {type: asha, grace_period: 5, max_t: 200}   # training iterations
      search_space:
        lr: {loguniform: [1.0e-4, 1.0e-2]}
        hiddens: {choice: [[32, 32], [64, 64]]}
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from nashrl.config import RLLIB_ALGORITHMS, algorithm_settings
from nashrl.markets.validation import ConfigError

DOMAINS = ("loguniform", "uniform", "choice", "grid", "randint")
TUNE_KEYS = {"num_samples", "metric", "mode", "scheduler", "search_space", "max_concurrent_trials"}


def validate_tune(tune: Any, config: dict[str, Any]) -> dict[str, Any]:
    from nashrl.algorithms.registry import validate_settings

    if not isinstance(tune, dict):
        raise ConfigError(f"tune: expected a mapping, got {type(tune).__name__}")
    unknown = sorted(set(tune) - TUNE_KEYS)
    if unknown:
        raise ConfigError(f"tune: unknown key(s) {unknown}; expected some of {sorted(TUNE_KEYS)}")
    out = {
        "num_samples": 4,
        "metric": None,
        "mode": "min",
        "scheduler": {"type": "asha"},
        "search_space": {},
        "max_concurrent_trials": None,
        **tune,
    }
    if not isinstance(out["num_samples"], int) or out["num_samples"] < 1:
        raise ConfigError(f"tune.num_samples: expected an integer >= 1, got {out['num_samples']!r}")
    if out["mode"] not in ("max", "min"):
        raise ConfigError(f"tune.mode: expected 'max' or 'min', got {out['mode']!r}")
    reported = eval_metrics(config)
    if out["metric"] is None:
        out["metric"] = default_metric(reported)
    available = reported + list(ALWAYS_REPORTED)
    if out["metric"] not in available:
        raise ConfigError(
            f"tune.metric: expected a metric every result reports, one of {available}, got {out['metric']!r}"
        )
    sched = out["scheduler"]
    if not isinstance(sched, dict) or sched.get("type", "asha") not in ("asha", "fifo"):
        raise ConfigError(f"tune.scheduler.type: expected 'asha' or 'fifo', got {sched!r}")
    algo = config["algorithm"]
    if algo["name"] not in RLLIB_ALGORITHMS:
        raise ConfigError(
            f"tune: searches run RLlib algorithms {RLLIB_ALGORITHMS}, got algorithm.name={algo['name']!r}"
        )
    for key, spec in out["search_space"].items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DOMAINS:
            raise ConfigError(f"tune.search_space.{key}: expected one of {{{', '.join(DOMAINS)}: ...}}, got {spec!r}")
        kind, values = next(iter(spec.items()))
        if not isinstance(values, list) or not values:
            raise ConfigError(f"tune.search_space.{key}.{kind}: expected a non-empty list, got {values!r}")
        candidates = values if kind in ("choice", "grid") else values[:2]
        settings = algorithm_settings(algo)
        for candidate in candidates:
            for message in validate_settings(algo["name"], {**settings, key: candidate}):
                raise ConfigError(f"tune.search_space.{message}")
    return out


#: RLlib result keys present in every result (others, like losses, appear only once learning starts).
ALWAYS_REPORTED = ("env_runners/num_env_steps_sampled_lifetime", "training_iteration", "time_total_s")


def eval_metrics(config: dict[str, Any]) -> list[str]:
    """The ``eval/*`` metrics TheoryMetrics reports for the config's market (found by evaluating a
    constant policy, cheaply, before anything starts)."""
    import numpy as np

    from nashrl.analysis.evaluation import scalar_metrics, summarize
    from nashrl.markets import make_market

    if not config["run"]["eval_every"]:
        return []
    market = make_market(config["market"])

    class Idle:
        def act(self, obs, state):
            return np.zeros(market.n_firms, dtype=np.int64)

    return sorted(scalar_metrics(summarize(Idle(), market, steps=2)))


def default_metric(available: list[str]) -> str:
    """Closeness to equilibrium among the reported ``eval/*`` metrics: grid steps to Nash/SPE where
    the market has one, else the dynamic Nash gap."""
    for metric in ("eval/max_grid_steps_to_nash", "eval/dynamic_nash_gap", "eval/mean_grid_steps_to_state_nash"):
        if metric in available:
            return metric
    return available[0] if available else "training_iteration"


def _domain(spec: dict[str, Any]):
    from ray import tune

    kind, values = next(iter(spec.items()))
    return {
        "loguniform": lambda: tune.loguniform(*values),
        "uniform": lambda: tune.uniform(*values),
        "randint": lambda: tune.randint(*values),
        "choice": lambda: tune.choice(values),
        "grid": lambda: tune.grid_search(values),
    }[kind]()


def run_tune(config: dict[str, Any]) -> dict[str, Any]:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from nashrl.algorithms.rllib_trainer import algorithm_config
    from nashrl.ray_session import init_ray

    init_ray(config)
    spec = config["tune"]
    base = copy.deepcopy(config)
    algo_config = algorithm_config(base, trials=True)
    for key, domain_spec in spec["search_space"].items():
        algo_config.training(**{key: _domain(domain_spec)})
    stop = config["run"]["stop"]
    max_t = spec["scheduler"].get("max_t", stop.get("iterations", 100))
    if spec["scheduler"].get("type", "asha") == "asha":
        scheduler = ASHAScheduler(
            time_attr="training_iteration", max_t=max_t, grace_period=spec["scheduler"].get("grace_period", 1)
        )
    else:
        scheduler = FIFOScheduler()
    tune_stop = {}
    if "env_steps" in stop:
        tune_stop["env_runners/num_env_steps_sampled_lifetime"] = stop["env_steps"]
    if "iterations" in stop:
        tune_stop["training_iteration"] = stop["iterations"]
    if "time_s" in stop:
        tune_stop["time_total_s"] = stop["time_s"]
    storage = Path(config["run"]["output_dir"]).resolve() / config["name"] / "tune"
    tuner = tune.Tuner(
        algo_config.algo_class,
        param_space=algo_config,
        tune_config=tune.TuneConfig(
            metric=spec["metric"],
            mode=spec["mode"],
            num_samples=spec["num_samples"],
            scheduler=scheduler,
            max_concurrent_trials=spec["max_concurrent_trials"],
        ),
        run_config=tune.RunConfig(
            stop=tune_stop,
            storage_path=str(storage),
            verbose=1,
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True, num_to_keep=1),
        ),
    )
    results = tuner.fit()
    best = results.get_best_result(metric=spec["metric"], mode=spec["mode"])
    chosen = {key: best.config.get(key) for key in spec["search_space"]}
    return {
        "best_config": chosen,
        "best_metric": _nested(best.metrics, spec["metric"]),
        "num_trials": len(results),
        "errors": len(results.errors),
        "storage": str(storage),
        "best_checkpoint": str(best.checkpoint.path) if best.checkpoint else None,
    }


def _nested(metrics: dict[str, Any], key: str):
    node: Any = metrics
    for part in key.split("/"):
        if not isinstance(node, dict) or part not in node:
            return metrics.get(key)
        node = node[part]
    return node
