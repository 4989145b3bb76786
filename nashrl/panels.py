r"""Panels of play in games with private shocks: simulated (``nashrl simulate``) or the user's own.

A panel is long-format, one row per market, period and firm:

========================  =====================================================================
column                    meaning
========================  =====================================================================
``market``                market id (int, 0..M-1)
``period``                period (int, 0..T-1)
``firm``                  firm index (int, 0..N-1)
state columns             the public state of the market-period, in the market's units: for
                          ``entry_exit`` ``market_size`` (1..S) and ``active_last_0`` ..
                          ``active_last_{N-1}`` (0/1); for ``psd_entry`` ``active_last_0``,
                          ``active_last_1``
``action``                the firm's action (int; 1 = active in the entry games)
``profit`` (optional)     the realised profit, shock included (``--profits``)
========================  =====================================================================

Parquet files carry the metadata under the key ``nashrl`` of the schema metadata; CSV files on
a first line ``# nashrl: {json}``. The metadata holds the market config, the true
coefficients, the policy (``mpe:k`` with the equilibrium's fixed-point residual, or a
checkpoint), the seed and the number of markets, periods and firms.

Simulation is vectorised over markets: each period draws every market's actions from the
policy's conditional choice probabilities at the current state (inverse CDF) and the next
exogenous state from its chain. The realised shock of the chosen action, when profits are asked
for, is drawn from its distribution *given that action was chosen* (logit: a centred Gumbel draw
minus :math:`\sigma \ln P(a \mid x)`; probit: the truncated normal of the shock difference),
which is exact for any CCP policy and needs no choice values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from nashrl.files import atomic_write
from nashrl.markets.validation import ConfigError

PANEL_VERSION = 1
BASE_COLUMNS = ("market", "period", "firm")
MAX_ROWS = 500_000_000


def draw_from(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of ``probs [..., A]`` by inverse CDF."""
    cdf = np.cumsum(probs, -1)
    u = rng.random(probs.shape[:-1])[..., None]
    return np.minimum((u > cdf).sum(-1), probs.shape[-1] - 1)


def chosen_shocks(market, chosen_prob: np.ndarray, action: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The realised (mean-zero) shock of each chosen action, given it was chosen with probability ``chosen_prob``."""
    p = np.clip(chosen_prob, 1e-300, 1.0)
    if market.shock == "gumbel":
        g = rng.gumbel(-np.euler_gamma * market.sigma, market.sigma, size=p.shape)
        return g - market.sigma * np.log(p)
    # Probit, two actions: eta = e1 - e0 ~ N(0, 2 s^2), xi = e1 + e0 ~ N(0, 2 s^2) independent;
    # action 1 <=> eta > -delta with P(1) = Phi(delta / (s sqrt 2)).
    scale = market.sigma * np.sqrt(2.0)
    p1 = np.where(action == 1, p, 1.0 - p)
    delta = scale * stats.norm.ppf(np.clip(p1, 1e-15, 1 - 1e-15))
    lower = np.where(action == 1, -delta / scale, -np.inf)
    upper = np.where(action == 1, np.inf, -delta / scale)
    eta = scale * stats.truncnorm.rvs(lower, upper, random_state=rng, size=p.shape)
    xi = rng.normal(0.0, scale, size=p.shape)
    return np.where(action == 1, (eta + xi) / 2, (xi - eta) / 2)


def simulate(
    market,
    ccp: np.ndarray,
    markets: int,
    periods: int,
    seed: int = 0,
    profits: bool = False,
    initial: str = "ergodic",
    burn_in: int = 0,
) -> pd.DataFrame:
    """A long-format panel of ``markets`` x ``periods`` x N rows of play by CCPs ``ccp [N, S, A]``.
    ``initial``: ``"ergodic"`` (states drawn from the stationary distribution of ``ccp``) or
    ``"market"`` (the market's own initial-state rule); ``burn_in`` periods are played first and
    not recorded (with ``market``: draws from near the ergodic distribution of games too large
    for the exact one)."""
    import torch

    from nashrl.theory.ccp import CCPGame, stationary

    n = market.n_firms
    if markets < 1 or periods < 1:
        raise ConfigError(f"simulate: expected markets >= 1 and periods >= 1, got {markets} and {periods}")
    if markets * periods * n > MAX_ROWS:
        raise ConfigError(f"simulate: {markets * periods * n:,} rows; expected at most {MAX_ROWS:,}")
    if initial not in ("ergodic", "market"):
        raise ConfigError(f"simulate --initial: expected 'ergodic' or 'market', got {initial!r}")
    if burn_in < 0:
        raise ConfigError(f"simulate --burn-in: expected periods >= 0, got {burn_in}")
    if initial == "ergodic" and not market.enumerable:
        raise ConfigError(
            f"simulate --initial ergodic: the exact ergodic distribution enumerates {market.n_states:,} states' "
            "joint actions; use --initial market --burn-in K"
        )
    rng = np.random.default_rng(seed)
    states_all = market.state_array()
    if initial == "ergodic":
        game = CCPGame.of(market)
        mu = stationary(game.transition(game.joint(torch.as_tensor(ccp, dtype=torch.float64)))).numpy()
        x = draw_from(np.broadcast_to(mu, (markets, len(mu))), rng)
    else:
        x = market.state_index(np.stack([market.initial_state(rng) for _ in range(markets)]))
    state_cols = np.zeros((periods, markets, states_all.shape[1]), dtype=np.int64)
    actions = np.zeros((periods, markets, n), dtype=np.int64)
    realised = np.zeros((periods, markets, n)) if profits else None
    for step in range(burn_in + periods):
        state = states_all[x]  # [M, 1 + N]
        probs = np.transpose(ccp[:, x, :], (1, 0, 2))  # [M, N, A]
        a = draw_from(probs, rng)
        t = step - burn_in
        if t >= 0:
            state_cols[t] = state
            actions[t] = a
            if profits:
                chosen = np.take_along_axis(probs, a[..., None], -1)[..., 0]
                realised[t] = market.stage_profits(state, a) + chosen_shocks(market, chosen, a, rng)
        x = market.state_index(market.transitions(state, a, rng))  # the market's own dynamics, all markets at once
    values = market.state_values(state_cols)  # [T, M, 1 + N] in the market's units
    labels = market.state_labels()
    keep = [k for k, lab in enumerate(labels) if lab != "state"]  # psd_entry has no exogenous state
    frame = {
        "market": np.broadcast_to(np.arange(markets)[None, :, None], (periods, markets, n)),
        "period": np.broadcast_to(np.arange(periods)[:, None, None], (periods, markets, n)),
        "firm": np.broadcast_to(np.arange(n)[None, None, :], (periods, markets, n)),
    }
    for k in keep:
        frame[labels[k]] = np.broadcast_to(values[:, :, k : k + 1], (periods, markets, n))
    frame["action"] = actions
    if profits:
        frame["profit"] = realised
    columns = {k: np.ascontiguousarray(np.transpose(v, (1, 0, 2))).reshape(-1) for k, v in frame.items()}
    return pd.DataFrame(columns)


def state_columns(market) -> list[str]:
    return [lab for lab in market.state_labels() if lab != "state"]


def write_panel(panel: pd.DataFrame, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write ``panel`` as Parquet (``.parquet``) or CSV (``.csv``), atomically, with ``metadata``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"--out: no folder {str(path.parent)!r} to write {path.name!r} into")
    meta = {"panel_version": PANEL_VERSION, **metadata}
    text = json.dumps(meta, default=float)
    if path.suffix == ".parquet":
        table = pa.Table.from_pandas(panel, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"nashrl": text.encode()})
        with atomic_write(path, binary=True) as handle:
            pq.write_table(table, handle)
    elif path.suffix == ".csv":
        with atomic_write(path) as handle:
            handle.write(f"# nashrl: {text}\n")
            panel.to_csv(handle, index=False)
    else:
        raise ConfigError(f"--out: expected a .parquet or .csv file name, got {str(path)!r}")
    return path


def read_panel(path: str | Path, market=None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read and check a panel (any of the columns above; metadata optional for the user's own data).
    With ``market`` the state columns and value ranges are checked against it. Errors name the column."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"panel: no file {str(path)!r}")
    meta: dict[str, Any] = {}
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            raw = (table.schema.metadata or {}).get(b"nashrl")
            meta = json.loads(raw) if raw else {}
            panel = table.to_pandas()
        elif path.suffix == ".csv":
            with open(path, encoding="utf-8") as handle:
                first = handle.readline()
            if first.startswith("# nashrl: "):
                meta = json.loads(first[len("# nashrl: ") :])
            panel = pd.read_csv(path, comment="#")
        else:
            raise ConfigError(f"panel: expected a .parquet or .csv file, got {str(path)!r}")
    except (OSError, ValueError, UnicodeDecodeError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"panel: cannot read {str(path)!r} ({type(err).__name__}: {err})") from err
    check_panel(panel, market)
    return panel, meta


def check_panel(panel: pd.DataFrame, market=None) -> None:
    """The checks of :func:`read_panel` on a DataFrame (errors name the column)."""
    required = [*BASE_COLUMNS, *(state_columns(market) if market is not None else []), "action"]
    for column in required:
        if column not in panel.columns:
            raise ConfigError(f"panel: missing column {column!r}; expected columns {required}")
        values = panel[column]
        if values.isna().any():
            raise ConfigError(f"panel.{column}: {int(values.isna().sum())} missing values")
        if not pd.api.types.is_integer_dtype(values):
            raise ConfigError(f"panel.{column}: expected integers, got {values.dtype}")
    if "profit" in panel.columns and not np.isfinite(panel["profit"].to_numpy(dtype=float)).all():
        raise ConfigError("panel.profit: expected finite numbers")
    if market is not None:
        _check_ranges(panel, market)
    if panel.duplicated(list(BASE_COLUMNS)).any():
        raise ConfigError("panel: duplicated (market, period, firm) rows")


def _check_ranges(panel: pd.DataFrame, market) -> None:
    n = market.n_firms
    if panel["firm"].min() < 0 or panel["firm"].max() >= n:
        raise ConfigError(f"panel.firm: expected firm indices 0..{n - 1}")
    if panel["action"].min() < 0 or panel["action"].max() >= market.n_actions:
        raise ConfigError(f"panel.action: expected actions 0..{market.n_actions - 1}")
    lows = market.state_values(np.zeros(1 + n, dtype=np.int64))
    highs = market.state_values(np.concatenate([[market.n_exo - 1], np.full(n, market.n_actions - 1)]))
    for k, label in enumerate(market.state_labels()):
        if label in panel.columns:
            col = panel[label]
            if col.min() < lows[k] or col.max() > highs[k]:
                raise ConfigError(f"panel.{label}: expected values in [{lows[k]}, {highs[k]}]")
    sizes = panel.groupby(["market", "period"]).size()
    if (sizes != n).any():
        raise ConfigError(
            f"panel: expected {n} firm rows per market and period, found {int(sizes.min())}..{int(sizes.max())}"
        )


def policy_for_panel(market, policy: str, market_config: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The CCPs ``[N, S, A]`` to simulate and their description for the metadata: ``mpe`` /
    ``mpe:k`` (the k-th MPE :func:`nashrl.theory.ccp.solve_mpe` finds) or a checkpoint directory
    trained on the same market."""
    from nashrl.theory.ccp import cached_mpe

    if policy == "mpe" and not market.enumerable:
        # Too large for the full-state solver: firms that are exchangeable have a symmetric MPE
        # on reduced states (refused, naming the field, when they are not).
        from nashrl.theory.symmetric_entry import full_ccp, symmetric_mpe

        eq = symmetric_mpe(market)
        return full_ccp(market, eq), {"kind": "symmetric_mpe", "fixed_point_residual": eq.residual}
    if policy == "mpe" or policy.startswith("mpe:"):
        index_text = policy.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise ConfigError(f"--policy: expected mpe, mpe:<k> or a checkpoint directory, got {policy!r}")
        found = cached_mpe(market)["equilibria"]
        k = int(index_text)
        if k >= len(found):
            raise ConfigError(f"--policy: {policy} but {len(found)} MPE found (mpe:0..mpe:{len(found) - 1})")
        eq = found[k]
        return eq.ccp, {"kind": "mpe", "equilibrium": k, "of": len(found), "fixed_point_residual": eq.residual}
    from nashrl.analysis.ccp_eval import policy_ccps
    from nashrl.analysis.report import load_policy
    from nashrl.checkpoints import experiment_of, verify

    if not Path(policy).is_dir():
        raise ConfigError(f"--policy: expected mpe, mpe:<k> or a checkpoint directory, got {policy!r}")
    verify(policy)
    config, _ = experiment_of(policy)
    if config["market"] != market_config:
        differ = sorted(
            k for k in set(config["market"]) | set(market_config) if config["market"].get(k) != market_config.get(k)
        )
        raise ConfigError(f"--policy: the checkpoint was trained on other market settings ({', '.join(differ)})")
    ccp, how = policy_ccps(load_policy(policy, config), market)
    return ccp, {"kind": "checkpoint", "checkpoint": str(Path(policy).resolve()), "ccp_estimate": how}


def panel_metadata(market, market_config: dict[str, Any], policy: dict[str, Any], **extra: Any) -> dict[str, Any]:
    from nashrl import __version__

    return {
        "nashrl_version": __version__,
        "market": market_config,
        "true_coefficients": market.coefficients(),
        "discount": market.discount,
        "shock": market.shock,
        "sigma": market.sigma,
        "n_firms": market.n_firms,
        "state_columns": state_columns(market),
        "policy": policy,
        **extra,
    }
