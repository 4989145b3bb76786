"""Experiment configs (YAML): ``market``, ``algorithm``, ``run`` and optional ``tune`` sections.

Everything is validated here, before Ray starts; every error names the key and what
was expected. ``--set key.path=value`` overrides are applied first (values parsed as YAML).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from nashrl.markets import make_market
from nashrl.markets.validation import ConfigError

ALGORITHMS = ("nash_q", "dqn", "tabular_nash_q", "tabular_q")
SECTIONS = {"name", "market", "algorithm", "run", "tune"}
RUN_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "stop": {"env_steps": 20_000},
    "num_env_runners": 1,
    "num_envs_per_env_runner": 1,
    "checkpoint_every": 25,
    "output_dir": "runs",
    "evaluation_steps": 50,
    "eval_every": 25,
    "progress": True,
}
STOP_KEYS = {"env_steps", "iterations", "time_s"}


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read, override and validate an experiment config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: no such file {str(path)!r}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config: {path} is not valid YAML ({err})") from err
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config: expected a mapping with sections {sorted(SECTIONS)}, got {type(raw).__name__}")
    config = copy.deepcopy(dict(raw))
    config.setdefault("name", path.stem)
    for item in overrides or []:
        apply_override(config, item)
    return validate(config)


def apply_override(config: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set: expected key.path=value, got {item!r}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: value {text!r} is not valid YAML") from err
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        if not isinstance(node.setdefault(part, {}), dict):
            raise ConfigError(f"--set {key}: {part!r} is not a section")
        node = node[part]
    node[parts[-1]] = value


def validate(config: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - SECTIONS)
    if unknown:
        raise ConfigError(f"config: unknown section(s) {unknown}; expected some of {sorted(SECTIONS)}")
    if "market" not in config:
        raise ConfigError("market: missing; expected a mapping with a 'type' field")
    market = make_market(config["market"])  # raises ConfigError naming the market field
    config["algorithm"] = _validate_algorithm(dict(config.get("algorithm") or {"name": "nash_q"}))
    if config["algorithm"]["name"].startswith("tabular"):
        from nashrl.algorithms.baselines.tabular import check_market

        check_market(config["algorithm"]["name"], market)
    config["run"] = _validate_run(dict(config.get("run") or {}))
    if "tune" in config:
        from nashrl.tune import validate_tune

        config["tune"] = validate_tune(config["tune"], config)
    return config


def _validate_algorithm(algo: dict[str, Any]) -> dict[str, Any]:
    name = algo.get("name", "nash_q")
    if name not in ALGORITHMS:
        raise ConfigError(f"algorithm.name: expected one of {ALGORITHMS}, got {name!r}")
    algo["name"] = name
    settings = {k: v for k, v in algo.items() if k != "name"}
    from nashrl.algorithms.registry import validate_settings

    for message in validate_settings(name, settings):
        raise ConfigError(f"algorithm.{message}")
    return algo


def _validate_run(run: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(run) - set(RUN_DEFAULTS) - {"address"})
    if unknown:
        raise ConfigError(f"run: unknown key(s) {unknown}; expected some of {sorted(RUN_DEFAULTS)}")
    merged = {**copy.deepcopy(RUN_DEFAULTS), **run}
    stop = merged["stop"]
    if not isinstance(stop, Mapping) or not stop or set(stop) - STOP_KEYS:
        raise ConfigError(f"run.stop: expected a mapping with some of {sorted(STOP_KEYS)}, got {stop!r}")
    for key, value in stop.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"run.stop.{key}: expected a positive number, got {value!r}")
    for key in (
        "num_env_runners",
        "num_envs_per_env_runner",
        "checkpoint_every",
        "evaluation_steps",
        "seed",
        "eval_every",
    ):
        value = merged[key]
        minimum = 0 if key in ("num_env_runners", "seed", "checkpoint_every", "eval_every") else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"run.{key}: expected an integer >= {minimum}, got {value!r}")
    if not isinstance(merged["output_dir"], str) or not merged["output_dir"]:
        raise ConfigError(f"run.output_dir: expected a directory path, got {merged['output_dir']!r}")
    return merged
