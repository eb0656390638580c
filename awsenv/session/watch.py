"""The agent's watch specs: what it needs to renew a profile's credentials by itself.

Names and settings, never a secret.
"""
from __future__ import annotations

import os

from ..core.settings import refresh_window

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..core.config import AwsConfig, Profile


# What a renewal in the agent needs from the caller's environment: where AWS is.
AGENT_ENV = ("AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_STS_REGIONAL_ENDPOINTS", "AWS_USE_FIPS_ENDPOINT",
             "AWS_USE_DUALSTACK_ENDPOINT", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LOGIN_CACHE_DIRECTORY")


def watch_for(config: AwsConfig, chain: list[Profile]) -> dict | None:
    """What the agent needs to renew this role (or SSO profile's role credentials) by
    itself; None for a base profile, whose session only the user renews."""
    return watch_of(config, chain) if chain[0].is_role or chain[0].is_sso or chain[0].is_login else None


def watch_of(config: AwsConfig, chain: list[Profile]) -> dict:
    """What the agent needs to renew this profile's credentials by itself (or serve
    them at its endpoint): names and settings, no secret."""
    top = chain[0]
    watch: dict = {
        "profile": top.name,
        "config": config.config_file,
        "window": refresh_window(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(AGENT_ENV)},
    }
    if top.source_file == "--role-arn":
        watch["adhoc"] = [top.role_arn, top.source_profile, top.get("role_session_name")]
    return watch
