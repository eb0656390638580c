"""`awsenv refresh`: the prompt hook's renewal of the active credentials, in env mode
and in server mode, and what the hook learns when it does not happen."""
from __future__ import annotations

import os
import sys
import time

from ...core import environ
from ...core.config import AwsConfig
from ...core.creds import format_ttl
from ...core.errors import AwsenvError
from ...core.settings import MIN_TTL, NEVER, env_number, refresh_window, setting
from ...session.resolver import Request, Resolver
from .common import active, emit, target_shell
from .served import agent_leaving, serve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def cmd_refresh(args) -> None:
    """Renew the active credentials in place; run by the prompt hook when they have
    less than AWSENV_REFRESH_WINDOW seconds left. Silent when a cached MFA session
    allows it, otherwise asks for a code on the terminal (AWSENV_REFRESH=prompt) or
    only says so (warn). A declined or failed refresh is not retried before expiry,
    and once more after it."""
    shell = target_shell(args)
    state = active()
    mode = os.environ.get("AWSENV_REFRESH", "prompt")
    if state is None or mode == "off":
        return
    if os.environ.get("AWSENV_SERVED"):
        _refresh_served(shell, state, mode)
    else:
        _refresh_env(shell, state, mode)


def _refresh_env(shell, state: dict, mode: str) -> None:
    """Env mode: new credentials for the profile, in place of the old ones."""
    profile, expires = state["profile"], state["expires_epoch"]
    window = refresh_window()
    left = expires - int(time.time())
    when = f"expire in {format_ttl(left)}" if left > 0 else "have expired"
    request = Request(profile, min_ttl=window + 60, prompt=mode == "prompt", note=f"the credentials of {profile} {when}")
    config, adhoc = AwsConfig(), _adhoc()
    resolver = Resolver(config)
    try:
        _restore(config, adhoc)
        creds, _chain = resolver.resolve(request)
        resolver.save()
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the hook must always learn it tried
        again = f"asking again when it expires in {format_ttl(left)}" if left > 0 else "not asking again"
        _failed(shell, profile, expires, err, declined=f"awsenv: {profile} not renewed; {again}")
        return
    # A refresh renews credentials only: the region stays as `use` or the user left it.
    plan = environ.use_plan(creds, profile, None, _without_region(), adhoc)
    if creds.expiration is not None:
        _once_if_capped(plan, creds.expiration, window)
    emit(shell.render(plan))
    if creds.access_key_id != os.environ.get("AWS_ACCESS_KEY_ID"):
        left_now = "" if creds.expiration is None else f" ({format_ttl(creds.ttl())} left)"
        print(f"awsenv: renewed {profile}{left_now}", file=sys.stderr)


def _refresh_served(shell, state: dict, mode: str) -> None:
    """Server mode: the agent renews the role; the hook renews what it renews from (the
    MFA session, asking for a code) and repairs the endpoint after the agent died."""
    from ...session.resolver import SOURCE_MIN_TTL

    profile, expires = state["profile"], state["expires_epoch"]
    window = refresh_window()
    left = expires - int(time.time())
    ends = f"ends in {format_ttl(left)}" if left > 0 else "has ended"
    note = f"the session that {profile}'s endpoint renews from {ends}"
    old_agent = env_number("AWSENV_SERVED")
    agent_gone = old_agent is not None and agent_leaving(old_agent)
    config, adhoc = AwsConfig(), _adhoc()
    try:
        _restore(config, adhoc)
        request = Request(profile, min_ttl=max(SOURCE_MIN_TTL, window + 60), prompt=mode == "prompt", note=note)
        plan = serve(config, profile, request, adhoc, None, _without_region(), base_ttl=window + 60)
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the hook must always learn it tried
        def failed(reason) -> str:
            return (f"awsenv: {profile}'s endpoint went away with its agent and could not be restarted "
                    f"({reason}); run `awsenv use {profile} --server` to serve it again")

        _failed(shell, profile, expires, err, declined=None, failed=failed if agent_gone else None)
        return
    if agent_gone:
        print(f"awsenv: {profile}'s endpoint went away with its agent; a new agent serves it", file=sys.stderr)
    _once_if_capped(plan, int(dict(plan)["AWSENV_EXPIRES"] or 0), window)  # server_plan always sets it
    emit(shell.render(plan))


# what both modes share ---------------------------------------------------------------
def _adhoc() -> dict[str, str]:
    """The state an ad hoc role (--role-arn) of the active credentials left, as `use` left it."""
    return {name: os.environ[name] for name in environ.ADHOC if os.environ.get(name)}


def _restore(config: AwsConfig, adhoc: dict[str, str]) -> None:
    """Put that ad hoc role back in the config, which names it nowhere."""
    if "AWSENV_ROLE_ARN" in adhoc:
        config.adhoc(adhoc["AWSENV_ROLE_ARN"], adhoc.get("AWSENV_ROLE_FROM", "default"),
                     adhoc.get("AWSENV_ROLE_SESSION_NAME"))


def _without_region() -> dict[str, str]:
    """The environment a refresh plans from: it renews credentials only, and the region
    stays as `use` or the user left it."""
    return {k: v for k, v in os.environ.items() if k != "AWSENV_REGION"}


def _once_if_capped(plan: environ.Plan, act_by: int, window: int) -> None:
    """What the user renews ends within the window (a role capped below it): renew it
    once per lifetime, shortly before its end, not at every prompt."""
    if act_by - time.time() <= window:
        plan.append(("AWSENV_NEXT_CHECK", str(act_by - setting("AWSENV_MIN_TTL", MIN_TTL))))


def _failed(shell, profile: str, expires: int, err: BaseException, declined: str | None,
            failed: Callable[[object], str] | None = None) -> None:
    """A refresh that did not happen: one line on stderr, and AWSENV_NEXT_CHECK for the
    hook, so it asks again at expiry and once after it, not at every prompt.
    `declined` is said after a declined question or Ctrl-C (None: nothing, a bare line
    break after Ctrl-C); `failed(reason)` replaces the usual failure line and is said
    for a declined question too."""
    from ...core.errors import Cancelled

    interrupted = isinstance(err, KeyboardInterrupt)
    if interrupted or (isinstance(err, Cancelled) and failed is None):
        # After ^C the cursor is still on the question's line.
        if declined is not None:
            print(f"{chr(10) if interrupted else ''}{declined}", file=sys.stderr)
        elif interrupted:
            print(file=sys.stderr)
    else:
        reason = err if isinstance(err, AwsenvError) else f"internal error ({type(err).__name__})"
        print(failed(reason) if failed else f"awsenv: cannot refresh {profile}: {reason}", file=sys.stderr)
    left = expires - int(time.time())
    emit(shell.render([("AWSENV_NEXT_CHECK", str(expires if left > 0 else NEVER))]))
