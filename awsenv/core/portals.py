"""IAM Identity Center in the config: the portals it names, the one a name means, the
profiles signed in through each, and whether a token or registration is still of use.
"""
from __future__ import annotations

from .config import AwsConfig, Portal, Profile
from .errors import AwsenvError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TypeGuard


TOKEN_MARGIN = 60  # a token must outlive the calls made with it


def token_valid(entry: object, now: float, margin: float = TOKEN_MARGIN) -> TypeGuard[dict]:
    expires = entry.get("expiresAt") if isinstance(entry, dict) else None
    return isinstance(expires, (int, float)) and expires > now + margin


def sso_profiles(config: AwsConfig, broken=None) -> Iterator[tuple[Profile, Portal]]:
    """Every SSO profile with its portal. A profile whose portal can't be read is left
    out (doctor reports it: `broken` is called with the profile and the error)."""
    for name in config.names():
        profile = config.profile(name)
        if not profile.is_sso:
            continue
        try:
            portal = config.portal(profile)
        except AwsenvError as err:
            if broken is not None:
                broken(profile, err)
            continue
        yield profile, portal


def portals(config: AwsConfig) -> dict[str, Portal]:
    """Every portal the config names: its sso-sessions and legacy start URLs."""
    found: dict[str, Portal] = {}
    for name in config.sso_sessions:
        try:
            found[name] = config.session_portal(name)
        except AwsenvError:  # a broken section is doctor's to report
            continue
    for profile, portal in sso_profiles(config):
        if not profile.get("sso_session"):
            found.setdefault(portal.name, portal)
    return found


def find_portal(config: AwsConfig, name: str | None) -> tuple[Portal, str]:
    """The portal of an sso-session or of an SSO profile, and the profile named for it."""
    if name is None:
        known = portals(config)
        if len(known) != 1:
            listed = ", ".join(sorted(known)) or "none"
            raise UsageError(f"name an sso-session or SSO profile (configured: {listed})")
        portal = next(iter(known.values()))
        return portal, portal.name
    if name in config.sso_sessions:
        return config.session_portal(name), name
    profile = config.profile(name)
    if not profile.is_sso:
        raise UsageError(f"profile {name!r} is not an IAM Identity Center profile")
    return config.portal(profile), name


def profiles_of(config: AwsConfig, portal: Portal) -> set[str]:
    """The SSO profiles signed in through `portal`, and every role built on them."""
    names: set[str] = set()
    for profile, theirs in sso_profiles(config):  # a broken profile has nothing cached
        if theirs.name == portal.name:
            names |= config.built_on(profile.name)
    return names
