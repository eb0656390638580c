"""use, unset, export, exec, status, whoami and login: the commands that hand out
temporary credentials or tell which are active."""
from __future__ import annotations

import json
import os
import sys

from ... import shells
from ...core import environ
from ...core.config import AwsConfig
from ...core.creds import Credentials, format_ttl, rfc3339
from ...core.errors import AwsenvError, Unsupported, UsageError
from ...session.resolver import Request, Resolver
from .common import active, emit, target_shell
from .served import exec_served, revoke_served, serve, served, server_wanted


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


def _serve_args(args, owner: int | None = None) -> tuple[environ.Plan, str]:
    config = AwsConfig()
    name, adhoc = _target(config, args)
    if args.duration is not None:
        raise UsageError("--duration does not go with --server: the agent renews roles for as long as AWS allows")
    request = Request(name, mfa_code=args.mfa_code, refresh=args.refresh)
    return serve(config, name, request, adhoc, args.region, os.environ, owner), name


# use / unset / export / exec ---------------------------------------------------
APPLY = {"fish": "{cmd} | source", "pwsh": "{cmd} | Out-String | Invoke-Expression"}


def refuse_terminal(args, shell) -> None:
    """Statements for eval are of no use on the screen, and the secret key and token
    would stay in the scrollback: before anything is asked of anyone, say how to apply
    them instead. The wrapper and eval capture stdout, so they never get here."""
    if not sys.stdout.isatty():
        return
    import re

    profile = args.profile if args.profile and re.fullmatch(r"[\w.@+-]+", args.profile) else "PROFILE"
    command = f"awsenv use {profile}"
    apply = APPLY.get(shell.name, 'eval "$({cmd})"').format(cmd=command)
    raise UsageError(f"`use` prints shell statements, not for the screen: run {apply}, "
                     "or set up the wrapper with `awsenv init` (see awsenv help init)")


def choose_profile(args) -> None:
    """`use -` goes back to the profile before this one, as `cd -` uses OLDPWD; `use`
    with no profile opens the picker (a usage error without a terminal)."""
    if getattr(args, "role_arn", None) is not None:
        return
    if args.profile == "-":
        previous = os.environ.get(environ.PREVIOUS)
        if not previous:
            raise UsageError("no previous profile in this shell: `use -` goes back to the one "
                             "before the last switch, as `cd -` does")
        args.profile = previous
    elif args.profile is None:
        from ..picker import pick

        args.profile = pick()


def cmd_use(args) -> None:
    shell = target_shell(args)
    refuse_terminal(args, shell)
    choose_profile(args)
    if server_wanted(args):
        plan, name = _serve_args(args)
    else:
        creds, region, name, adhoc = _resolve(args)
        revoke_served()
        plan = environ.use_plan(creds, name, region, os.environ, adhoc)
    warn_without_region(name, plan)
    emit(shell.render(plan))
    if "AWSENV_ROLE_ARN" not in dict(plan):  # an ad hoc role has no name to pick again
        from ...store import recent

        recent.record(name)


def warn_without_region(name: str, plan: environ.Plan) -> None:
    """The AWS CLI and the SDKs refuse to guess a region. With none from the profile,
    --region, the environment or [default], the next `aws` call would fail with "You
    must specify a region"; say so now, while the user knows what they just did."""
    after = environ.apply(plan, dict(os.environ))
    if after.get("AWS_REGION") or after.get("AWS_DEFAULT_REGION"):
        return
    try:
        config = AwsConfig()
        if config.has("default") and config.profile("default").region:
            return
    except AwsenvError:
        return  # the config was read once already; a second reading has nothing to add
    print(f"awsenv: warning: no region for {name!r} (none in the profile, [default], AWS_REGION or --region), "
          "so the AWS CLI will ask to specify one; add `region = ...` to the profile or pass --region",
          file=sys.stderr)


def cmd_unset(args) -> None:
    shell = target_shell(args)
    revoke_served()
    emit(shell.render(environ.unset_plan(os.environ)))


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
        emit(json.dumps(document) + "\n")
        return
    shell = shells.get({"env": "bash", "powershell": "pwsh"}.get(args.format, args.format))
    emit(shell.render(export_plan(creds, name, region)))


def cmd_exec(args) -> int:
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    start_shell = not command
    if start_shell:  # as aws-vault does: a subshell with the credentials
        command = [os.environ.get("SHELL") or "/bin/sh"]
    if server_wanted(args):
        return exec_served(_serve_args(args, owner=os.getpid())[0], command)
    creds, region, name, adhoc = _resolve(args)
    env = environ.apply(environ.use_plan(creds, name, region, os.environ, adhoc), dict(os.environ))
    if start_shell:
        print(f"awsenv: starting {command[0]} with the credentials of {name}; `exit` leaves it", file=sys.stderr)
    sys.stdout.flush()
    try:
        if not hasattr(os, "fork"):
            return _run_child(command, env)
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        print(f"awsenv: command not found: {command[0]}", file=sys.stderr)
        return 127
    except OSError as err:
        print(f"awsenv: cannot run {command[0]}: {err.strerror}", file=sys.stderr)
        return 126
    return 0  # not reached: exec replaced this process


def _run_child(command: list[str], env: dict[str, str]) -> int:
    """Windows, which has no fork, emulates exec by starting the program and exiting at
    once: the caller would lose its exit code. So run it as a child and wait."""
    import signal
    import subprocess

    child = subprocess.Popen(command, env=env)
    # Ctrl-C reaches the child from the console too; it decides, and we report its code.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_status(args) -> None:
    state = active()
    serving = served(probe=True) if state is not None else None
    if args.json:
        extra = {"served": serving is not None, **(serving or {})} if state is not None else {}
        emit(json.dumps({"active": state is not None, **(state or {}), **extra}) + "\n")
        return
    if state is None:
        emit("no awsenv credentials in this environment\n")
        return
    left = "expired" if state["expired"] else f"{format_ttl(state['seconds_left'])} left"
    if serving is None:
        emit(f"{state['profile']}  expires {state['expires']}  {left}\n")
        return
    # The shell holds no keys: SDKs fetch them from the agent, which renews the role; the
    # time that matters is that of the session it renews from.
    agent = (f"the agent (pid {serving['agent_pid']})" if serving["agent_running"] else
             f"no agent (pid {serving['agent_pid']} is gone; the next prompt starts a new one)")
    emit(f"{state['profile']}  served by {agent} at {serving['endpoint']}\n"
         f"  renewed from a session that expires {state['expires']}  {left}\n")
    if serving.get("problem"):
        emit(f"  but the endpoint serves no credentials to this shell: {serving['problem']}; "
             f"run `awsenv use {state['profile']} --server` to serve it again\n")


def cmd_whoami(args) -> None:
    from ...aws import sts

    key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        # Not botocore's search through ~/.aws: whoami tells what this shell holds.
        raise UsageError("no AWS credentials are active in this shell; run `awsenv use PROFILE` first")
    creds = Credentials(key_id, secret, os.environ.get("AWS_SESSION_TOKEN") or None)
    identity = sts.caller_identity(creds, None)
    emit("".join(f"{key}: {identity[key]}\n" for key in ("Arn", "Account", "UserId")))


def cmd_login(args) -> None:
    from ...aws import console as login
    from ...aws import sts
    from ...core.settings import check_duration

    config = AwsConfig()
    name, _adhoc = _target(config, args)
    chain = config.chain(name)
    sentence = config.unsupported(name, chain)
    if sentence is not None:
        raise Unsupported(sentence)
    region = args.region or chain[0].region or chain[-1].region
    duration = check_duration(args.duration) if args.duration else None
    # A bad --service or --destination is refused before any code is asked for.
    federation, console = login.endpoints(region, args.service, args.destination)
    if chain[0].is_role or chain[0].is_sso:  # role credentials sign in as they are
        creds, _chain = _obtain(config, Request(name, mfa_code=args.mfa_code))
    else:
        resolver = Resolver(config)
        key = resolver.long_term_key(chain[0], name)
        creds = sts.get_federation_token(key, region, f"awsenv-{name}", duration or 3600)
        duration = None  # GetFederationToken's own duration bounds the console session
    url = login.login_url(federation, console, login.signin_token(federation, creds, duration))
    if args.print:
        emit(url + "\n")
        return
    from ...host.browser import open_browser
    from ...host.handoff import NO_BROWSER, NOT_FETCHED, WAIT, hand_over

    # The URL holds a sign-in token: the browser gets a one-shot loopback address instead,
    # so the token is on no command line (see handoff.py).
    outcome = hand_over(url, open_browser)
    if outcome == NO_BROWSER:
        raise UsageError("could not open a browser; run `awsenv login --print` and open the URL yourself")
    if outcome == NOT_FETCHED:
        raise UsageError(f"the browser did not open the sign-in page within {WAIT:g} s; "
                         "run `awsenv login --print` and open the URL yourself")
    print(f"awsenv: opened the console for {name} in the browser", file=sys.stderr)


