"""The training loop behind ``nashrl train``: iterate, log, checkpoint, summarise against theory."""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import yaml

from nashrl.checkpoints import CheckpointError, check_compatible, write_meta
from nashrl.markets import make_market


def init_ray(config: dict[str, Any]) -> None:
    """Connect to ``run.address`` / ``RAY_ADDRESS`` if given, else start a local Ray instance."""
    import ray

    if ray.is_initialized():
        return
    address = config["run"].get("address") or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, log_to_driver=False)
    from nashrl.markets import register_rllib_envs

    register_rllib_envs()


def new_run_dir(config: dict[str, Any]) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    algo, seed = config["algorithm"]["name"], config["run"]["seed"]
    path = Path(config["run"]["output_dir"]) / config["name"] / f"{algo}_seed{seed}_{stamp}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def stop_reached(config: dict[str, Any], metrics: dict[str, float], started: float, trainer) -> bool:
    stop = config["run"]["stop"]
    return (
        metrics.get("env_steps", 0) >= stop.get("env_steps", float("inf"))
        or metrics.get("iteration", 0) >= stop.get("iterations", float("inf"))
        or time.time() - started >= stop.get("time_s", float("inf"))
        or bool(getattr(trainer, "converged", False))
    )


class MetricsLog:
    """``progress.jsonl`` as it goes, ``progress.csv`` at the end, TensorBoard scalars in ``tb/``."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.rows: list[dict[str, float]] = []
        self.jsonl = open(run_dir / "progress.jsonl", "a")  # noqa: SIM115 (closed in close())
        try:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            self.tb = None

    def log(self, metrics: dict[str, float]) -> None:
        self.rows.append(metrics)
        self.jsonl.write(json.dumps(metrics) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            step = int(metrics.get("env_steps", len(self.rows)))
            for key, value in metrics.items():
                if math.isfinite(value):  # e.g. no episode finished this iteration
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.rows:
            keys = sorted({k for row in self.rows for k in row})
            with open(self.run_dir / "progress.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=keys)
                writer.writeheader()
                writer.writerows(self.rows)


def save_checkpoint(trainer, run_dir: Path, config: dict[str, Any], metrics: dict[str, float]) -> Path:
    path = run_dir / "checkpoints" / f"iter_{int(metrics.get('iteration', 0)):06d}"
    path.mkdir(parents=True, exist_ok=True)
    trainer.save(path)
    write_meta(path, config, metrics, trainer.final_state())
    return path


def run_training(config: dict[str, Any], resume: str | None = None, quiet: bool = False) -> dict[str, Any]:
    from nashrl.algorithms.registry import build_trainer
    from nashrl.analysis.evaluation import summarize

    if resume is not None:
        check_compatible(resume, config)
    if config["algorithm"]["name"] in ("nash_q", "dqn"):
        init_ray(config)
    trainer = build_trainer(config)
    try:
        if resume is not None:
            try:
                trainer.restore(Path(resume))
            except Exception as err:  # RLlib/numpy raise many kinds on damaged files
                raise CheckpointError(
                    f"checkpoint: could not restore {resume!r} ({type(err).__name__}: {err})"
                ) from err
        run_dir = new_run_dir(config)  # only once the checkpoint loaded: nothing half-written
        (run_dir / "experiment.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        summary = _loop(trainer, config, run_dir, quiet)
        # The same start state, seed and length as the final checkpoint's evaluation: the same numbers.
        summary["final_state"] = trainer.final_state()
        summary["evaluation"] = summarize(
            trainer.policy(),
            make_market(config["market"]),
            steps=config["run"]["evaluation_steps"],
            seed=config["run"]["seed"],
            start_state=summary["final_state"],
        )
    finally:
        trainer.stop()
    summary["run_dir"] = str(run_dir)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _loop(trainer, config: dict[str, Any], run_dir: Path, quiet: bool) -> dict[str, Any]:
    from tqdm import tqdm

    from nashrl.analysis.evaluation import scalar_metrics, summarize

    log = MetricsLog(run_dir)
    market = make_market(config["market"])
    eval_every = config["run"]["eval_every"]
    stop = config["run"]["stop"]
    total = stop.get("env_steps")
    bar = tqdm(total=total, unit="step", disable=quiet or not config["run"]["progress"], desc=config["name"])
    started = time.time()
    metrics: dict[str, float] = {}
    last_ckpt = None
    every = config["run"]["checkpoint_every"]
    try:
        while True:
            metrics = trainer.train()
            metrics["time_s"] = time.time() - started
            if eval_every and int(metrics["iteration"]) % eval_every == 0:
                steps = config["run"]["evaluation_steps"]
                ev = summarize(
                    trainer.policy(), market, steps=steps, seed=config["run"]["seed"], start_state=trainer.final_state()
                )
                metrics.update(scalar_metrics(ev))
            log.log(metrics)
            bar.update(int(metrics.get("env_steps", 0)) - bar.n)
            shown = {k: v for k, v in metrics.items() if ("loss" in k or "return" in k) and math.isfinite(v)}
            bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in shown.items()})
            if every and int(metrics["iteration"]) % every == 0:
                last_ckpt = save_checkpoint(trainer, run_dir, config, metrics)
            if stop_reached(config, metrics, started, trainer):
                break
        if last_ckpt is None or last_ckpt.name != f"iter_{int(metrics['iteration']):06d}":
            last_ckpt = save_checkpoint(trainer, run_dir, config, metrics)
    finally:
        bar.close()
        log.close()
    return {"final_metrics": metrics, "checkpoint": str(last_ckpt), "wall_time_s": time.time() - started}
