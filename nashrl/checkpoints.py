"""Checkpoint layout and checks: ``<run_dir>/checkpoints/iter_000050/`` with ``nashrl.json``.

``nashrl.json`` records the algorithm, market type, iteration and env steps; the run's
``experiment.yaml`` sits in ``<run_dir>``. Resuming or evaluating a missing, foreign or
corrupt checkpoint fails with :class:`CheckpointError` naming what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

META = "nashrl.json"


class CheckpointError(ValueError):
    pass


def write_meta(path: Path, config: dict[str, Any], metrics: dict[str, float], final_state=None) -> None:
    meta = {
        "algorithm": config["algorithm"]["name"],
        "market": config["market"]["type"],
        "iteration": int(metrics.get("iteration", 0)),
        "env_steps": float(metrics.get("env_steps", 0)),
        # The market state training had reached: long-run outcomes are measured from it.
        "final_state": final_state,
    }
    (Path(path) / META).write_text(json.dumps(meta, indent=2))


def read_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint: {str(path)!r} is not a directory")
    meta_file = path / META
    if not meta_file.is_file():
        raise CheckpointError(f"checkpoint: {str(path)!r} has no {META}; expected a nashrl checkpoint directory")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint: {meta_file} is corrupt ({err})") from err
    if not isinstance(meta, dict) or not {"algorithm", "market"} <= set(meta):
        raise CheckpointError(f"checkpoint: {meta_file} lacks the algorithm and market fields")
    return meta


def check_compatible(path: str | Path, config: dict[str, Any]) -> dict[str, Any]:
    meta = read_meta(path)
    if meta["algorithm"] != config["algorithm"]["name"] or meta["market"] != config["market"]["type"]:
        raise CheckpointError(
            f"checkpoint: {str(path)!r} holds {meta['algorithm']} on {meta['market']}, but the config asks for "
            f"{config['algorithm']['name']} on {config['market']['type']}"
        )
    return meta


def experiment_of(path: str | Path) -> tuple[dict[str, Any], Path]:
    """The experiment config saved with a checkpoint, and the run directory."""
    read_meta(path)
    for parent in Path(path).resolve().parents:
        candidate = parent / "experiment.yaml"
        if candidate.is_file():
            return yaml.safe_load(candidate.read_text()), parent
    raise CheckpointError(f"checkpoint: no experiment.yaml found above {str(path)!r}")
