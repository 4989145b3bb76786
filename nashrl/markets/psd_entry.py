r"""The two-firm dynamic entry game of Pesendorfer and Schmidt-Dengler (2008, Review of Economic Studies).

Two firms, each active (1) or not (0) every period; the public state is last period's pair of
actions (4 states, no exogenous state). Firm :math:`i`'s flow payoff

.. math::

    \pi_i(a, x) = a_i \big(\theta_1 + \theta_2\, a_j + \theta_3 (1 - x_i)\big)
                  + (1 - a_i)\, \mu\, x_i,

with :math:`x_i = a_{i,t-1}`: monopoly profit :math:`\theta_1 = 1.2`, competition effect
:math:`\theta_2 = -2.4` (duopoly profit :math:`-1.2`), entry cost :math:`\theta_3 = -0.2` (paid when
entering), scrap value :math:`\mu = 0.1` (received when leaving), :math:`\beta = 0.9`, and
normal shocks whose difference is :math:`N(0, 1)` (a probit choice: ``sigma``, the standard
deviation of each action's shock, is :math:`1/\sqrt 2`). These are the values of the
paper's section 7 example as coded in Dearing and Blevins' public replication (``mc-psd2008``),
where the game has three equilibria (two asymmetric, one symmetric); :mod:`nashrl.theory.ccp`
finds them. Set ``shock: gumbel`` for the logit version.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.private_shocks import SHOCK_FIELDS, PrivateShockMarket

#: Each action's normal shock has this standard deviation, so that their difference is N(0, 1).
PSD_SIGMA = 0.5**0.5


class PSDEntryMarket(PrivateShockMarket):
    market_type = "psd_entry"
    action_label = "active"
    metadata = {**PrivateShockMarket.metadata, "name": "psd_entry_v0"}
    FIELDS = SHOCK_FIELDS | {"monopoly_profit", "competition_effect", "entry_cost", "scrap_value"}

    def __init__(self, **params: Any):
        v.only_known(params, self.FIELDS, "market")
        self.theta1 = v.number(params.get("monopoly_profit", 1.2), "market.monopoly_profit")
        self.theta2 = v.number(params.get("competition_effect", -2.4), "market.competition_effect")
        self.theta3 = v.number(params.get("entry_cost", -0.2), "market.entry_cost")
        self.scrap = v.number(params.get("scrap_value", 0.1), "market.scrap_value")
        defaults = {"discount": 0.9, "shock": "normal", "sigma": PSD_SIGMA}
        super().__init__(2, 2, np.ones((1, 1)), {**defaults, **params})

    def flow_profits(self, z: np.ndarray, previous: np.ndarray, joint: np.ndarray) -> np.ndarray:
        joint = np.asarray(joint, dtype=float)
        previous = np.asarray(previous, dtype=float)
        rival = joint[..., ::-1]
        active = self.theta1 + self.theta2 * rival + self.theta3 * (1.0 - previous)
        return joint * active + (1.0 - joint) * self.scrap * previous

    def profit_features(self, z: np.ndarray, previous: np.ndarray, joint: np.ndarray) -> np.ndarray:
        """``[..., 2, 4]``: active: (1, rival active, 1 - x_i, 0); inactive: (0, 0, 0, x_i)."""
        joint = np.asarray(joint, dtype=float)
        previous = np.asarray(previous, dtype=float)
        shape = np.broadcast_shapes(joint.shape, previous.shape)
        joint, previous = np.broadcast_to(joint, shape), np.broadcast_to(previous, shape)
        return np.stack([joint, joint * joint[..., ::-1], joint * (1.0 - previous), (1.0 - joint) * previous], -1)

    def coefficient_field(self, name: str) -> str:
        return name

    def coefficients(self) -> dict[str, float]:
        return {
            "monopoly_profit": self.theta1,
            "competition_effect": self.theta2,
            "entry_cost": self.theta3,
            "scrap_value": self.scrap,
        }

    def state_labels(self) -> list[str]:
        return ["state", "active_last_0", "active_last_1"]

    def state_values(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(state)

    def state_from_values(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values)
