"""Router names used by the CLI and the config (like RouteLLM's ROUTER_CLS)."""

from __future__ import annotations

from switchyard.router.base import Router
from switchyard.router.baselines import AlwaysRouter, NeverRouter, OffRouter, RandomRouter
from switchyard.router.errors import RoutingError
from switchyard.router.learned import LearnedRouter

ROUTERS: dict[str, type[Router]] = {
    "mlp": LearnedRouter,
    "random": RandomRouter,
    "always": AlwaysRouter,
    "never": NeverRouter,
    "off": OffRouter,
}


def router_class(name: str) -> type[Router]:
    try:
        return ROUTERS[name]
    except KeyError:
        raise RoutingError(
            f"unknown router {name!r}; valid: {', '.join(ROUTERS)}", param="router"
        ) from None
