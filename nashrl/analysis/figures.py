"""Figures for reports: labelled axes, theory reference lines, mean and band across runs.

Every figure is saved as PNG *and* as JSON (``<name>.json``: title, axis labels, each plotted
series' x and y, the reference lines), the data behind the picture for checking and re-use.
Non-finite points are dropped (a metric logged only every few iterations is plotted at the
iterations that have it, with markers when points are few), and a figure whose series are
all empty is not drawn (:class:`EmptyFigure`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nashrl.files import atomic_write_text

#: Up to this many points a series is drawn with markers.
MARKERS_UP_TO = 60


class EmptyFigure(ValueError):
    """Nothing finite to plot."""


@dataclass
class Series:
    label: str
    x: np.ndarray
    y: np.ndarray
    low: np.ndarray | None = None  # band (e.g. min across runs)
    high: np.ndarray | None = None
    steps: bool = False  # a step function (actions over periods)


@dataclass
class Reference:
    """A horizontal theory line (Nash, joint profit, MPE, Delta = 0 or 1, ...); ``firm`` colours
    it like that firm's series."""

    label: str
    y: float
    firm: int | None = None


#: Reference lines without a firm: colour and dash by order.
REFERENCE_STYLES = [("black", "--"), ("tab:red", ":"), ("0.45", "-."), ("tab:purple", (0, (5, 1, 1, 1)))]


def finite(series: Series) -> Series:
    keep = np.isfinite(series.x) & np.isfinite(series.y)
    band = lambda b: None if b is None else np.asarray(b, float)[keep]  # noqa: E731
    return Series(series.label, series.x[keep], series.y[keep], band(series.low), band(series.high), series.steps)


def line_figure(
    path: Path, title: str, xlabel: str, ylabel: str, series: list[Series], references: list[Reference] = ()
) -> str:
    """Draw, save PNG and JSON, and return the Markdown image line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = [
        finite(Series(s.label, np.asarray(s.x, float), np.asarray(s.y, float), s.low, s.high, s.steps)) for s in series
    ]
    drawn = [s for s in drawn if len(s.x)]
    if not drawn:
        raise EmptyFigure(f"{title}: no finite data")
    fig, ax = plt.subplots(figsize=(7, 3.4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, s in enumerate(drawn):
        color = colors[k % len(colors)]
        marker = "o" if len(s.x) <= MARKERS_UP_TO else None
        ax.plot(
            s.x, s.y, label=s.label, color=color, marker=marker, ms=3, drawstyle="steps-post" if s.steps else "default"
        )
        if s.low is not None and s.high is not None:
            ax.fill_between(s.x, s.low, s.high, color=color, alpha=0.2, lw=0)
    plain = 0
    for r in references:
        if r.firm is not None:
            color, style = colors[r.firm % len(colors)], ":"
        else:
            color, style = REFERENCE_STYLES[plain % len(REFERENCE_STYLES)]
            plain += 1
        ax.axhline(r.y, color=color, ls=style, lw=1.2, label=r.label)
    series_data = [
        {
            "label": s.label,
            "x": s.x.tolist(),
            "y": s.y.tolist(),
            **({"low": s.low.tolist(), "high": s.high.tolist()} if s.low is not None else {}),
        }
        for s in drawn
    ]
    references_data = [{"label": r.label, "y": float(r.y)} for r in references]
    return _finish(fig, ax, path, title, xlabel, ylabel, {"series": series_data, "references": references_data})


def _finish(fig, ax, path: Path, title: str, xlabel: str, ylabel: str, data: dict) -> str:
    """Label, save the PNG and its JSON data (title, axis labels and ``data``), return the Markdown line."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    atomic_write_text(
        path.with_suffix(".json"), json.dumps({"title": title, "xlabel": xlabel, "ylabel": ylabel, **data})
    )
    return f"![{title}](figures/{path.name})"


def scatter_figure(
    path: Path, title: str, xlabel: str, ylabel: str, series: list[Series], diagonal: bool = True
) -> str:
    """Points (x, y) per series, with the 45-degree line where ``diagonal`` (learned against
    theory: on the line means equal); PNG and JSON like :func:`line_figure`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = [finite(Series(s.label, np.asarray(s.x, float), np.asarray(s.y, float))) for s in series]
    drawn = [s for s in drawn if len(s.x)]
    if not drawn:
        raise EmptyFigure(f"{title}: no finite data")
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for s in drawn:
        ax.scatter(s.x, s.y, s=8, alpha=0.6, label=s.label)
    if diagonal:
        low = min(min(s.x.min(), s.y.min()) for s in drawn)
        high = max(max(s.x.max(), s.y.max()) for s in drawn)
        ax.plot([low, high], [low, high], color="black", ls="--", lw=1, label="learned = theory")
    series_data = [{"label": s.label, "x": s.x.tolist(), "y": s.y.tolist()} for s in drawn]
    return _finish(fig, ax, path, title, xlabel, ylabel, {"series": series_data, "diagonal": diagonal})


def across_runs(curves: list[tuple[np.ndarray, np.ndarray]], label: str) -> Series:
    """One run: its curve. Several: their mean on the union of x, band min-max (linear
    interpolation within each run's own range; outside it a run does not count)."""
    curves = [(np.asarray(x, float), np.asarray(y, float)) for x, y in curves]
    curves = [(x[np.isfinite(y)], y[np.isfinite(y)]) for x, y in curves]
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return Series(label, np.array([]), np.array([]))
    if len(curves) == 1:
        return Series(label, *curves[0])
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    stacked = np.full((len(curves), len(grid)), np.nan)
    for k, (x, y) in enumerate(curves):
        inside = (grid >= x.min()) & (grid <= x.max())
        stacked[k, inside] = np.interp(grid[inside], x, y)
    with np.errstate(all="ignore"):
        mean = np.nanmean(stacked, 0)
    return Series(
        f"{label} (mean of {len(curves)} runs, band min-max)", grid, mean, np.nanmin(stacked, 0), np.nanmax(stacked, 0)
    )
