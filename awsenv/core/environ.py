"""What `use` and `unset` change in the shell, as an ordered list of (name, value)
pairs where a value of None means "unset". Shell modules only render the list.

State that must survive between runs lives in the environment itself (as direnv's
DIRENV_DIFF does): AWSENV_REGION remembers the region awsenv set, and
AWSENV_SAVED_* the values it displaced, so `unset` gives a hand-set region back.
"""
from __future__ import annotations

from collections.abc import Mapping

from .creds import Credentials, rfc3339

Plan = list[tuple[str, "str | None"]]

STALE = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN")
CREDENTIALS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_SESSION_EXPIRATION",
    "AWSENV_PROFILE",
    "AWSENV_EXPIRES",
)
REGIONS = (("AWS_REGION", "AWSENV_SAVED_REGION"), ("AWS_DEFAULT_REGION", "AWSENV_SAVED_DEFAULT_REGION"))
# An ad hoc role (`use --role-arn`) is remembered so that refresh can renew it.
ADHOC = ("AWSENV_ROLE_ARN", "AWSENV_ROLE_FROM", "AWSENV_ROLE_SESSION_NAME")
# Refresh-hook state: the Unix time before which the hook has nothing to do, set when
# a refresh was declined or could not outlive the window (see commands.cmd_refresh).
HOOK_STATE = ("AWSENV_NEXT_CHECK",)
# Server mode (`use --server`): the endpoint and its token instead of static keys, and
# AWSENV_SERVED, the agent's pid, for the prompt to show and the hook to check.
SERVER = ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWSENV_SERVED")
# botocore reads these before the FULL_URI and TOKEN that server mode sets.
COMPETING = ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
# `use -` (as `cd -` uses OLDPWD): the profile a switch left. `unset` removes it with
# everything else awsenv set.
PREVIOUS = "AWSENV_PREVIOUS"
STATIC = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
          "AWS_CREDENTIAL_EXPIRATION", "AWS_SESSION_EXPIRATION")


def _served(env: Mapping[str, str]) -> Plan:
    """What an earlier `use --server` left, removed only where it is set."""
    return [(name, None) for name in SERVER] if "AWSENV_SERVED" in env else []


def _previous(profile: str, env: Mapping[str, str]) -> Plan:
    """Remember the active profile when this plan leaves it; an ad hoc role has no
    name to go back to."""
    old = env.get("AWSENV_PROFILE")
    if old and old != profile and "AWSENV_ROLE_ARN" not in env:
        return [(PREVIOUS, old)]
    return []


def use_plan(
    creds: Credentials, profile: str, region: str | None, env: Mapping[str, str], adhoc: Mapping[str, str] | None = None
) -> Plan:
    adhoc = adhoc or {}
    plan: Plan = [(name, None) for name in STALE]
    # awsenv's own state is removed only where it is set, to keep the output short.
    plan += [(name, None) for name in HOOK_STATE + ADHOC if name in env and name not in adhoc]
    plan += _served(env)
    expiration = creds.expiration
    plan += [
        ("AWS_ACCESS_KEY_ID", creds.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key),
        ("AWS_SESSION_TOKEN", creds.session_token or ""),
    ]
    if expiration is None:
        # A credential_process that gives no expiry: say nothing rather than 1970.
        plan += [(name, None) for name in ("AWS_CREDENTIAL_EXPIRATION", "AWS_SESSION_EXPIRATION", "AWSENV_EXPIRES")]
        plan.append(("AWSENV_PROFILE", profile))
    else:
        plan += [
            ("AWS_CREDENTIAL_EXPIRATION", rfc3339(expiration)),
            ("AWS_SESSION_EXPIRATION", rfc3339(expiration)),
            ("AWSENV_PROFILE", profile),
            ("AWSENV_EXPIRES", str(expiration)),
        ]
    plan += [(name, adhoc[name]) for name in ADHOC if name in adhoc]
    return plan + _previous(profile, env) + _region(region, env)


def server_plan(
    profile: str, region: str | None, env: Mapping[str, str], uri: str, token: str, agent_pid: int,
    act_by: int, adhoc: Mapping[str, str] | None = None,
) -> Plan:
    """`use --server`: every SDK fetches (and refreshes) the role's credentials from the
    agent's endpoint. Static keys and profiles come first in every SDK's chain, so they
    go. AWSENV_EXPIRES is when the user must act: the end of the MFA session."""
    adhoc = adhoc or {}
    plan: Plan = [(name, None) for name in STALE]
    plan += [(name, None) for name in HOOK_STATE + ADHOC if name in env and name not in adhoc]
    plan += [(name, None) for name in STATIC]
    plan += [(name, None) for name in COMPETING if name in env]
    plan += [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", token),
        ("AWSENV_SERVED", str(agent_pid)),
        ("AWSENV_PROFILE", profile),
        ("AWSENV_EXPIRES", str(act_by)),
    ]
    plan += [(name, adhoc[name]) for name in ADHOC if name in adhoc]
    return plan + _previous(profile, env) + _region(region, env)


def _region(region: str | None, env: Mapping[str, str]) -> Plan:
    if not region:
        return restore_region(env)
    plan: Plan = []
    if "AWSENV_REGION" not in env:
        plan += [(saved, env[var]) for var, saved in REGIONS if var in env]
    return plan + [("AWS_REGION", region), ("AWS_DEFAULT_REGION", region), ("AWSENV_REGION", region)]


def restore_region(env: Mapping[str, str]) -> Plan:
    ours = env.get("AWSENV_REGION")
    if ours is None:
        return []
    plan: Plan = []
    for var, saved in REGIONS:
        if env.get(var) == ours:  # leave a region the user changed by hand since
            plan.append((var, env.get(saved)))
        if saved in env:
            plan.append((saved, None))
    plan.append(("AWSENV_REGION", None))
    return plan


def unset_plan(env: Mapping[str, str]) -> Plan:
    return ([(name, None) for name in CREDENTIALS + ("AWS_SECURITY_TOKEN",) + HOOK_STATE + ADHOC]
            + [(PREVIOUS, None)] * (PREVIOUS in env) + _served(env) + restore_region(env))


def apply(plan: Plan, env: dict[str, str]) -> dict[str, str]:
    """The environment after the plan, for `exec` (no shell involved)."""
    for name, value in plan:
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env
