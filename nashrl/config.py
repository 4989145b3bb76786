"""Experiment configs (YAML): ``market``, ``algorithm``, ``run`` and optional ``tune`` sections.

Everything is validated here, before Ray starts; every error names the key and what
was expected. ``--set key.path=value`` overrides are applied first (values parsed as YAML).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from nashrl.markets import make_market
from nashrl.markets.validation import ConfigError, is_real

ALGORITHMS = ("nash_q", "independent_dqn", "dqn", "tabular_nash_q", "tabular_q")
#: Run by nashrl's NashQ algorithm on RLlib (joint-action or independent Q head; one module "nash_q").
NASH_Q_MACHINERY = ("nash_q", "independent_dqn")
#: Trained on RLlib (Ray): the above and RLlib's own DQN.
RLLIB_ALGORITHMS = (*NASH_Q_MACHINERY, "dqn")
SECTIONS = {"name", "market", "algorithm", "run", "tune"}


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read, override and validate an experiment config."""
    path = Path(path)
    raw = read_yaml(path, "config")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config: expected a mapping with sections {sorted(SECTIONS)}, got {type(raw).__name__}")
    config = copy.deepcopy(dict(raw))
    config.setdefault("name", path.stem)
    overrides = list(overrides or [])
    switch = [item for item in overrides if item.partition("=")[0].strip() == "algorithm.name"]
    if switch and isinstance(config.get("algorithm"), Mapping):
        # Another algorithm on this config (e.g. a baseline): map the shared settings, as the suite does.
        apply_override(config, switch[-1])
        config["algorithm"] = _switched_algorithm(raw, config)
        overrides = [item for item in overrides if item not in switch]
    for item in overrides:
        apply_override(config, item)
    return validate(config)


def _switched_algorithm(raw: Mapping[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """``--set algorithm.name=X`` on a config written for another algorithm: X's settings matched to
    the written ones (:func:`nashrl.algorithms.registry.baseline_settings`)."""
    from nashrl.algorithms.registry import baseline_settings

    written = dict(raw.get("algorithm") or {})
    written.setdefault("name", "nash_q")
    name = config["algorithm"].get("name")
    if name == written["name"] or name not in ALGORITHMS:
        return config["algorithm"]  # nothing to map (an unknown name is refused by validate)
    if "gamma" not in written:  # the learning discount defaults to the market's
        written["gamma"] = (raw.get("market") or {}).get("discount", 0.95)
    run = dict(raw.get("run") or {}) if isinstance(raw.get("run"), Mapping) else {}
    return baseline_settings(name, written, run)


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's content; a missing file, non-UTF-8 text or bad YAML is a one-line ConfigError."""
    if not path.is_file():
        raise ConfigError(f"{what}: no such file {str(path)!r}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what}: {path} is not UTF-8 text ({err.reason} at byte {err.start})") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{what}: {path} is not valid YAML ({err})") from err


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


#: Largest network (parameters) a config may ask for.
MAX_PARAMETERS = 50_000_000


def validate(config: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - SECTIONS, key=str)
    if unknown:
        raise ConfigError(f"config: unknown section(s) {unknown}; expected some of {sorted(SECTIONS)}")
    config["name"] = validate_name(config.get("name"))
    if "market" not in config:
        raise ConfigError("market: missing; expected a mapping with a 'type' field")
    for section in ("algorithm", "run", "tune"):
        if config.get(section) is not None and not isinstance(config[section], Mapping):
            raise ConfigError(
                f"{section}: expected a mapping, got {type(config[section]).__name__} {config[section]!r}"
            )
    market = make_market(config["market"])  # raises ConfigError naming the market field
    config["algorithm"] = _validate_algorithm(_reconcile_discount(dict(config.get("algorithm") or {}), market))
    if config["algorithm"]["name"].startswith("tabular"):
        from nashrl.algorithms.baselines.tabular import check_market

        check_market(config["algorithm"]["name"], market)
    else:
        _check_network_size(config["algorithm"], market)
    _check_equilibrium_search(config["algorithm"], market)
    config["run"] = _validate_run(dict(config.get("run") or {}))
    if config["algorithm"]["name"] in NASH_Q_MACHINERY:
        _check_nash_q_against_market(config)
    if "tune" in config:
        from nashrl.tune import validate_tune

        config["tune"] = validate_tune(config["tune"], config)
    return config


def _check_nash_q_against_market(config: dict[str, Any]) -> None:
    """What Nash-Q's settings need of the market (the logit concept and private shocks, the
    aggregative head), checked here, before Ray starts, as RLlib's validate would later."""
    from nashrl.algorithms.nash_q.nash_q import nash_q_errors
    from nashrl.algorithms.rllib_trainer import algorithm_config

    for message in nash_q_errors(algorithm_config(config)):
        raise ConfigError(message)


def validate_name(name: Any) -> str:
    """The experiment name: one path component (it names a folder under ``run.output_dir``)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"name: expected a non-empty string, got {name!r}")
    if name in (".", "..") or any(c in name for c in "/\\\0") or len(name) > 100:
        raise ConfigError(f"name: expected one folder name (no '/', '\\', '..', at most 100 characters), got {name!r}")
    return name


def _check_equilibrium_search(algo: dict[str, Any], market) -> None:
    """``equilibrium_search: all`` (support enumeration) only where the stage games are small enough;
    ``support`` (the N-player enumeration) only with 3 or more firms."""
    if algo.get("equilibrium_search") == "support" and market.n_firms < 3:
        raise ConfigError(
            f"algorithm.equilibrium_search: 'support' is the search for 3 or more firms, got {market.n_firms}; "
            "expected auto, always, labels or all for a duopoly"
        )
    if algo.get("equilibrium_search") != "all" or market.n_firms != 2:
        return
    from nashrl.equilibrium.support import MAX_PAIRS, n_support_pairs

    pairs = n_support_pairs(*market.action_sizes)
    if pairs > MAX_PAIRS:
        raise ConfigError(
            f"algorithm.equilibrium_search: 'all' enumerates {pairs:,} support pairs per "
            f"{market.action_sizes[0]}x{market.action_sizes[1]} stage game (limit {MAX_PAIRS:,}); expected auto, "
            "always or labels for games this large"
        )


def _check_network_size(algo: dict[str, Any], market) -> None:
    """Refuse networks too large to build, computed from the layer sizes (nothing allocated)."""
    import math

    hiddens = list(algo.get("hiddens", [64, 64]))
    if algo["name"] == "nash_q" and algo.get("q_head") == "aggregative":
        knots = market.aggregation(algo.get("aggregate_knots", 33)).n_knots if market.aggregative else 1
        outputs = [market.n_firms * max(market.action_sizes) * knots]
    elif algo["name"] == "nash_q":
        outputs = [market.n_firms * math.prod(market.action_sizes)]
    elif algo["name"] == "independent_dqn":
        outputs = [sum(market.action_sizes)]
    else:
        outputs = list(market.action_sizes)
    total = 0
    for n_out in outputs:
        widths = [market.observation_size, *hiddens, n_out]
        total += sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    if total > MAX_PARAMETERS:
        raise ConfigError(
            f"algorithm.hiddens: {hiddens} with {market.observation_size} inputs and {max(outputs):,} outputs is "
            f"{float(total):.3g} parameters; expected at most {MAX_PARAMETERS:,}"
            + (
                " (many firms of an aggregative market: algorithm.q_head: aggregative)"
                if market.aggregative and algo["name"] == "nash_q" and algo.get("q_head", "joint") == "joint"
                else ""
            )
        )


def _reconcile_discount(algo: dict[str, Any], market) -> dict[str, Any]:
    """One discount: ``algorithm.gamma`` (learning) defaults to ``market.discount`` (theory, dynamic
    Nash gap, impulse responses); learning with another one is an explicit choice,
    ``algorithm.discount_mismatch: true``."""
    algo.setdefault("name", "nash_q")
    mismatch = algo.get("discount_mismatch", False)
    if not isinstance(mismatch, bool):
        raise ConfigError(f"algorithm.discount_mismatch: expected true or false, got {mismatch!r}")
    if "gamma" not in algo:
        algo["gamma"] = market.discount
    elif is_real(algo["gamma"]) and algo["gamma"] != market.discount and not mismatch:
        raise ConfigError(
            f"algorithm.gamma: {algo['gamma']} differs from market.discount {market.discount} (what theory and the "
            "dynamic Nash gap use); expected them equal (omit algorithm.gamma: it defaults to market.discount), or "
            "algorithm.discount_mismatch: true to learn with another discount on purpose"
        )
    return algo


def algorithm_settings(algo: dict[str, Any]) -> dict[str, Any]:
    """An algorithm section's settings for its trainer (without ``name`` and ``discount_mismatch``)."""
    return {k: v for k, v in algo.items() if k not in ("name", "discount_mismatch")}


def _validate_algorithm(algo: dict[str, Any]) -> dict[str, Any]:
    name = algo.get("name", "nash_q")
    if not isinstance(name, str) or name not in ALGORITHMS:
        raise ConfigError(f"algorithm.name: expected one of {ALGORITHMS}, got {name!r}")
    algo["name"] = name
    settings = algorithm_settings(algo)
    from nashrl.algorithms.registry import validate_settings

    for message in validate_settings(name, settings):
        raise ConfigError(f"algorithm.{message}")
    return algo


def _validate_run(run: dict[str, Any]) -> dict[str, Any]:
    """The ``run`` section by its typed schema (:class:`nashrl.schema.RunSection`), then what a
    schema cannot know: the output folder, and env runners against this machine's CPUs."""
    from nashrl.schema import RunSection, errors

    for message in errors(RunSection, run, "run"):
        raise ConfigError(message)
    merged = RunSection(**run).model_dump(exclude_none=True, warnings=False)
    _check_output_dir(merged["output_dir"])
    if not (merged.get("address") or os.environ.get("RAY_ADDRESS")):
        cpus = os.cpu_count() or 1
        if merged["num_env_runners"] > cpus:
            raise ConfigError(
                f"run.num_env_runners: {merged['num_env_runners']} env runners need as many CPUs, this machine has "
                f"{cpus} (Ray would wait for them forever); expected at most {cpus} on a local Ray instance, or a "
                "cluster (run.address)"
            )
    return merged


def _check_output_dir(output_dir: str) -> None:
    """The nearest existing ancestor of ``output_dir`` must be a writable directory."""
    path = Path(output_dir).expanduser().absolute()
    for candidate in [path, *path.parents]:
        if candidate.exists():
            if not candidate.is_dir():
                raise ConfigError(f"run.output_dir: {output_dir!r} lies under {str(candidate)!r}, which is a file")
            if not os.access(candidate, os.W_OK):
                raise ConfigError(f"run.output_dir: {str(candidate)!r} is not writable")
            return
