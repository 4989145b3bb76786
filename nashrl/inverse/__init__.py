"""Inverse Nash RL: estimate firms' profit coefficients from observed play.

``estimate(model, panel, method=...)`` with ``model`` an :class:`InverseModel` or a market config
(mapping), ``panel`` a DataFrame or a path (see :mod:`nashrl.panels` for the schema); returns an
:class:`EstimationResult` (``.params``, ``.bse``, ``.summary()``). Methods: ``two_step``,
``npl``, ``mle`` (:mod:`nashrl.inverse.estimators`, which enumerate the states and work on the
panel's choice counts) and ``deep`` (:mod:`nashrl.inverse.deep`, neural first stage and values,
on the observations themselves, for games too large to enumerate).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nashrl.inverse.deep import DeepSettings, estimate_deep
from nashrl.inverse.estimators import ESTIMATORS, run_estimator
from nashrl.inverse.model import (
    InverseModel,
    check_enumerable,
    check_identification,
    check_variation,
    choice_counts,
)
from nashrl.inverse.results import EstimationResult

METHODS = (*ESTIMATORS, "deep")


def estimator_data(method: str, model: InverseModel, panel: pd.DataFrame):
    """What ``method`` reads: the observations themselves (deep) or their choice counts."""
    return panel if method == "deep" else choice_counts(model, panel)


def run_method(
    method: str, model: InverseModel, data, first_stage: str = "auto", deep_settings: DeepSettings | None = None
) -> dict[str, Any]:
    """Run ``method`` on :func:`estimator_data`'s ``data``."""
    from nashrl.markets.validation import ConfigError

    if method not in METHODS:
        raise ConfigError(f"--method: expected one of {list(METHODS)}, got {method!r}")
    if method != "deep":
        return run_estimator(method, model, data, first_stage)
    if first_stage != "auto":
        raise ConfigError("--first-stage: the deep estimator fits its own neural first stage; leave it at auto")
    return estimate_deep(model, data, deep_settings)


def estimate(
    model: InverseModel | Mapping[str, Any],
    panel: pd.DataFrame | str | Path,
    method: str = "npl",
    fix: Mapping[str, float] | None = None,
    first_stage: str = "auto",
    deep_settings: DeepSettings | Mapping[str, Any] | None = None,
) -> EstimationResult:
    """Estimate ``model``'s free coefficients from ``panel`` by ``method`` (see the module);
    ``deep_settings``: :class:`DeepSettings` or a mapping of its fields (``deep`` only)."""
    from nashrl.panels import check_panel, read_panel

    if not isinstance(model, InverseModel):
        model = InverseModel.from_market_config(model, fix)
    if deep_settings and method != "deep":
        from nashrl.markets.validation import ConfigError

        raise ConfigError(f"--deep: settings of the deep estimator given with --method {method}")
    if not isinstance(deep_settings, DeepSettings):
        deep_settings = DeepSettings.from_mapping(deep_settings)
    truth = None
    if isinstance(panel, (str, Path)):
        panel, meta = read_panel(panel, model.market)
        truth = meta.get("true_coefficients")
    else:
        check_panel(panel, model.market)
    if method == "deep":
        check_variation(model, panel)
    elif method in METHODS:
        check_enumerable(model, method)
        check_identification(model, choice_counts(model, panel), panel)
    out = run_method(method, model, estimator_data(method, model, panel), first_stage, deep_settings)
    notes = [out["note"]] if out.get("note") else []
    return EstimationResult(
        method=method,
        names=list(model.free),
        params=pd.Series(out["theta"].numpy(), index=model.free),
        cov=np.asarray(out["cov"]),
        loglik=out["loglik"],
        iterations=out["iterations"],
        converged=out["converged"],
        seconds=out["seconds"],
        n_obs=len(panel),
        n_markets=int(panel["market"].nunique()),
        se_method=out["se_method"],
        fixed=dict(model.fixed),
        truth={k: truth[k] for k in model.free if k in truth} if truth else None,
        notes=notes,
    )


def bootstrap(
    result: EstimationResult,
    model: InverseModel | Mapping[str, Any],
    panel: pd.DataFrame,
    replications: int,
    seed: int = 0,
    first_stage: str = "auto",
    parallel: bool | None = None,
    deep_settings: DeepSettings | None = None,
) -> EstimationResult:
    """``result`` with bootstrap standard errors: markets resampled with replacement
    ``replications`` times, the estimator run on each; replications where it does not converge are
    counted in the notes and left out. ``parallel``: one Ray task per replication (on the running
    Ray instance or cluster; ``None``: when Ray is initialized). The resamples are drawn here, in
    order, so the result does not depend on where or in which order the replications run."""
    from nashrl.markets.validation import ConfigError

    if not isinstance(model, InverseModel):
        model = InverseModel.from_market_config(model, result.fixed)
    if replications < 2:
        raise ConfigError(f"--bootstrap: expected at least 2 replications, got {replications}")
    rng = np.random.default_rng(seed)
    markets = panel["market"].unique()
    base = {m: rows for m, rows in panel.groupby("market", sort=False)}
    resamples = []
    for _ in range(replications):
        chosen = rng.choice(markets, size=len(markets), replace=True)
        sample = pd.concat([base[m].assign(market=k) for k, m in enumerate(chosen)], ignore_index=True)
        resamples.append(estimator_data(result.method, model, sample))
    if parallel is None:
        import ray

        parallel = ray.is_initialized()
    if parallel:
        import ray

        task = ray.remote(num_cpus=1)(bootstrap_draw)
        shared = ray.put(model)
        thetas = ray.get([task.remote(result.method, shared, data, first_stage, deep_settings) for data in resamples])
    else:
        thetas = [bootstrap_draw(result.method, model, data, first_stage, deep_settings) for data in resamples]
    draws = [theta for theta in thetas if theta is not None]
    failed = replications - len(draws)
    if len(draws) < 2:
        raise ConfigError(f"--bootstrap: only {len(draws)} of {replications} replications converged")
    result.cov = np.cov(np.array(draws), rowvar=False)
    where = ", parallel over Ray" if parallel else ""
    result.se_method = f"bootstrap over markets, {len(draws)} replications{where}"
    if failed:
        result.notes.append(f"{failed} of {replications} bootstrap replications did not converge (left out)")
    return result


def bootstrap_draw(
    method: str, model: InverseModel, data, first_stage: str, deep_settings: DeepSettings | None = None
) -> np.ndarray | None:
    """The estimate of one bootstrap resample (:func:`estimator_data` of it), None when it fails or
    does not converge."""
    from nashrl.markets.validation import ConfigError
    from nashrl.threads import set_thread_budget

    set_thread_budget(1)  # one core per replication (a Ray task's share)
    try:
        out = run_method(method, model, data, first_stage, deep_settings)
    except ConfigError:
        return None
    return out["theta"].numpy() if out["converged"] else None


__all__ = ["METHODS", "DeepSettings", "EstimationResult", "InverseModel", "bootstrap", "estimate"]
