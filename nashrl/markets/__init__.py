"""Oligopoly markets as PettingZoo parallel environments, registered with RLlib by name.

``make_market({"type": "cournot", ...})`` builds one from a config mapping; ``type`` is a
built-in name or ``"package.module:ClassName"``, a :class:`MarketEnv` subclass of your own
(a plug-in market: theory, training, evaluation and reports work for it unchanged).
:func:`register_rllib_envs` registers every built-in type under ``nashrl/<type>`` and the
generic ``nashrl/market`` (the type in ``env_config``), so an
``AlgorithmConfig.environment("nashrl/cournot", env_config={...})`` can name it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from nashrl.markets.base import MarketEnv
from nashrl.markets.capacity import CapacityMarket
from nashrl.markets.cournot import CournotMarket
from nashrl.markets.demand_shocks import DemandShockMarket
from nashrl.markets.entry_exit import EntryExitMarket
from nashrl.markets.linear_bertrand import LinearBertrandMarket
from nashrl.markets.logit_bertrand import LogitBertrandMarket
from nashrl.markets.psd_entry import PSDEntryMarket
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
        EntryExitMarket,
        PSDEntryMarket,
    )
}


def market_class(kind: Any) -> type[MarketEnv]:
    """A built-in market type, or a user's ``"package.module:ClassName"`` (a MarketEnv subclass)."""
    if isinstance(kind, str) and kind in MARKETS:
        return MARKETS[kind]
    if isinstance(kind, str) and ":" in kind:
        module_name, _, class_name = kind.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ConfigError(f"market.type: cannot import module {module_name!r} ({err})") from err
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, MarketEnv)):
            raise ConfigError(f"market.type: {kind!r} is not a nashrl.markets.MarketEnv subclass")
        return cls
    raise ConfigError(
        f"market.type: expected one of {sorted(MARKETS)} or 'package.module:ClassName' of your own market, got {kind!r}"
    )


def make_market(config: Mapping[str, Any]) -> MarketEnv:
    """Build the market named by ``config["type"]`` with the remaining fields."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"market: expected a mapping with a 'type' field, got {type(config).__name__}")
    return market_class(config.get("type"))(**dict(config))


#: The RLlib env of every market, built-in or plug-in, whose ``env_config`` names the type.
GENERIC_ENV = "nashrl/market"


def rllib_env_name(market_type: str) -> str:
    """``nashrl/<type>`` for built-in markets, :data:`GENERIC_ENV` for plug-in ones."""
    return f"nashrl/{market_type}" if market_type in MARKETS else GENERIC_ENV


def market_from_env(env: Any, env_config: Mapping[str, Any] | None) -> MarketEnv:
    """The market behind an RLlib ``env`` name (``nashrl/<type>`` or ``nashrl/market``) and its config."""
    config = dict(env_config or {})
    if isinstance(env, str) and env.startswith("nashrl/") and env != GENERIC_ENV:
        config["type"] = env.split("/", 1)[1]
    elif env != GENERIC_ENV:
        raise ConfigError(f"env: expected 'nashrl/<market type>' or {GENERIC_ENV!r}, got {env!r}")
    return make_market(config)


def _env_creator(kind: str | None):
    from nashrl.markets.rllib_env import MarketMultiAgentEnv

    def create(cfg):
        config = dict(cfg)
        if kind is not None:
            config["type"] = kind
        return MarketMultiAgentEnv(config)

    return create


def register_rllib_envs() -> None:
    """Register every market with Ray Tune's registry (idempotent; also done on ``import nashrl``)."""
    from ray.tune.registry import register_env

    for kind in MARKETS:
        register_env(rllib_env_name(kind), _env_creator(kind))
    register_env(GENERIC_ENV, _env_creator(None))


__all__ = [
    "GENERIC_ENV",
    "MARKETS",
    "ConfigError",
    "MarketEnv",
    "make_market",
    "market_class",
    "market_from_env",
    "register_rllib_envs",
    "rllib_env_name",
]
