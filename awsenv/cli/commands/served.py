"""Server mode: a token for a profile from the agent's endpoint, the plan that points
an environment at it, `exec --server`, and whether the agent behind it is still there."""
from __future__ import annotations

import os
import sys

from ...core import environ
from ...core.config import AwsConfig
from ...core.errors import AwsenvError, UsageError
from ...core.settings import env_number
from ...session.resolver import Request, Resolver

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


def issue(watch: dict, until: int, token: str | None, owner: int | None, handoff: dict | None = None) -> dict:
    """A token for this profile from the agent, started first if it isn't running (and
    handed the file store's key, when this run opened it, as `use` hands it over)."""
    from ...store import agentclient as agent

    message = {"op": "issue", "watch": watch, "until": until, "token": token, "owner": owner}
    answer = agent.ask(message)
    if answer is None and not agent.enabled():
        raise UsageError("server mode needs the session agent, and AWSENV_AGENT=0 turns it off")
    if answer is None:
        agent.spawn(handoff)  # unless this run started one already, which is on its way
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
    granted = issue(watch_of(config, chain), act_by, old, owner, resolver.vault.handoff())
    if base_ttl is None:
        region = region or chain[0].region or (chain[1].region if adhoc else None)
    return environ.server_plan(name, region, env, ENDPOINT.format(port=granted["port"]), granted["token"],
                               granted["pid"], act_by, adhoc)


def exec_served(plan: environ.Plan, command: list[str]) -> int:
    """exec --server: the child and its children reach the endpoint of `plan` (issued
    with this process as its owner); the token is revoked when the command ends (and by
    the agent if this process dies first)."""
    import signal
    import subprocess

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


def served(probe: bool = False) -> dict | None:
    """Server mode's state: the endpoint, and whether its agent still serves it. With
    `probe`, the endpoint is asked as an SDK asks it, and `problem` says why it would
    not hand this shell credentials (None when it would)."""
    pid = env_number("AWSENV_SERVED")
    if pid is None:
        return None
    state: dict = {"endpoint": os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", ""), "agent_pid": pid,
                   "agent_running": not agent_leaving(pid)}
    if probe and state["agent_running"]:
        state["problem"] = endpoint_problem(state["endpoint"], os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", ""))
    return state


def endpoint_problem(endpoint: str, token: str) -> str | None:
    """None when the endpoint hands out credentials for `token`, else what it said, in a
    few printable words (the credentials themselves are read and dropped)."""
    import http.client
    import json
    import urllib.parse

    url = urllib.parse.urlsplit(endpoint)
    try:
        port = url.port
    except ValueError:
        port = None
    if url.hostname != "127.0.0.1" or port is None:
        return "it is not an awsenv endpoint on 127.0.0.1"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", url.path or "/", headers={"Authorization": token})
        reply = connection.getresponse()
        body = reply.read(1 << 16)
    except (OSError, http.client.HTTPException):
        return "it does not answer"
    finally:
        connection.close()
    if reply.status == 200:
        return None
    try:
        message = json.loads(body).get("Message")
    except (ValueError, AttributeError):
        message = None
    if not isinstance(message, str):
        return f"HTTP {reply.status}"
    message = "".join(c for c in message.removeprefix("awsenv: ") if c.isprintable())[:200]
    return f"{message} (HTTP {reply.status})"
