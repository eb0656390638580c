"""The session cache's keys: what names a cached session, and reading a key back.

The agent, the broker, the resolver and `list` all read and write these keys.
"""
from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .config import Portal, Profile


USED_CODES = "mfa-used"


def session_key(profile: str, serial: str | None) -> str:
    return json.dumps(["session", profile, serial or ""])


def role_key(profile: Profile, serial: str | None) -> str:
    """Everything that shapes the role session is in the key, so changing the config
    (or an ad hoc role's session name) never reuses a session made for other settings."""
    p = profile.get
    return json.dumps(
        ["role", profile.name, p("role_arn") or "", serial or "", p("source_profile") or "",
         p("external_id") or "", p("role_session_name") or ""]
    )


def sso_key(profile: Profile, portal: Portal) -> str:
    """An SSO profile's role credentials: the portal, account and role are in the key."""
    p = profile.get
    return json.dumps(["sso", profile.name, portal.start_url, p("sso_account_id") or "", p("sso_role_name") or ""])


def login_key(profile: Profile) -> str:
    """A login_session profile's credentials: the session is in the key."""
    return json.dumps(["login", profile.name, profile.get("login_session") or ""])


def expired(entry, now: float) -> bool:
    expiration = entry.get("Expiration") if isinstance(entry, dict) else None
    return not isinstance(expiration, (int, float)) or expiration < now


def key_parts(cache_key: str) -> tuple[str, str] | None:
    """(kind, profile) of a cache key such as `["role", "dev", ...]`; None for a key this
    version did not write (the keyring item can be edited by other tools)."""
    try:
        parts = json.loads(cache_key)
    except ValueError:
        return None
    if isinstance(parts, list) and len(parts) > 1 and all(isinstance(p, str) for p in parts[:2]):
        return parts[0], parts[1]
    return None


def key_has_mfa(cache_key: str) -> bool:
    """Whether a session's cache key names an MFA device (`["session", profile, serial]`)."""
    try:
        parts = json.loads(cache_key)
    except ValueError:
        return False
    return isinstance(parts, list) and len(parts) > 2 and bool(parts[2])


def key_profile(cache_key: str) -> str | None:
    parts = key_parts(cache_key)
    return parts[1] if parts else None
