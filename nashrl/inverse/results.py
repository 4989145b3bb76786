"""The result of an estimate: a regression-style table, like statsmodels' results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


@dataclass
class EstimationResult:
    method: str
    names: list[str]
    params: pd.Series
    cov: np.ndarray
    loglik: float
    iterations: int
    converged: bool
    seconds: float
    n_obs: int
    n_markets: int
    se_method: str
    fixed: dict[str, float] = field(default_factory=dict)
    truth: dict[str, float] | None = None  # a simulated panel's true coefficients, when known
    notes: list[str] = field(default_factory=list)

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.clip(np.diag(self.cov), 0.0, None)), index=self.names)

    @property
    def tvalues(self) -> pd.Series:
        return self.params / self.bse

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        q = stats.norm.ppf(1 - alpha / 2)
        return pd.DataFrame({"lower": self.params - q * self.bse, "upper": self.params + q * self.bse})

    def table(self) -> pd.DataFrame:
        ci = self.conf_int()
        out = pd.DataFrame(
            {
                "estimate": self.params,
                "std_err": self.bse,
                "z": self.tvalues,
                "ci_lower": ci["lower"],
                "ci_upper": ci["upper"],
            }
        )
        if self.truth is not None:
            out["true"] = pd.Series(self.truth)
        out.index.name = "coefficient"
        return out

    def summary(self) -> str:
        head = (
            f"method: {self.method}   observations: {self.n_obs:,} ({self.n_markets:,} markets)   "
            f"log (pseudo-)likelihood: {self.loglik:.4f}\n"
            f"iterations: {self.iterations}   converged: {self.converged}   wall time: {self.seconds:.2f} s\n"
            f"standard errors: {self.se_method}"
        )
        if self.fixed:
            head += "\nfixed: " + ", ".join(f"{k} = {v:g}" for k, v in self.fixed.items())
        if not self.converged:
            head += "\nWARNING: the estimator did not converge; the estimates are its last iterate"
        for note in self.notes:
            head += f"\nnote: {note}"
        return head + "\n" + self.table().to_string(float_format=lambda x: f"{x:.4f}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "converged": self.converged,
            "iterations": self.iterations,
            "loglik": self.loglik,
            "seconds": self.seconds,
            "n_obs": self.n_obs,
            "n_markets": self.n_markets,
            "se_method": self.se_method,
            "fixed": self.fixed,
            "notes": self.notes,
            "coefficients": self.table().reset_index().to_dict(orient="records"),
            "cov": self.cov.tolist(),
        }
