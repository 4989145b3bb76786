"""Oligopoly markets as PettingZoo parallel environments, registered with RLlib by name.

``make_market({"type": "cournot", ...})`` builds one from a config mapping;
:func:`register_rllib_envs` registers every market type under ``nashrl/<type>`` so an
``AlgorithmConfig.environment("nashrl/cournot", env_config={...})`` can name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nashrl.markets.base import MarketEnv
from nashrl.markets.capacity import CapacityMarket
from nashrl.markets.cournot import CournotMarket
from nashrl.markets.demand_shocks import DemandShockMarket
from nashrl.markets.linear_bertrand import LinearBertrandMarket
from nashrl.markets.logit_bertrand import LogitBertrandMarket
from nashrl.markets.segments import SegmentsMarket
from nashrl.markets.stackelberg import StackelbergMarket
from nashrl.markets.validation import ConfigError

MARKETS: dict[str, type[MarketEnv]] = {
    cls.market_type: cls
    for cls in (
        CournotMarket,
        LinearBertrandMarket,
        LogitBertrandMarket,
        StackelbergMarket,
        DemandShockMarket,
        SegmentsMarket,
        CapacityMarket,
    )
}


def make_market(config: Mapping[str, Any]) -> MarketEnv:
    """Build the market named by ``config["type"]`` with the remaining fields."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"market: expected a mapping with a 'type' field, got {type(config).__name__}")
    kind = config.get("type")
    if kind not in MARKETS:
        raise ConfigError(f"market.type: expected one of {sorted(MARKETS)}, got {kind!r}")
    return MARKETS[kind](**dict(config))


def rllib_env_name(market_type: str) -> str:
    return f"nashrl/{market_type}"


def register_rllib_envs() -> None:
    """Register every market with Ray Tune's registry (idempotent)."""
    from ray.tune.registry import register_env

    from nashrl.markets.rllib_env import MarketMultiAgentEnv

    for kind in MARKETS:
        register_env(rllib_env_name(kind), lambda cfg, kind=kind: MarketMultiAgentEnv({**dict(cfg), "type": kind}))


__all__ = ["MARKETS", "ConfigError", "MarketEnv", "make_market", "register_rllib_envs", "rllib_env_name"]
