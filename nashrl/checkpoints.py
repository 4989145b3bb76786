"""Checkpoint layout and checks: ``<run_dir>/checkpoints/iter_000050/`` with ``nashrl.json``.

``nashrl.json`` records the algorithm, market type, iteration, env steps, the market state
training had reached, the whole validated experiment config, and a **sha256 manifest of
every other file** in the checkpoint. RLlib's checkpoint files are pickles, and unpickling
runs code: :func:`verify` checks every file against the manifest *before* anything is
unpickled and refuses a checkpoint with a changed, missing or unlisted file. The manifest
catches corruption and accidental edits; it is no signature (whoever can rewrite the files
can rewrite ``nashrl.json``), so load checkpoints from trusted sources only.

Resuming checks that the checkpoint's market config equals the new one in every key and
that the algorithm and network shape agree (:func:`check_compatible`), naming the keys
that differ; other algorithm settings (learning rate, exploration, stop) may change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from nashrl.files import write_json

META = "nashrl.json"
#: Algorithm keys that fix the shapes of what a checkpoint holds; the rest may change on resume.
SHAPE_KEYS = ("name", "hiddens", "q_head", "aggregate_knots", "share_firms", "dueling", "average_weights_from")


class CheckpointError(ValueError):
    pass


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and p.name != META)


def write_meta(path: Path, config: dict[str, Any], metrics: dict[str, float], final_state=None) -> None:
    """Write ``nashrl.json`` (last: a checkpoint without it is incomplete and refused)."""
    path = Path(path)
    meta = {
        "algorithm": config["algorithm"]["name"],
        "market": config["market"]["type"],
        "iteration": int(metrics.get("iteration", 0)),
        "env_steps": float(metrics.get("env_steps", 0)),
        # The market state training had reached: long-run outcomes are measured from it.
        "final_state": final_state,
        "config": config,
        "manifest": {name: sha256(path / name) for name in _files(path)},
    }
    write_json(path / META, meta)


def read_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint: {str(path)!r} is not a directory")
    meta_file = path / META
    if not meta_file.is_file():
        raise CheckpointError(f"checkpoint: {str(path)!r} has no {META}; expected a nashrl checkpoint directory")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint: {meta_file} is corrupt ({err})") from err
    if not isinstance(meta, dict) or not {"algorithm", "market", "config", "manifest"} <= set(meta):
        raise CheckpointError(
            f"checkpoint: {meta_file} lacks the algorithm, market, config and manifest fields "
            "(not a checkpoint of this nashrl version)"
        )
    return meta


def verify(path: str | Path) -> dict[str, Any]:
    """``nashrl.json`` of a checkpoint whose every file matches its sha256 manifest (nothing unpickled)."""
    path = Path(path)
    meta = read_meta(path)
    manifest = meta["manifest"]
    if not isinstance(manifest, dict) or not manifest:
        raise CheckpointError(f"checkpoint: {path / META} has an empty or malformed manifest")
    present = set(_files(path))
    unlisted = sorted(present - set(manifest))
    missing = sorted(set(manifest) - present)
    if missing or unlisted:
        raise CheckpointError(
            f"checkpoint: {str(path)!r} does not match its manifest (missing {missing[:3]}, unlisted {unlisted[:3]}); "
            "refusing to load it"
        )
    for name, digest in manifest.items():
        if sha256(path / name) != digest:
            raise CheckpointError(
                f"checkpoint: {name} in {str(path)!r} does not match the sha256 in {META} (corrupt or modified); "
                "refusing to unpickle it"
            )
    return meta


def _differences(old: Any, new: Any, prefix: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{prefix}.{key}")
        return out
    return [] if old == new else [prefix]


def shape_settings(algorithm: dict[str, Any]) -> dict[str, Any]:
    """The :data:`SHAPE_KEYS` of an algorithm section, a key left out read as its default (for
    Nash-Q's machinery, :class:`NashQConfig`'s), so a config that spells out a default resumes a
    checkpoint that left it implicit."""
    from nashrl.config import NASH_Q_MACHINERY

    defaults: dict[str, Any] = {}
    if algorithm.get("name") in NASH_Q_MACHINERY:
        from nashrl.algorithms.nash_q.nash_q import NashQConfig

        base = NashQConfig()
        defaults = {k: getattr(base, k) for k in SHAPE_KEYS if k != "name" and hasattr(base, k)}
    out = {k: algorithm.get(k, defaults.get(k)) for k in SHAPE_KEYS}
    if isinstance(out.get("hiddens"), tuple | list):
        out["hiddens"] = [int(h) for h in out["hiddens"]]
    return out


def check_compatible(path: str | Path, config: dict[str, Any]) -> dict[str, Any]:
    """Verify the checkpoint and refuse resuming it into a config with another market or network."""
    meta = verify(path)
    saved = meta["config"]
    differing = _differences(saved.get("market"), config["market"], "market")
    saved_shape, shape = shape_settings(saved.get("algorithm", {})), shape_settings(config["algorithm"])
    differing += [f"algorithm.{k}" for k in SHAPE_KEYS if saved_shape[k] != shape[k]]
    if differing:
        raise CheckpointError(
            f"checkpoint: {str(path)!r} was trained with other settings for {', '.join(differing)}; "
            "resume with the checkpoint's market and network (other algorithm settings may change)"
        )
    return meta


def experiment_of(path: str | Path) -> tuple[dict[str, Any], Path | None]:
    """The experiment config stored in a verified checkpoint, and its run directory (if any)."""
    meta = verify(path)
    run_dir = next((p for p in Path(path).resolve().parents if (p / "experiment.yaml").is_file()), None)
    return meta["config"], run_dir
