"""sso login, sso logout and sso profiles: IAM Identity Center sign-ins, their tokens in
the keyring, and the profiles a sign-in can reach."""
from __future__ import annotations

import re
import sys

from ...core.config import AwsConfig, Portal
from ...core.configfile import append_profile
from ...session.resolver import drop_sessions
from .common import Vault, columns, emit


def cmd_sso(args) -> None:
    {"login": _login, "logout": _logout, "profiles": _profiles}[args.sso_command](args)


def _login(args) -> None:
    from ...aws.sso import SignIn
    from ...core.portals import find_portal

    config = AwsConfig()
    portal, _name = find_portal(config, args.name)
    SignIn(Vault()).login(portal, browser=not args.no_browser, device_code=args.use_device_code)


def _logout(args) -> None:
    from ...aws.sso import SignIn
    from ...core.portals import find_portal, portals, profiles_of

    config = AwsConfig()
    targets = [find_portal(config, args.name)[0]] if args.name else list(portals(config).values())
    vault = Vault()
    sign_in = SignIn(vault)
    for portal in targets:
        ended = sign_in.logout(portal)
        dropped = drop_sessions(vault, profiles_of(config, portal))
        state = "signed out of" if ended else "forgot the sign-in to"
        print(f"awsenv: {state} {portal.label}; dropped {dropped} cached session(s)", file=sys.stderr)


PROFILE_NAME = re.compile(r"[^A-Za-z0-9_.@+-]+")


def _profile_name(account_name: str, account_id: str, role: str) -> str:
    # aws-sso-util's default pattern, `{account_name}.{role_name}`, in characters that
    # need no quoting in a shell or a config header.
    return PROFILE_NAME.sub("-", f"{account_name or account_id}.{role}").strip("-") or f"{account_id}.{role}"


def _existing(config: AwsConfig, portal: Portal) -> dict[tuple[str, str], str]:
    """(account, role) -> the profile that already reaches it through this portal."""
    from ...core.portals import sso_profiles

    found: dict[tuple[str, str], str] = {}
    for profile, theirs in sso_profiles(config):
        if theirs.name == portal.name:
            found.setdefault((profile.get("sso_account_id") or "", profile.get("sso_role_name") or ""), profile.name)
    return found


def _profiles(args) -> None:
    from ...aws.sso import SignIn
    from ...core.portals import find_portal

    config = AwsConfig()
    portal, name = find_portal(config, args.name)
    assignments, skipped = SignIn(Vault()).assignments(portal, name)
    for why in skipped:
        print(f"awsenv: skipped {why}", file=sys.stderr)
    existing = _existing(config, portal)
    taken = set(config.names())
    rows = [("PROFILE", "ACCOUNT", "ACCOUNT NAME", "ROLE", "STATE")]
    new: list[tuple[str, dict[str, str]]] = []
    for account, account_name, role in assignments:
        have = existing.get((account, role))
        if have is not None:
            rows.append((have, account, account_name, role, "configured"))
            continue
        profile = _profile_name(account_name, account, role)
        if profile in taken:
            profile = f"{profile}-{account}"
        taken.add(profile)
        values = {"sso_session": portal.name} if portal.session else {
            "sso_start_url": portal.start_url, "sso_region": portal.region}
        values.update(sso_account_id=account, sso_role_name=role, region=portal.region)
        new.append((profile, values))
        rows.append((profile, account, account_name, role, "added" if args.write else "missing"))
    table = columns(rows)
    if args.write:
        for profile, values in new:
            append_profile(config.config_file, profile, values)
        print(f"awsenv: added {len(new)} profile(s) to {config.config_file}", file=sys.stderr)
    emit(table)
