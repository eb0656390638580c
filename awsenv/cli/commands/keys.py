"""add, import, remove, clear, list, rotate, doctor and mfa: the long-term keys, TOTP
secrets and cached sessions in the keyring."""
from __future__ import annotations

import json
import os
import re
import sys
import time

from ...core.cachekeys import role_key, session_key, sso_key
from ...core.config import REGION, AwsConfig
from ...core.configfile import append_profile, remove_plaintext, section_header
from ...core.creds import Credentials, format_ttl, rfc3339
from ...core.errors import AwsenvError, KeyringError, UsageError
from ...session.resolver import chain_mfa_process, chain_serial, drop_sessions
from .common import Vault, columns, emit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypedDict

    class ListRow(TypedDict):  # one profile in `list --json`
        profile: str
        kind: str
        source: str | None
        mfa: str | None
        mfa_process: str | None
        key_stored: bool | str | None
        plaintext: bool
        session_expires: str | None
        session_seconds_left: int | None


# keys -----------------------------------------------------------------------------
KEY_ID = re.compile(r"AKIA[A-Z0-9]{12,124}")  # IAM's bound: 16 to 128 characters
SECRET = re.compile(r"[A-Za-z0-9+/]{40}")  # what IAM hands out: 40 base64 characters


def _check_key_id(key_id: str) -> str:
    key_id = key_id.strip()
    if not key_id:
        raise UsageError("both an access key ID and a secret access key are needed")
    if key_id.startswith("ASIA"):
        raise UsageError("that is a temporary key (ASIA...); add the long-term key of an IAM user (AKIA...)")
    if not KEY_ID.fullmatch(key_id):
        raise UsageError("that does not look like an access key ID (AKIA followed by capitals and digits)")
    return key_id


def _check_key(key_id: str, secret: str) -> Credentials:
    key_id, secret = key_id.strip(), secret.strip()
    if not key_id or not secret:
        raise UsageError("both an access key ID and a secret access key are needed")
    _check_key_id(key_id)
    if not SECRET.fullmatch(secret):
        raise UsageError(
            f"that does not look like a secret access key ({len(secret)} characters; "
            "AWS gives 40 letters, digits, + and /)"
        )
    return Credentials(key_id, secret)


def cmd_add(args) -> None:
    from ...host.terminal import Terminal

    config = AwsConfig()
    name = args.profile
    if config.has(name) and config.profile(name).is_role:
        source = config.profile(name).source_profile
        raise UsageError(f"profile {name!r} is a role; add the key to its source profile {source!r}")
    if config.has(name) and config.profile(name).is_sso:
        raise UsageError(f"profile {name!r} signs in through IAM Identity Center and has no key; run `awsenv sso login {name}`")
    if not config.has(name):
        section_header(name)  # a name no config file can hold is refused before any question
    vault = Vault()
    vault.open(create=True)  # before anyone types a secret: without a store, no questions
    terminal = Terminal()
    if args.env:
        key = _check_key(os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
    elif sys.stdin.isatty() and terminal.available:
        key_id = _check_key_id(terminal.ask(f"Access key ID for {name}: "))  # before anyone types the secret
        secret = terminal.ask(f"Secret access key for {name}: ", echo=False)
        key = _check_key(key_id, secret)
    else:  # a pipe or a file, as `mfa set` reads its secret: the ID line, then the secret line
        key_id, secret = sys.stdin.readline(), sys.stdin.readline()
        if not key_id.strip() and not secret.strip():
            raise UsageError("no key on stdin: give the access key ID and the secret as two lines, "
                             "or use --env with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
        key = _check_key(key_id, secret)
    vault.set_key(name, key)
    drop_sessions(vault, config.built_on(name))  # sessions of an older key
    print(f"awsenv: stored the key {key.access_key_id} of profile {name!r} in {vault.place}", file=sys.stderr)
    if not config.has(name):
        _offer_profile(config, name, terminal)


def _offer_profile(config: AwsConfig, name: str, terminal) -> None:
    header = section_header(name)
    if not terminal.available:
        print(f"awsenv: {config.config_file} has no {header}; add it to use the profile", file=sys.stderr)
        return
    answer = terminal.ask(f"{config.config_file} has no {header}. Add it? [Y/n] ")
    if answer.lower() in ("", "y", "yes"):
        values = {}
        fallback = _default_region(config)
        region = _ask_valid(
            terminal, header,
            f"Region, empty for [default]'s {fallback}: " if fallback else "Region, e.g. eu-west-1: ",
            lambda value: bool(value and REGION.fullmatch(value)) or (not value and fallback is not None),
            "a region name such as eu-west-1",
        )
        if region:
            values["region"] = region
        serial = _ask_valid(
            terminal, header, "MFA device ARN (mfa_serial), empty for none: ",
            lambda value: not value or _mfa_serial_ok(value),
            "an MFA device ARN (arn:aws:iam::ACCOUNT:mfa/NAME) or a hardware token's serial number",
        )
        if serial:
            values["mfa_serial"] = serial
        append_profile(config.config_file, name, values)
        terminal.say(f"awsenv: added {header} to {config.config_file}")


# What STS takes as SerialNumber (botocore's sts service-2.json: [\w+=/:,.@-]*, 9 to 256):
# a virtual device's ARN, or a hardware token's serial. `mfa_serial = alice` is neither.
SERIAL_NUMBER = re.compile(r"[\w+=/:,.@-]{9,256}")
MFA_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:mfa/.+")
TRIES = 3


def _mfa_serial_ok(value: str) -> bool:
    return bool(SERIAL_NUMBER.fullmatch(value)) and (MFA_ARN.fullmatch(value) is not None
                                                     or not value.startswith("arn:"))


def _default_region(config: AwsConfig) -> str | None:
    try:
        return config.profile("default").region if config.has("default") else None
    except AwsenvError:
        return None


def _ask_valid(terminal, header: str, prompt: str, valid, what: str) -> str:
    """Ask until the answer is valid, three times at most: a profile that later fails
    in STS is worse than none. The key is stored already; only the section is not."""
    for _ in range(TRIES):
        answer = terminal.ask(prompt).strip()
        if valid(answer):
            return answer
        terminal.say(f"awsenv: that is not {what}")
    raise UsageError(f"{header} was not written: {TRIES} answers were not {what}; the key is stored")


def cmd_import(args) -> None:
    from ...aws.loginsession import import_logins

    config = AwsConfig()
    logins = import_logins(config, args.profile, args.delete_plaintext, Vault)
    wanted = [name for name in args.profile if name not in logins]
    if args.profile and not wanted:
        return
    plaintext = {name: key for name in config.credential_sections if (key := config.plaintext_key(name))}
    available = list(plaintext)
    tokens = _cli_tokens(config)
    names, sessions = available, list(tokens)
    if wanted:
        names = [name for name in wanted if name in available]
        others = [name for name in wanted if name not in available]
        sessions = [_token_of(config, tokens, name) for name in others]
        missing = [name for name, session in zip(others, sessions) if session is None]
        if missing:
            raise UsageError(
                f"no plaintext key for {', '.join(map(repr, missing))} in {config.credentials_file}, "
                "nor a usable AWS CLI token in ~/.aws/sso/cache"
            )
    if not names and not sessions:
        if not logins:
            print(f"awsenv: no plaintext keys in {config.credentials_file}", file=sys.stderr)
        return
    vault = Vault()
    for name in names:
        stored = Credentials(*plaintext[name])
        vault.set_key(name, stored)
        print(f"awsenv: stored the key {stored.access_key_id} of profile {name!r} in {vault.place}", file=sys.stderr)
    _import_tokens(vault, [tokens[s] for s in dict.fromkeys(sessions) if s], args.delete_plaintext)
    if not names:
        return
    if args.delete_plaintext:
        remove_plaintext(config.credentials_file, names, {name for name in names if config.defines(name)})
        print(f"awsenv: removed the plaintext keys from {config.credentials_file}", file=sys.stderr)
    else:
        print(
            f"awsenv: warning: the plaintext copy is still in {config.credentials_file} "
            f"(list shows stored+PLAINTEXT, doctor plaintext-key); "
            f"`awsenv import {' '.join(names)} --delete-plaintext` removes it",
            file=sys.stderr,
        )


def _cli_tokens(config: AwsConfig) -> dict:
    """Portal name -> (portal, file, sign-in) for the AWS CLI's still usable tokens."""
    from ...core.portals import portals
    from ...store.clicache import cli_token

    now = time.time()
    found = {}
    for name, portal in portals(config).items():
        token = cli_token(portal, now)
        if token is not None:
            found[name] = (portal, *token)
    return found


def _token_of(config: AwsConfig, tokens: dict, name: str) -> str | None:
    if name in tokens:
        return name
    if name in config.sso_sessions or not config.has(name) or not config.profile(name).is_sso:
        return None
    try:
        portal = config.portal(config.profile(name)).name
    except AwsenvError:
        return None
    return portal if portal in tokens else None


def _import_tokens(vault, found: list, delete: bool) -> None:
    from ...aws.sso import SignIn
    from ...store.clicache import cli_registration_files

    sign_in = SignIn(vault)
    for portal, path, doc in found:
        sign_in.save(portal, doc)
        print(f"awsenv: moved the AWS CLI's sign-in to {portal.label} into {vault.place}", file=sys.stderr)
        if not delete:
            print(f"awsenv: the token is still in {path}; rerun with --delete-plaintext to remove it", file=sys.stderr)
            continue
        registration = doc.get("registration") or {}
        for plain in [path] + (cli_registration_files(registration["clientId"]) if registration else []):
            os.unlink(plain)
            print(f"awsenv: deleted {plain}", file=sys.stderr)


def cmd_remove(args) -> None:
    config = AwsConfig()
    vault = Vault()
    name = args.profile
    if not args.sessions_only and vault.get_key(name) is None:
        raise UsageError(f"no key stored for profile {name!r}")
    dropped = drop_sessions(vault, config.built_on(name))
    if args.sessions_only:
        print(f"awsenv: dropped {dropped} cached session(s) of {name!r}", file=sys.stderr)
        return
    vault.delete_key(name)
    print(f"awsenv: forgot the key and {dropped} cached session(s) of {name!r}", file=sys.stderr)
    if config.defines(name):
        # As aws-vault's remove: the profile stays, for the SDKs and for `awsenv add` again.
        print(f"awsenv: its section in {config.config_file} stays; delete it there if the profile goes too",
              file=sys.stderr)


def cmd_clear(args) -> None:
    config = AwsConfig()
    profiles = None
    if args.profile is not None:
        profiles = config.built_on(args.profile)
    dropped = drop_sessions(Vault(), profiles)
    from ...store import agentclient as agent

    # An endpoint token serves nothing without its sessions: it goes with them.
    agent.ask({"op": "revoke", "all": True} if profiles is None else {"op": "revoke", "profiles": sorted(profiles)})
    print(f"awsenv: dropped {dropped} cached session(s)", file=sys.stderr)


# list -------------------------------------------------------------------------------
def cmd_list(args) -> None:
    config = AwsConfig()
    vault = Vault()
    try:
        sessions = vault.load_sessions()
    except KeyringError as err:
        # The profiles come from the config alone; say once why keys and sessions don't.
        print(f"awsenv: {err}; keys and sessions are not shown", file=sys.stderr)
        vault, sessions = None, {}
    now = time.time()
    rows: list[ListRow] = []
    for name in config.names():
        profile = config.profile(name)
        serial = process = None
        try:
            chain = config.chain(name)
            serial = chain_serial(chain)
            process = chain_mfa_process(chain, serial)
        except AwsenvError:
            chain = [profile]
        source, key_state, plaintext = profile.source_profile, None, False
        if profile.unsupported():
            source, cache_key = None, None
        elif profile.is_role:
            cache_key = role_key(profile, serial)
        elif profile.is_sso:
            source, key_state, cache_key = _sso_source(config, profile)
        elif profile.is_login:
            from ...core.cachekeys import login_key

            source, cache_key = "aws sign-in", login_key(profile)
        else:
            source, key_state, plaintext = _key_source(config, vault, profile)
            cache_key = session_key(name, profile.mfa_serial)
        entry = sessions.get(cache_key)
        expires = entry.get("Expiration") if isinstance(entry, dict) else None
        if expires is not None and expires <= now:
            expires = None
        rows.append(
            {
                "profile": name,
                "kind": profile.kind,
                "source": source,
                "mfa": serial,
                "mfa_process": process[0] if process else None,  # whose command prints the codes
                "key_stored": key_state,
                "plaintext": plaintext,
                "session_expires": rfc3339(expires) if expires else None,
                "session_seconds_left": int(expires - now) if expires else None,
            }
        )
    if args.json:
        emit(json.dumps({"profiles": rows}, indent=2) + "\n")
        return
    table = [("PROFILE", "KIND", "SOURCE", "MFA", "KEY", "SESSION")]
    for row in rows:
        key = KEY_WORDS[row["key_stored"]]
        if row["plaintext"]:
            key = "PLAINTEXT" if key in ("missing", "-") else f"{key}+PLAINTEXT"
        left = format_ttl(row["session_seconds_left"]) if row["session_seconds_left"] else "-"
        mfa = ("process" if row["mfa_process"] else "yes") if row["mfa"] else "no"
        table.append((row["profile"], row["kind"], row["source"] or "-", mfa, key, left))
    emit(columns(table))


def _sso_source(config: AwsConfig, profile) -> tuple[str, None, str]:
    """An SSO profile's source is its sign-in; it has no key."""
    try:
        portal = config.portal(profile)
    except AwsenvError:
        return "sso-session ?", None, ""
    return portal.label, None, sso_key(profile, portal)


# The KEY column for each key_stored value of the JSON.
KEY_WORDS = {True: "stored", False: "missing", None: "-", "damaged": "DAMAGED", "unknown": "?"}


def _key_source(config: AwsConfig, vault, profile) -> tuple[str, bool | str | None, bool]:
    """Where the base profile's key comes from, whether the keyring holds it (True,
    False, "damaged", or "unknown" without a keyring), and whether a plaintext copy
    lies in the credentials file: doctor's `plaintext-key` is that last fact."""
    if profile.get("credential_process"):
        return "credential_process", None, False
    plaintext = config.plaintext_key(profile.name) is not None
    source = _store_name()
    if vault is None:
        return source, "unknown", plaintext
    try:
        stored = vault.get_key(profile.name)
    except KeyringError:
        return source, "damaged", plaintext
    if stored is not None:
        return source, True, plaintext
    if plaintext:
        return "credentials file", False, True
    return source, False, False


def _store_name() -> str:
    """The store a base profile's key lives in: keyring, file or pass (AWSENV_BACKEND)."""
    from ...store.vault import chosen

    try:
        return chosen()
    except AwsenvError:
        return "keyring"


# key hygiene ----------------------------------------------------------------------------
def cmd_rotate(args) -> None:
    from ..hygiene import rotate

    rotate(args.profile, args.mfa_code)


def cmd_doctor(args) -> int:
    from ..hygiene import doctor

    store, findings, skipped = doctor(args.mfa_code)
    if args.json:
        emit(json.dumps({"store": store, "findings": findings, "skipped": skipped}, indent=2) + "\n")
    else:
        lines = [f"store: {store}"]
        lines += [f"{f['severity']:<6}  {f['check']:<16}  {f['profile']}: {f['message']}" for f in findings]
        lines += [f"skipped {s['check']:<16}  {s['profile']}: {s['reason']}" for s in skipped]
        emit("".join(line + "\n" for line in lines) + ("" if findings or skipped else "no findings\n"))
    return 1 if findings else 0


MFA_WARNING = (
    "awsenv: a TOTP secret kept on the same machine as the access key turns two factors "
    "into one: whoever has this machine has both. That is a fair trade for an automation "
    "or sandbox identity that must run unattended; keep a separate device for people and "
    "for production."
)


def cmd_mfa(args) -> None:
    from ...host.terminal import Terminal

    config = AwsConfig()
    name = args.profile
    profile = config.profile(name)
    if profile.is_role:
        raise UsageError(f"profile {name!r} is a role; TOTP secrets belong to its base profile {config.chain(name)[-1].name!r}")
    vault = Vault()
    if args.action == "remove":
        if not vault.delete_totp(name):
            raise UsageError(f"no TOTP secret stored for profile {name!r}")
        print(f"awsenv: forgot the TOTP secret of {name!r}", file=sys.stderr)
        return
    if not profile.mfa_serial:
        raise UsageError(f"profile {name!r} has no mfa_serial; add the device's ARN to its config first")
    if sys.stdin.isatty():
        secret = Terminal().ask(f"TOTP secret (base32) for {name}: ", echo=False)
    else:
        secret = sys.stdin.readline()
    secret = "".join(secret.split()).upper()
    _check_totp(secret)
    print(MFA_WARNING, file=sys.stderr)
    vault.set_totp(name, secret)
    print(f"awsenv: stored the TOTP secret of {name!r}; codes are now generated without a prompt", file=sys.stderr)


def _check_totp(secret: str) -> None:
    import binascii

    import pyotp

    if not secret:
        raise UsageError("no TOTP secret given")
    try:
        pyotp.TOTP(secret).now()
    except (binascii.Error, ValueError, TypeError):
        raise UsageError("that is not a base32 TOTP secret") from None
