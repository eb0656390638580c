"""The commands. Each takes the parsed arguments, writes what it exists to print to
stdout in one piece at the end (so a failure prints nothing there), and talks to the
user on the terminal or stderr."""
from __future__ import annotations

import json
import os
import sys
import time

from . import environ, shells
from .config import AwsConfig, append_profile, remove_plaintext
from .creds import Credentials, format_ttl, rfc3339
from .errors import AwsenvError, KeyringError, UsageError
from .session import Request, Resolver, chain_serial, drop_sessions, role_key, session_key

def Vault():  # noqa: N802 - imported late: the cached path never opens the keyring
    from .vault import Vault as _Vault

    return _Vault()


def run(args) -> int | None:
    handler = globals()["cmd_" + args.command.replace("-", "_")]
    return handler(args)


def _emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _shell(args):
    return shells.get(args.shell) if getattr(args, "shell", None) else shells.detect()


def _target(config: AwsConfig, args) -> tuple[str, dict[str, str]]:
    """The profile to resolve, and the state an ad hoc role (--role-arn) leaves behind."""
    role_arn = getattr(args, "role_arn", None)
    if role_arn is None:
        if args.profile is None:
            raise UsageError("name a PROFILE, or a role with --role-arn ARN")
        return args.profile, {}
    if args.profile is not None:
        raise UsageError("give either a PROFILE or --role-arn, not both")
    source = args.source or "default"
    name = config.adhoc(role_arn, source, args.session_name)
    state = {"AWSENV_ROLE_ARN": role_arn, "AWSENV_ROLE_FROM": source}
    if args.session_name:
        state["AWSENV_ROLE_SESSION_NAME"] = args.session_name
    return name, state


def _obtain(config: AwsConfig, request: Request):
    """Resolve and cache; a cache that can't be written costs a warning, not the credentials."""
    resolver = Resolver(config)
    creds, chain = resolver.resolve(request)
    try:
        resolver.save()
    except AwsenvError as err:
        print(f"awsenv: warning: the session was not cached: {err}", file=sys.stderr)
    return creds, chain


def _resolve(args) -> tuple[Credentials, str | None, str, dict[str, str]]:
    config = AwsConfig()
    name, adhoc = _target(config, args)
    request = Request(name, mfa_code=args.mfa_code, duration=args.duration, refresh=args.refresh)
    creds, chain = _obtain(config, request)
    # An ad hoc role has no config section of its own: it takes its source's region.
    region = args.region or chain[0].region or (chain[1].region if adhoc else None)
    return creds, region, name, adhoc


# use / unset / export / exec ---------------------------------------------------
def cmd_use(args) -> None:
    shell = _shell(args)
    creds, region, name, adhoc = _resolve(args)
    _emit(shell.render(environ.use_plan(creds, name, region, os.environ, adhoc)))


def cmd_unset(args) -> None:
    _emit(_shell(args).render(environ.unset_plan(os.environ)))


def export_plan(creds: Credentials, profile: str, region: str | None) -> environ.Plan:
    return [
        (name, value)
        for name, value in environ.use_plan(creds, profile, region, {})
        if value is not None and name != "AWSENV_REGION"
    ]


def cmd_export(args) -> None:
    creds, region, name, _adhoc = _resolve(args)
    if args.format == "json":
        document = {
            "Version": 1,
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "SessionToken": creds.session_token,
        }
        if creds.expiration is not None:  # a long-lived credential_process key has none
            document["Expiration"] = rfc3339(creds.expiration)
        _emit(json.dumps(document) + "\n")
        return
    shell = shells.get({"env": "bash", "powershell": "pwsh"}.get(args.format, args.format))
    _emit(shell.render(export_plan(creds, name, region)))


def cmd_exec(args) -> int:
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not command:
        raise UsageError("exec needs a command: awsenv exec PROFILE -- CMD [ARG...]")
    creds, region, name, adhoc = _resolve(args)
    env = environ.apply(environ.use_plan(creds, name, region, os.environ, adhoc), dict(os.environ))
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        print(f"awsenv: command not found: {command[0]}", file=sys.stderr)
        return 127
    except OSError as err:
        print(f"awsenv: cannot run {command[0]}: {err.strerror}", file=sys.stderr)
        return 126
    return 0  # not reached: exec replaced this process


NEVER = 9999999999  # AWSENV_NEXT_CHECK: nothing more to do for these credentials


def cmd_refresh(args) -> None:
    """Renew the active credentials in place; run by the prompt hook when they have
    less than AWSENV_REFRESH_WINDOW seconds left. Silent when a cached MFA session
    allows it, otherwise asks for a code on the terminal (AWSENV_REFRESH=prompt) or
    only says so (warn). A declined or failed refresh is not retried before expiry,
    and once more after it."""
    from .errors import Cancelled
    from .session import env_seconds

    shell = _shell(args)
    state = active()
    mode = os.environ.get("AWSENV_REFRESH", "prompt")
    if state is None or mode == "off":
        return
    profile, expires = state["profile"], state["expires_epoch"]
    window = env_seconds("AWSENV_REFRESH_WINDOW", 600)
    left = expires - int(time.time())
    when = f"expire in {format_ttl(left)}" if left > 0 else "have expired"
    request = Request(profile, min_ttl=window + 60, prompt=mode == "prompt", note=f"the credentials of {profile} {when}")
    config = AwsConfig()
    adhoc = {name: os.environ[name] for name in environ.ADHOC if os.environ.get(name)}
    resolver = Resolver(config)
    try:
        if "AWSENV_ROLE_ARN" in adhoc:
            config.adhoc(adhoc["AWSENV_ROLE_ARN"], adhoc.get("AWSENV_ROLE_FROM", "default"),
                         adhoc.get("AWSENV_ROLE_SESSION_NAME"))
        creds, _chain = resolver.resolve(request)
        resolver.save()
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the hook must always learn it tried
        if isinstance(err, KeyboardInterrupt):
            print(file=sys.stderr)  # the prompt starts on a line of its own after ^C
        elif not isinstance(err, Cancelled):
            reason = err if isinstance(err, AwsenvError) else f"internal error ({type(err).__name__})"
            print(f"awsenv: cannot refresh {profile}: {reason}", file=sys.stderr)
        next_check = expires if left > 0 else NEVER
        _emit(shell.render([("AWSENV_NEXT_CHECK", str(next_check))]))
        return
    # A refresh renews credentials only: the region stays as `use` or the user left it.
    without_region = {k: v for k, v in os.environ.items() if k != "AWSENV_REGION"}
    plan = environ.use_plan(creds, profile, None, without_region, adhoc)
    if creds.expiration is not None and creds.ttl() <= window:
        # A role capped below the window: renew it once per lifetime, not every prompt.
        plan.append(("AWSENV_NEXT_CHECK", str(creds.expiration - env_seconds("AWSENV_MIN_TTL", 300))))
    _emit(shell.render(plan))


# status / whoami ----------------------------------------------------------------
def active() -> dict | None:
    profile = os.environ.get("AWSENV_PROFILE")
    expires = os.environ.get("AWSENV_EXPIRES", "")
    if not profile or not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
        return None
    left = int(expires) - int(time.time())
    return {
        "profile": profile,
        "expires": rfc3339(int(expires)),
        "expires_epoch": int(expires),
        "seconds_left": max(left, 0),
        "expired": left <= 0,
        "access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", ""),
    }


def cmd_status(args) -> None:
    state = active()
    if args.json:
        _emit(json.dumps({"active": state is not None, **(state or {})}) + "\n")
        return
    if state is None:
        _emit("no awsenv credentials in this environment\n")
        return
    left = "expired" if state["expired"] else f"{format_ttl(state['seconds_left'])} left"
    _emit(f"{state['profile']}  expires {state['expires']}  {left}\n")


def cmd_whoami(args) -> None:
    from . import sts

    identity = sts.caller_identity(None, None)
    _emit("".join(f"{key}: {identity[key]}\n" for key in ("Arn", "Account", "UserId")))


# keys -----------------------------------------------------------------------------
def _check_key(key_id: str, secret: str) -> Credentials:
    key_id, secret = key_id.strip(), secret.strip()
    if not key_id or not secret:
        raise UsageError("both an access key ID and a secret access key are needed")
    if key_id.startswith("ASIA"):
        raise UsageError("that is a temporary key (ASIA...); add the long-term key of an IAM user (AKIA...)")
    if not key_id.isalnum() or not 16 <= len(key_id) <= 128:
        raise UsageError("that does not look like an access key ID (AKIA followed by letters and digits)")
    if any(c.isspace() for c in secret):
        raise UsageError("a secret access key has no spaces")
    return Credentials(key_id, secret)


def cmd_add(args) -> None:
    from .mfa import Terminal

    config = AwsConfig()
    name = args.profile
    if config.has(name) and config.profile(name).is_role:
        source = config.profile(name).source_profile
        raise UsageError(f"profile {name!r} is a role; add the key to its source profile {source!r}")
    terminal = Terminal()
    if args.env:
        key = _check_key(os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
    else:
        if not terminal.available:
            raise UsageError("no terminal to read the key from; use --env with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
        key_id = terminal.ask(f"Access key ID for {name}: ")
        secret = terminal.ask(f"Secret access key for {name}: ", echo=False)
        key = _check_key(key_id, secret)
    vault = Vault()
    vault.set_key(name, key)
    drop_sessions(vault, config.built_on(name))  # sessions of an older key
    print(f"awsenv: stored the key {key.access_key_id} of profile {name!r} in the keyring", file=sys.stderr)
    if not config.has(name):
        _offer_profile(config, name, terminal)


def _offer_profile(config: AwsConfig, name: str, terminal) -> None:
    header = "[default]" if name == "default" else f"[profile {name}]"
    if not terminal.available:
        print(f"awsenv: {config.config_file} has no {header}; add it to use the profile", file=sys.stderr)
        return
    answer = terminal.ask(f"{config.config_file} has no {header}. Add it? [Y/n] ")
    if answer.lower() in ("", "y", "yes"):
        values = {}
        serial = terminal.ask("MFA device ARN (mfa_serial), empty for none: ")
        if serial:
            values["mfa_serial"] = serial
        append_profile(config.config_file, name, values)
        terminal.say(f"awsenv: added {header} to {config.config_file}")


def cmd_import(args) -> None:
    config = AwsConfig()
    available = [name for name in config.credential_sections if config.plaintext_key(name)]
    names = args.profile or available
    missing = [name for name in names if name not in available]
    if missing:
        raise UsageError(f"no plaintext key for {', '.join(map(repr, missing))} in {config.credentials_file}")
    if not names:
        print(f"awsenv: no plaintext keys in {config.credentials_file}", file=sys.stderr)
        return
    vault = Vault()
    for name in names:
        vault.set_key(name, Credentials(*config.plaintext_key(name)))
        print(f"awsenv: moved the key of profile {name!r} into the keyring", file=sys.stderr)
    if args.delete_plaintext:
        remove_plaintext(config.credentials_file, names)
        print(f"awsenv: removed the plaintext keys from {config.credentials_file}", file=sys.stderr)
    else:
        print(
            f"awsenv: the keys are still in {config.credentials_file}; rerun with --delete-plaintext "
            "to remove them",
            file=sys.stderr,
        )


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


def cmd_clear(args) -> None:
    config = AwsConfig()
    profiles = None
    if args.profile is not None:
        profiles = config.built_on(args.profile)
    dropped = drop_sessions(Vault(), profiles)
    print(f"awsenv: dropped {dropped} cached session(s)", file=sys.stderr)


# list -------------------------------------------------------------------------------
def cmd_list(args) -> None:
    config = AwsConfig()
    vault = Vault()
    sessions = vault.load_sessions()
    now = time.time()
    rows = []
    for name in config.names():
        profile = config.profile(name)
        serial = None
        try:
            chain = config.chain(name)
            serial = chain_serial(chain)
        except AwsenvError:
            chain = [profile]
        if profile.is_role:
            source = profile.source_profile
            key_state = None
            cache_key = role_key(profile, serial)
        else:
            source, key_state = _key_source(config, vault, profile)
            cache_key = session_key(name, profile.mfa_serial)
        entry = sessions.get(cache_key)
        expires = entry.get("Expiration") if isinstance(entry, dict) else None
        if expires is not None and expires <= now:
            expires = None
        rows.append(
            {
                "profile": name,
                "kind": "role" if profile.is_role else "base",
                "source": source,
                "mfa": serial,
                "key_stored": key_state,
                "session_expires": rfc3339(expires) if expires else None,
                "session_seconds_left": int(expires - now) if expires else None,
            }
        )
    if args.json:
        _emit(json.dumps({"profiles": rows}, indent=2) + "\n")
        return
    table = [("PROFILE", "KIND", "SOURCE", "MFA", "KEY", "SESSION")]
    for row in rows:
        key = {True: "stored", False: "missing", None: "-", "plaintext": "PLAINTEXT", "damaged": "DAMAGED"}[
            row["key_stored"]
        ]
        left = format_ttl(row["session_seconds_left"]) if row["session_seconds_left"] else "-"
        table.append((row["profile"], row["kind"], row["source"] or "-", "yes" if row["mfa"] else "no", key, left))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    _emit("".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in table))


def _key_source(config: AwsConfig, vault: Vault, profile) -> tuple[str, object]:
    if profile.get("credential_process"):
        return "credential_process", None
    try:
        stored = vault.get_key(profile.name)
    except KeyringError:
        return "keyring", "damaged"
    if stored is not None:
        return "keyring", True
    if config.plaintext_key(profile.name):
        return "credentials file", "plaintext"
    return "keyring", False


# key hygiene ----------------------------------------------------------------------------
def cmd_rotate(args) -> None:
    from .hygiene import rotate

    rotate(args.profile, args.mfa_code)


def cmd_doctor(args) -> int:
    from .hygiene import doctor

    findings, skipped = doctor(args.mfa_code)
    if args.json:
        _emit(json.dumps({"findings": findings, "skipped": skipped}, indent=2) + "\n")
    else:
        lines = [f"{f['severity']:<6}  {f['check']:<16}  {f['profile']}: {f['message']}" for f in findings]
        lines += [f"skipped {s['check']:<16}  {s['profile']}: {s['reason']}" for s in skipped]
        _emit("".join(line + "\n" for line in lines) or "no findings\n")
    return 1 if findings else 0


def cmd_login(args) -> None:
    from . import login, sts
    from .session import check_duration

    config = AwsConfig()
    name, _adhoc = _target(config, args)
    chain = config.chain(name)
    region = args.region or chain[0].region or chain[-1].region
    duration = check_duration(args.duration) if args.duration else None
    if chain[0].is_role:
        creds, _chain = _obtain(config, Request(name, mfa_code=args.mfa_code))
    else:
        resolver = Resolver(config)
        key = resolver.long_term_key(chain[0], name)
        creds = sts.get_federation_token(key, region, f"awsenv-{name}", duration or 3600)
        duration = None  # GetFederationToken's own duration bounds the console session
    federation, console = login.endpoints(region)
    url = login.login_url(federation, console, login.signin_token(federation, creds, duration))
    if args.print:
        _emit(url + "\n")
        return
    import webbrowser

    if not webbrowser.open(url):
        raise UsageError("could not open a browser; run `awsenv login --print` and open the URL yourself")
    print(f"awsenv: opened the console for {name} in the browser", file=sys.stderr)


MFA_WARNING = (
    "awsenv: a TOTP secret kept on the same machine as the access key turns two factors "
    "into one: whoever has this machine has both. That is a fair trade for an automation "
    "or sandbox identity that must run unattended; keep a separate device for people and "
    "for production."
)


def cmd_mfa(args) -> None:
    from .mfa import Terminal

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
