"""`awsenv agent status|stop`: see and stop the session agent, as `ssh-agent -k` does.
Status names profiles, kinds and times, never a secret or a token."""
from __future__ import annotations

import json
import os
import sys
import time

from ...core.creds import format_ttl
from ...store import agentclient as agent
from .common import emit


def cmd_agent(args) -> None:
    if args.action == "stop":
        _stop()
        return
    answer = agent._request({"op": "status"})
    status = answer.get("status") if answer else None
    if args.json:
        emit(json.dumps({"running": status is not None, **(status or {})}) + "\n")
        return
    if status is None:
        emit(f"no agent is running{_why_not()}\n")
        return
    emit(_describe(status))


def _why_not() -> str:
    if not agent.enabled():
        return " (AWSENV_AGENT=0 turns it off)"
    return ""


def _stop() -> None:
    path = agent.socket_path()
    if path is None or not os.path.exists(path):
        print("awsenv: no agent is running", file=sys.stderr)
        return
    answer = agent._request({"op": "status"}, path)
    endpoint = (answer or {}).get("status", {}).get("endpoint") or {}
    served = sorted(endpoint.get("tokens") or {})
    if not agent.stop(path):
        # Nobody listens: a killed agent's socket file. Remove it, so nothing waits on it.
        try:
            os.unlink(path)
        except OSError:
            pass
        print("awsenv: no agent is running (removed a stale socket)", file=sys.stderr)
        return
    deadline = time.monotonic() + 3
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    print("awsenv: agent stopped; its endpoint tokens are revoked", file=sys.stderr)
    if served or os.environ.get("AWSENV_SERVED"):
        # Server mode repairs a gone agent at the next prompt (the hook can't tell a stop
        # from a crash): say so, rather than let it look as if the stop did nothing.
        names = ", ".join(served) if served else os.environ.get("AWSENV_PROFILE", "a profile")
        print(f"awsenv: it served {names}: a shell in server mode starts a new agent at its next prompt; "
              "`awsenv unset` there leaves server mode, and then the agent stays stopped", file=sys.stderr)


def _session_label(entry: dict) -> str:
    """A base profile's GetSessionToken session is an MFA session only when it was
    obtained with a code; an agent older than the `mfa` field gets the plain word."""
    mfa = entry.get("mfa")
    return "session" if mfa is None else "MFA session" if mfa else "session without MFA"


def _describe(status: dict) -> str:
    now = time.time()
    lines = [f"agent pid {status['pid']}, up {format_ttl(now - status['started'])}"]
    if status.get("store"):
        lines.append(f"  store: {status['store']}" + ("" if status.get("loaded", True) else ", sessions not read yet"))
    sessions = status.get("sessions") or []
    for entry in sessions:
        expires = entry.get("expires")
        left = format_ttl(expires - now) if isinstance(expires, (int, float)) else "?"
        kind = {"session": _session_label(entry), "sso": "IAM Identity Center credentials",
                "login": "AWS sign-in credentials"}.get(entry["kind"], "role session")
        lines.append(f"  {entry['profile']}: {kind}, {left} left")
    if not sessions:
        lines.append("  no cached sessions")
    for watch in status.get("watched") or []:
        lines.append(f"  renews {watch['profile']}: {watch['state']}, {watch['renewals']} renewal(s)")
    endpoint = status.get("endpoint")
    if endpoint and endpoint.get("tokens"):
        served = ", ".join(f"{p} ({n})" for p, n in sorted(endpoint["tokens"].items()))
        lines.append(f"  endpoint http://{endpoint['address']} serves {served}")
    return "\n".join(lines) + "\n"
