"""use, unset, export, exec, refresh, status, whoami and login: the commands that hand
out temporary credentials or tell which are active."""
from __future__ import annotations

import json
import os
import sys
import time

from ... import shells
from ...core import environ
from ...core.config import AwsConfig
from ...core.creds import Credentials, format_ttl, rfc3339
from ...core.errors import AwsenvError, Unsupported, UsageError
from ...core.settings import MIN_TTL, NEVER, env_number, refresh_window, setting
from ...session.resolver import Request, Resolver
from .common import emit, target_shell


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


# server mode -------------------------------------------------------------------
ENDPOINT = "http://127.0.0.1:{port}/awsenv/credentials"


def server_wanted(args) -> bool:
    """--server / --no-server, else AWSENV_SERVER=1 makes server mode the default."""
    wanted = getattr(args, "server", None)
    if wanted is None:
        wanted = os.environ.get("AWSENV_SERVER", "").lower() in ("1", "on", "yes", "true")
    if wanted:
        from ...store import agentclient as agent

        if not agent.enabled():
            raise UsageError("--server needs the session agent, and AWSENV_AGENT=0 turns it off")
    return wanted


def revoke_served(env=os.environ) -> None:
    """Forget the token an earlier `use --server` put in this environment."""
    token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    if env.get("AWSENV_SERVED") and token:
        from ...store import agentclient as agent

        agent.ask({"op": "revoke", "token": token})


def _issue(watch: dict, until: int, token: str | None, owner: int | None) -> dict:
    """A token for this profile from the agent, started first if it isn't running."""
    from ...store import agentclient as agent

    message = {"op": "issue", "watch": watch, "until": until, "token": token, "owner": owner}
    answer = agent.ask(message)
    if answer is None and not agent.enabled():
        raise UsageError("server mode needs the session agent, and AWSENV_AGENT=0 turns it off")
    if answer is None:
        agent.spawn()
        if agent.wait_for(5.0):
            answer = agent.ask(message)
    if answer is None or not isinstance(answer.get("port"), int):
        raise AwsenvError("the session agent did not start, so there is no endpoint to serve from")
    return answer


def serve(config: AwsConfig, name: str, request: Request, adhoc: dict[str, str], region: str | None,
          env, owner: int | None = None, base_ttl: float | None = None) -> environ.Plan:
    """Resolve and cache the profile as `use` does, then point this environment at the
    agent's endpoint for it. `base_ttl` (a refresh): the session the agent renews from
    must have that long left, asking for MFA if it has not, and the region stays as
    `use` or the user left it."""
    from ...agent.broker import renewable_from
    from ...session.watch import watch_of

    resolver = Resolver(config)
    chain = config.chain(name)
    if base_ttl is not None and renewable_from(config, chain, resolver.sessions):
        resolver.mfa_session(chain[-1], request, chain=chain, need_ttl=base_ttl)
    creds, chain = resolver.resolve(request)
    try:
        resolver.save()
    except AwsenvError as err:
        print(f"awsenv: warning: the session was not cached: {err}", file=sys.stderr)
    base = renewable_from(config, chain, resolver.sessions)
    act_by = int(resolver.sessions[base]["Expiration"]) if base else creds.expiration
    if act_by is None:
        raise UsageError(f"profile {name!r} gives credentials without an expiry; use it without --server")
    same = env.get("AWSENV_PROFILE") == name and env.get("AWSENV_SERVED")
    if not same:
        revoke_served(env)
    old = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN") if same else None
    granted = _issue(watch_of(config, chain), act_by, old, owner)
    if base_ttl is None:
        region = region or chain[0].region or (chain[1].region if adhoc else None)
    return environ.server_plan(name, region, env, ENDPOINT.format(port=granted["port"]), granted["token"],
                               granted["pid"], act_by, adhoc)


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
        return _exec_served(args, command)
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


def _exec_served(args, command: list[str]) -> int:
    """exec --server: the child and its children reach the endpoint; the token is
    revoked when the command ends (and by the agent if this process dies first)."""
    import signal
    import subprocess

    plan, _name = _serve_args(args, owner=os.getpid())
    env = environ.apply(plan, dict(os.environ))
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        revoke_served(env)
        print(f"awsenv: command not found: {command[0]}", file=sys.stderr)
        return 127
    except OSError as err:
        revoke_served(env)
        print(f"awsenv: cannot run {command[0]}: {err.strerror}", file=sys.stderr)
        return 126
    # Ctrl-C reaches the child from the terminal; a TERM or HUP sent to us is passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    passed_on = [signal.SIGTERM]
    if sys.platform != "win32":
        passed_on.append(signal.SIGHUP)
    for signum in passed_on:
        signal.signal(signum, lambda number, _frame: child.send_signal(number))
    try:
        code = child.wait()
    finally:
        revoke_served(env)
    return code if code >= 0 else 128 - code


def cmd_refresh(args) -> None:
    """Renew the active credentials in place; run by the prompt hook when they have
    less than AWSENV_REFRESH_WINDOW seconds left. Silent when a cached MFA session
    allows it, otherwise asks for a code on the terminal (AWSENV_REFRESH=prompt) or
    only says so (warn). A declined or failed refresh is not retried before expiry,
    and once more after it."""
    from ...core.errors import Cancelled

    shell = target_shell(args)
    state = active()
    mode = os.environ.get("AWSENV_REFRESH", "prompt")
    if state is None or mode == "off":
        return
    if os.environ.get("AWSENV_SERVED"):
        _refresh_served(shell, state, mode)
        return
    profile, expires = state["profile"], state["expires_epoch"]
    window = refresh_window()
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
        again = f"asking again when it expires in {format_ttl(left)}" if left > 0 else "not asking again"
        if isinstance(err, (Cancelled, KeyboardInterrupt)):
            # After ^C the cursor is still on the question's line.
            start = "\n" if isinstance(err, KeyboardInterrupt) else ""
            print(f"{start}awsenv: {profile} not renewed; {again}", file=sys.stderr)
        else:
            reason = err if isinstance(err, AwsenvError) else f"internal error ({type(err).__name__})"
            print(f"awsenv: cannot refresh {profile}: {reason}", file=sys.stderr)
        next_check = expires if left > 0 else NEVER
        emit(shell.render([("AWSENV_NEXT_CHECK", str(next_check))]))
        return
    # A refresh renews credentials only: the region stays as `use` or the user left it.
    without_region = {k: v for k, v in os.environ.items() if k != "AWSENV_REGION"}
    plan = environ.use_plan(creds, profile, None, without_region, adhoc)
    if creds.expiration is not None and creds.ttl() <= window:
        # A role capped below the window: renew it once per lifetime, not every prompt.
        plan.append(("AWSENV_NEXT_CHECK", str(creds.expiration - setting("AWSENV_MIN_TTL", MIN_TTL))))
    emit(shell.render(plan))
    if creds.access_key_id != os.environ.get("AWS_ACCESS_KEY_ID"):
        left_now = "" if creds.expiration is None else f" ({format_ttl(creds.ttl())} left)"
        print(f"awsenv: renewed {profile}{left_now}", file=sys.stderr)


def _refresh_served(shell, state: dict, mode: str) -> None:
    """Server mode: the agent renews the role; the hook renews what it renews from (the
    MFA session, asking for a code) and repairs the endpoint after the agent died."""
    from ...core.errors import Cancelled
    from ...session.resolver import SOURCE_MIN_TTL

    profile, expires = state["profile"], state["expires_epoch"]
    window = refresh_window()
    left = expires - int(time.time())
    ends = f"ends in {format_ttl(left)}" if left > 0 else "has ended"
    note = f"the session that {profile}'s endpoint renews from {ends}"
    adhoc = {name: os.environ[name] for name in environ.ADHOC if os.environ.get(name)}
    config = AwsConfig()
    old_agent = env_number("AWSENV_SERVED")
    agent_gone = old_agent is not None and agent_leaving(old_agent)
    try:
        if "AWSENV_ROLE_ARN" in adhoc:
            config.adhoc(adhoc["AWSENV_ROLE_ARN"], adhoc.get("AWSENV_ROLE_FROM", "default"),
                         adhoc.get("AWSENV_ROLE_SESSION_NAME"))
        request = Request(profile, min_ttl=max(SOURCE_MIN_TTL, window + 60), prompt=mode == "prompt", note=note)
        without_region = {k: v for k, v in os.environ.items() if k != "AWSENV_REGION"}
        plan = serve(config, profile, request, adhoc, None, without_region, base_ttl=window + 60)
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the hook must always learn it tried
        if isinstance(err, KeyboardInterrupt):
            print(file=sys.stderr)
        elif not isinstance(err, Cancelled) or agent_gone:
            reason = err if isinstance(err, AwsenvError) else f"internal error ({type(err).__name__})"
            if agent_gone:
                print(f"awsenv: {profile}'s endpoint went away with its agent and could not be restarted "
                      f"({reason}); run `awsenv use {profile} --server` to serve it again", file=sys.stderr)
            else:
                print(f"awsenv: cannot refresh {profile}: {reason}", file=sys.stderr)
        emit(shell.render([("AWSENV_NEXT_CHECK", str(expires if left > 0 else NEVER))]))
        return
    if agent_gone:
        print(f"awsenv: {profile}'s endpoint went away with its agent; a new agent serves it", file=sys.stderr)
    act_by = int(dict(plan)["AWSENV_EXPIRES"] or 0)  # server_plan always sets it
    if act_by - time.time() <= window:
        # What the user renews is capped below the window: once per lifetime.
        plan.append(("AWSENV_NEXT_CHECK", str(act_by - setting("AWSENV_MIN_TTL", MIN_TTL))))
    emit(shell.render(plan))


# status / whoami ----------------------------------------------------------------
def active() -> dict | None:
    profile = os.environ.get("AWSENV_PROFILE")
    expires = env_number("AWSENV_EXPIRES")
    if not profile or expires is None:
        return None
    left = expires - int(time.time())
    return {
        "profile": profile,
        "expires": rfc3339(expires),
        "expires_epoch": expires,
        "seconds_left": max(left, 0),
        "expired": left <= 0,
        "access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", ""),
    }


def agent_leaving(pid: int) -> bool:
    """Whether a server-mode agent is gone or going away, as the prompt hook tells it."""
    from ...core.settings import LEAVING_MASK
    from ...host.runtime import process_gone

    if process_gone(pid):
        return True
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as stream:
            for line in stream:
                key, _, value = line.partition(":")
                if key in ("SigPnd", "ShdPnd") and int(value.strip() or "0", 16) & LEAVING_MASK:
                    return True
    except (OSError, ValueError):
        pass
    return False


def served() -> dict | None:
    """Server mode's state: the endpoint, and whether its agent still serves it."""
    pid = env_number("AWSENV_SERVED")
    if pid is None:
        return None
    return {"endpoint": os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", ""), "agent_pid": pid,
            "agent_running": not agent_leaving(pid)}


def cmd_status(args) -> None:
    state = active()
    serving = served() if state is not None else None
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


