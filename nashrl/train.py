"""The training loop behind ``nashrl train``: iterate, log, checkpoint, summarise against theory."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
import time
from pathlib import Path
from typing import Any

import yaml

from nashrl.checkpoints import CheckpointError, check_compatible, write_meta
from nashrl.config import RLLIB_ALGORITHMS
from nashrl.files import atomic_write_text, write_json
from nashrl.markets import make_market
from nashrl.ray_session import init_ray

STATUS = "status.json"


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. non-finite Q-values); the message says what was saved."""


def new_run_dir(config: dict[str, Any]) -> Path:
    """``<output_dir>/<name>/<algo>_seed<k>_<time>_<random>``, created exclusively: two runs
    started in the same second (or on two machines sharing the disk) never share one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    algo, seed = config["algorithm"]["name"], config["run"]["seed"]
    parent = Path(config["run"]["output_dir"]) / config["name"]
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = parent / f"{algo}_seed{seed}_{stamp}_{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def set_status(run_dir: Path, status: str, **extra: Any) -> None:
    """``status.json``: running (also what a killed run leaves), complete, or failed."""
    write_json(run_dir / STATUS, {"status": status, "pid": os.getpid(), "time": time.time(), **extra})


def run_status(run_dir: Path) -> dict[str, Any]:
    """The run's ``status.json`` (``{"status": "unknown"}`` when missing or unreadable)."""
    try:
        return json.loads((Path(run_dir) / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"status": "unknown"}


def stop_reached(config: dict[str, Any], metrics: dict[str, float], started: float, trainer) -> bool:
    stop = config["run"]["stop"]
    return (
        metrics.get("env_steps", 0) >= stop.get("env_steps", float("inf"))
        or metrics.get("iteration", 0) >= stop.get("iterations", float("inf"))
        or time.time() - started >= stop.get("time_s", float("inf"))
        or bool(getattr(trainer, "converged", False))
    )


class MetricsLog:
    """``progress.jsonl`` row by row, ``progress.csv`` every few rows and at the end, TensorBoard
    scalars in ``tb/``: losses, eval/* comparisons with theory, each firm's mean profit, the
    exploration rate, the solver's largest Nash gap and unsolved count, the replay size."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.rows: list[dict[str, float]] = []
        self.jsonl = open(run_dir / "progress.jsonl", "a")  # noqa: SIM115 (closed in close())
        try:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            self.tb = None

    #: progress.csv is rewritten (atomically) every this many rows, and at the end.
    CSV_EVERY = 10

    def log(self, metrics: dict[str, float]) -> None:
        self.rows.append(metrics)
        self.jsonl.write(json.dumps(metrics) + "\n")
        self.jsonl.flush()
        if len(self.rows) % self.CSV_EVERY == 0:
            self.write_csv()
        if self.tb is not None:
            step = int(metrics.get("env_steps", len(self.rows)))
            for key, value in metrics.items():
                if math.isfinite(value):  # e.g. no episode finished this iteration
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        self.write_csv()

    def write_csv(self) -> None:
        if self.rows:
            keys = sorted({k for row in self.rows for k in row})
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
            atomic_write_text(self.run_dir / "progress.csv", text.getvalue())


def save_checkpoint(trainer, run_dir: Path, config: dict[str, Any], metrics: dict[str, float]) -> Path:
    path = run_dir / "checkpoints" / f"iter_{int(metrics.get('iteration', 0)):06d}"
    path.mkdir(parents=True, exist_ok=True)
    trainer.save(path)
    write_meta(path, config, metrics, trainer.final_state())
    return path


def run_training(config: dict[str, Any], resume: str | None = None, quiet: bool = False) -> dict[str, Any]:
    from nashrl.algorithms.registry import build_trainer
    from nashrl.analysis.evaluation import summarize

    resumed = check_compatible(resume, config) if resume is not None else None
    if config["algorithm"]["name"] in RLLIB_ALGORITHMS:
        init_ray(config)
    trainer = build_trainer(config)
    run_dir = None
    try:
        if resume is not None:
            try:
                trainer.restore(Path(resume))
            except Exception as err:  # RLlib/numpy raise many kinds on damaged files
                raise CheckpointError(
                    f"checkpoint: could not restore {resume!r} ({type(err).__name__}: {err})"
                ) from err
        run_dir = new_run_dir(config)  # only once the checkpoint loaded: nothing half-written
        set_status(run_dir, "running", resumed_from=None if resume is None else str(Path(resume).resolve()))
        atomic_write_text(run_dir / "experiment.yaml", yaml.safe_dump(config, sort_keys=False))
        history = _history_until(resume, resumed) if resume is not None else []
        summary = _loop(trainer, config, run_dir, quiet, history)
        # The same start state, seed and length as the final checkpoint's evaluation: the same numbers
        # (those of the last in-training evaluation when it was at the last iteration: reused).
        summary["final_state"] = trainer.final_state()
        last = summary.pop("last_evaluation", None)
        summary["evaluation"] = (
            last
            if last is not None
            else summarize(
                trainer.policy(),
                make_market(config["market"]),
                steps=config["run"]["evaluation_steps"],
                seed=config["run"]["seed"],
                start_state=summary["final_state"],
            )
        )
    except BaseException as err:
        if run_dir is not None:
            set_status(run_dir, "failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        trainer.stop()
    summary["run_dir"] = str(run_dir.resolve())
    write_json(run_dir / "summary.json", summary)
    set_status(run_dir, "complete")
    return summary


def read_progress(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``progress.jsonl``; a missing file is no rows, a torn line (killed run) is skipped."""
    log = Path(run_dir) / "progress.jsonl"
    if not log.is_file():
        return []
    rows = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _history_until(resume: str, meta: dict[str, Any]) -> list[dict[str, float]]:
    """The resumed run's logged rows up to the checkpoint (so logs and ``time_s`` continue)."""
    for parent in Path(resume).resolve().parents:
        if (parent / "progress.jsonl").is_file():
            return [row for row in read_progress(parent) if row.get("iteration", 0) <= meta["iteration"]]
    return []


def diverged(metrics: dict[str, float]) -> str | None:
    """What went non-finite in an iteration's metrics (None when all is finite)."""
    for key, value in metrics.items():
        if key.endswith("non_finite_updates") and value > 0:
            return f"{int(value)} update(s) with non-finite loss or gradients were skipped ({key})"
        if ("loss" in key or "q_taken" in key) and not math.isfinite(value):
            return f"{key} = {value}"
    return None


def _loop(
    trainer, config: dict[str, Any], run_dir: Path, quiet: bool, history: list[dict[str, float]] | None = None
) -> dict[str, Any]:
    from tqdm import tqdm

    from nashrl.analysis.evaluation import scalar_metrics, summarize

    log = MetricsLog(run_dir)
    for row in history or []:  # a resumed run's log up to its checkpoint
        log.log(row)
    offset = float((history or [{}])[-1].get("time_s", 0.0))
    market = make_market(config["market"])
    eval_every = config["run"]["eval_every"]
    stop = config["run"]["stop"]
    total = stop.get("env_steps")
    bar = tqdm(total=total, unit="step", disable=quiet or not config["run"]["progress"], desc=config["name"])
    started = time.time()
    metrics: dict[str, float] = {}
    last_ckpt = None
    last_eval: tuple[int, dict[str, Any]] | None = None  # (iteration, summary) of the latest evaluation
    every = config["run"]["checkpoint_every"]
    try:
        while True:
            metrics = trainer.train()
            metrics["time_s"] = offset + time.time() - started
            problem = diverged(metrics)
            if problem is not None:
                log.log(metrics)
                saved = save_checkpoint(trainer, run_dir, config, metrics)
                raise TrainingError(
                    f"training diverged at iteration {int(metrics['iteration'])}: {problem}; the weights of the "
                    f"last finite update are saved in {saved.resolve()}; expected finite Q-values: lower "
                    "algorithm.lr, scale rewards (market.normalise_rewards) or clip gradients (algorithm.grad_clip)"
                )
            due = eval_every and int(metrics["iteration"]) % eval_every == 0
            if due and not getattr(trainer, "reports_theory", False):  # RLlib trainers report eval/* themselves
                steps = config["run"]["evaluation_steps"]
                ev = summarize(
                    trainer.policy(), market, steps=steps, seed=config["run"]["seed"], start_state=trainer.final_state()
                )
                metrics.update(scalar_metrics(ev))
                last_eval = (int(metrics["iteration"]), ev)
            log.log(metrics)
            bar.update(int(metrics.get("env_steps", 0)) - bar.n)
            shown = {k: v for k, v in metrics.items() if ("loss" in k or "return" in k) and math.isfinite(v)}
            bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in shown.items()})
            if every and int(metrics["iteration"]) % every == 0:
                last_ckpt = save_checkpoint(trainer, run_dir, config, metrics)
            if stop_reached(config, metrics, started - offset, trainer):
                break
        if last_ckpt is None or last_ckpt.name != f"iter_{int(metrics['iteration']):06d}":
            last_ckpt = save_checkpoint(trainer, run_dir, config, metrics)
    finally:
        bar.close()
        log.close()
    # Absolute, so the printed path works from anywhere (Algorithm.from_checkpoint needs one).
    out = {"final_metrics": metrics, "checkpoint": str(last_ckpt.resolve()), "wall_time_s": time.time() - started}
    if getattr(trainer, "reports_theory", False):  # evaluated by the trainer's own callback
        last_eval = trainer.last_evaluation(config["run"]["evaluation_steps"], config["run"]["seed"])
    if last_eval is not None and last_eval[0] == int(metrics["iteration"]):
        out["last_evaluation"] = last_eval[1]
    return out
