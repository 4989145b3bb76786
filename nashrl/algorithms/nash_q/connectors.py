"""Env-to-module connector piece: tell the shared Nash-Q module which firm each row is.

All firms map to one RLModule that holds every firm's Q over joint actions; a row's
observation is the public market state, so the module also needs the firm index to
play that firm's part of the equilibrium. This piece adds the column ``firm_index``
(``firm_3`` -> 3), batched with the observations by RLlib's default pieces.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.connectors.connector_v2 import ConnectorV2

FIRM_INDEX = "firm_index"


def firm_index(agent_id: str) -> int:
    prefix, _, number = str(agent_id).rpartition("_")
    if prefix != "firm" or not number.isdigit():
        raise ValueError(f"agent id: expected 'firm_<i>', got {agent_id!r}")
    return int(number)


class AddFirmIndex(ConnectorV2):
    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, explore=None, shared_data=None, **kwargs):
        for sa_episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=True):
            self.add_batch_item(
                batch, FIRM_INDEX, item_to_add=firm_index(sa_episode.agent_id), single_agent_episode=sa_episode
            )
        return batch
