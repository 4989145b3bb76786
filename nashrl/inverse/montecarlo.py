r"""Monte Carlo of the inverse estimators: R replications of simulate + estimate, over Ray.

``nashrl montecarlo CONFIG --replications R --markets M [--periods T] [--methods ...] --out DIR``:
the MPE of the config's market is computed once (its first equilibrium, the data-generating
process; beyond the exact solver's size the symmetric MPE of exchangeable firms,
:mod:`nashrl.theory.symmetric_entry`); replication :math:`r` simulates a panel with seed
:math:`r` from the ergodic distribution (beyond that size: from the market's initial states after
``BURN_IN`` unrecorded periods) and runs every method on it (default: every method that applies
to the game), as a Ray task (one CPU; a local Ray instance, or the
cluster at ``RAY_ADDRESS``; ``--workers K`` keeps at most K in flight). Each finished
replication is appended to ``DIR/replications.jsonl`` at once, and the design (market, markets,
periods, fixed coefficients) to ``DIR/design.json`` before the first, so ``--resume`` continues an
interrupted run: it refuses another design by name, runs the seeds still missing, and runs a
method the log lacks on the seeds already there (the same panels: a panel is a function of its
seed), so estimators can be added to a Monte Carlo and compared replication by replication;
``--tabulate`` runs nothing and reports what is logged (each method over the seeds it has).
``DIR/montecarlo.md`` and ``.json`` report, over seeds :math:`0..R-1`, per method and
coefficient the mean estimate, bias, sd and MSE (:math:`\text{bias}^2 + \text{sd}^2`, population
sd) over the replications that converged, how many did not (left out of the moments, counted),
and the mean wall time per estimate.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from nashrl.files import atomic_write_text, write_json
from nashrl.markets.validation import ConfigError

LOG = "replications.jsonl"
DESIGN = "design.json"
#: What must match for ``--resume`` to add to a Monte Carlo.
DESIGN_KEYS = ("market", "markets", "periods", "fixed")


#: Games too large for the exact ergodic distribution start from the market's initial states and
#: play this many unrecorded periods first.
BURN_IN = 100


def sampling(market) -> dict[str, Any]:
    """How a replication draws its panel's states (``simulate``'s ``initial`` and ``burn_in``)."""
    if not market.enumerable:
        return {"initial": "market", "burn_in": BURN_IN}
    return {"initial": "ergodic", "burn_in": 0}


def replicate(market_config: dict[str, Any], ccp: np.ndarray, seed: int, markets: int, periods: int, methods, fix):
    """One replication: simulate with ``seed`` and estimate by every method (never raises: a
    failure is recorded as not converged with its message)."""
    from nashrl.inverse import InverseModel, estimate
    from nashrl.panels import simulate
    from nashrl.threads import set_thread_budget

    set_thread_budget(1)
    model = InverseModel.from_market_config(market_config, fix)
    panel = simulate(model.market, ccp, markets=markets, periods=periods, seed=seed, **sampling(model.market))
    out = {"seed": seed, "results": {}}
    for method in methods:
        start = time.perf_counter()
        try:
            result = estimate(model, panel, method=method)
            entry = {
                "converged": bool(result.converged),
                "params": result.params.to_dict(),
                "bse": result.bse.to_dict(),
                "iterations": result.iterations,
            }
        except (ConfigError, ValueError, RuntimeError, ArithmeticError) as err:
            entry = {"converged": False, "error": f"{type(err).__name__}: {err}"}
        entry["seconds"] = time.perf_counter() - start
        out["results"][method] = entry
    return out


def read_log(path: Path) -> dict[int, dict[str, Any]]:
    """The logged replications by seed; a seed logged on several lines (methods added by a later
    ``--resume``) has the union of their results."""
    rows: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return rows
    for k, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            seed, results = int(row["seed"]), dict(row["results"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ConfigError(
                f"--resume: {path} line {k + 1} is not a replication ({type(err).__name__}: {err}); "
                "move it away to start afresh"
            ) from err
        rows.setdefault(seed, {"seed": seed, "results": {}})["results"].update(results)
    return rows


def check_design(out: Path, design: dict[str, Any]) -> None:
    """Refuse to resume ``out`` with another design, naming the first field that differs."""
    path = out / DESIGN
    if not path.is_file():  # folders written before design.json: their montecarlo.json holds it
        path = out / "montecarlo.json"
    if not path.is_file():
        raise ConfigError(f"--resume: {out} has no {DESIGN}, so its design cannot be checked; use another --out")
    logged = json.loads(path.read_text())
    for key in DESIGN_KEYS:
        if json.dumps(logged.get(key), sort_keys=True) != json.dumps(design[key], sort_keys=True):
            raise ConfigError(
                f"--resume: {out} was run with {key}={logged.get(key)!r}, this run asks {key}={design[key]!r}; "
                "expected the same design (or another --out)"
            )


def summarize(rows: list[dict[str, Any]], truth: dict[str, float], methods: list[str]) -> dict[str, Any]:
    """Per method and coefficient: mean, bias, sd, MSE over converged replications; counts and time."""
    table: dict[str, Any] = {}
    for method in methods:
        entries = [r["results"][method] for r in rows if method in r["results"]]
        ok = [e for e in entries if e["converged"]]
        coefficients = {}
        for name, true in truth.items():
            x = np.array([e["params"][name] for e in ok if name in e["params"]])
            if len(x) == 0:
                continue
            bias, sd = float(x.mean() - true), float(x.std())
            se = [e["bse"][name] for e in ok if name in e["bse"]]
            coefficients[name] = {
                "truth": true,
                "mean": float(x.mean()),
                "bias": bias,
                "sd": sd,
                "mse": bias**2 + sd**2,
                "mean_se": float(np.mean(se)) if se else None,
            }
        table[method] = {
            "replications": len(entries),
            "converged": len(ok),
            "not_converged": len(entries) - len(ok),
            "mean_seconds": float(np.mean([e["seconds"] for e in entries])) if entries else None,
            "coefficients": coefficients,
        }
    return table


def markdown(title: str, table: dict[str, Any]) -> str:
    lines = [f"# {title}", ""]
    for method, t in table.items():
        lines += [
            f"## {method}: {t['converged']} of {t['replications']} replications converged, "
            f"{t['mean_seconds']:.2f} s per estimate",
            "",
            "| coefficient | truth | mean | bias | sd | MSE | mean SE |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, c in t["coefficients"].items():
            se = "-" if c["mean_se"] is None else f"{c['mean_se']:.3f}"
            cells = [
                f"{c['truth']:g}",
                f"{c['mean']:.3f}",
                f"{c['bias']:+.3f}",
                f"{c['sd']:.3f}",
                f"{c['mse']:.4f}",
                se,
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def run_montecarlo(
    config: dict[str, Any],
    replications: int,
    markets: int,
    out_dir: str | Path,
    periods: int = 1,
    methods: list[str] | None = None,
    fix: dict[str, float] | None = None,
    resume: bool = False,
    workers: int | None = None,
    tabulate: bool = False,
) -> Path:
    """Run (or with ``tabulate`` only report) a Monte Carlo into ``out_dir``; see the module doc.
    ``tabulate`` runs nothing: it reports the logged replications (seeds below ``replications``) of
    ``methods`` (default: every method in the log), each over the seeds it has."""
    import ray

    from nashrl.inverse import METHODS, InverseModel
    from nashrl.inverse.model import check_enumerable
    from nashrl.panels import policy_for_panel
    from nashrl.ray_session import init_ray

    model = InverseModel.from_market_config(config["market"], fix)  # before Ray: bad configs fail fast
    out = Path(out_dir)
    log = out / LOG
    if tabulate and not log.is_file():
        raise ConfigError(f"--tabulate: {out} holds no {LOG}; expected the folder of a Monte Carlo")
    logged = read_log(log) if resume or tabulate else {}
    if methods is None and tabulate:  # the methods in the log
        methods = [m for m in METHODS if any(m in r["results"] for r in logged.values())]
    elif methods is None:  # every method that applies to this game
        methods = [m for m in METHODS if m == "deep" or model.market.enumerable]
    methods = list(dict.fromkeys(methods))
    for method in methods:
        if method not in METHODS:
            raise ConfigError(f"--methods: expected some of {list(METHODS)}, got {method!r}")
        if method != "deep":
            check_enumerable(model, method)
    if replications < 1 or markets < 2 or periods < 1:
        got = f"{replications}, {markets}, {periods}"
        raise ConfigError(f"montecarlo: expected replications >= 1, markets >= 2, periods >= 1; got {got}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers: expected a positive integer, got {workers!r}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {str(out)!r} is a file; expected a folder")
    design = {"market": dict(config["market"]), "markets": markets, "periods": periods, "fixed": model.fixed}
    if log.exists() and not (resume or tabulate):
        raise ConfigError(f"--out: {out} already holds a Monte Carlo ({LOG}); use --resume or another folder")
    if log.exists():
        check_design(out, design)
    todo = {s: [m for m in methods if m not in logged.get(s, {}).get("results", {})] for s in range(replications)}
    todo = {s: missing for s, missing in todo.items() if missing and not tabulate}
    out.mkdir(parents=True, exist_ok=True)
    if not log.exists() or not (out / DESIGN).is_file():  # checked above when there is a log
        write_json(out / DESIGN, design)
    ccp, policy = policy_for_panel(model.market, "mpe", dict(config["market"]))
    started = time.perf_counter()
    if todo:
        init_ray(config)
        task = ray.remote(num_cpus=1)(replicate)
        queue = list(todo.items())
        limit = workers or len(queue)
        pending: list[Any] = []
        with open(log, "a", encoding="utf-8") as handle:
            while queue or pending:
                while queue and len(pending) < limit:
                    seed, missing = queue.pop(0)
                    pending.append(task.remote(design["market"], ccp, seed, markets, periods, missing, fix))
                ready, pending = ray.wait(pending, num_returns=1)
                row = ray.get(ready[0])
                handle.write(json.dumps(row) + "\n")
                handle.flush()
                logged.setdefault(row["seed"], {"seed": row["seed"], "results": {}})["results"].update(row["results"])
    rows = [logged[s] for s in range(replications) if s in logged]
    truth = {n: model.market.coefficients()[n] for n in model.free}
    table = summarize(rows, truth, methods)
    meta = {
        **design,
        "replications": len(rows),
        "data": {"policy": policy, **sampling(model.market)},
        "wall_seconds_this_run": time.perf_counter() - started,
        "ray_cpus": _cluster_cpus(),
        "workers": workers,
    }
    write_json(out / "montecarlo.json", {**meta, "table": table})
    settings = ", ".join(f"{k}={v}" for k, v in config["market"].items() if k != "type")
    title = (
        f"Monte Carlo: {config['market'].get('type')} ({settings}), {markets} markets x {periods} periods, "
        f"{len(rows)} replications"
    )
    path = out / "montecarlo.md"
    atomic_write_text(path, markdown(title, table))
    return path


def _cluster_cpus() -> float | None:
    import ray

    return float(ray.cluster_resources().get("CPU", 0)) if ray.is_initialized() else None
