"""The agent as a broker (issue 9) and as something a user can see and stop (issue 8):
`agent status|stop`, a killed agent, racing agents, and renewal by the agent itself,
against moto over HTTP and the real Secret Service."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import env_after, wait_gone
from test_structure import HEAVY, heavy, imported, wait_for_agent


def agent_pid(world) -> int:
    status = json.loads(world.ok("agent", "status", "--json").stdout)
    assert status["running"], status
    return status["pid"]


def sock(world):
    return world.keyring.runtime_dir / "awsenv" / "agent.sock"


def use(world, profile: str, *args: str, env: dict | None = None) -> dict:
    return env_after(world, world.ok("use", profile, "--shell", "bash", *args, env=env).stdout)


# agent status | stop ---------------------------------------------------------------
def test_agent_status_names_sessions_but_no_secret(world):
    world.add_keys()
    env = use(world, "dev", "--mfa-code", "123456")
    wait_for_agent(world)

    done = world.ok("agent", "status")
    assert "jump: MFA session" in done.stdout and "dev: role session" in done.stdout
    as_json = world.ok("agent", "status", "--json").stdout
    for secret in (env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"], env["AWS_ACCESS_KEY_ID"]):
        assert secret not in done.stdout + done.stderr + as_json
    status = json.loads(as_json)
    assert {(s["profile"], s["kind"]) for s in status["sessions"]} == {("jump", "session"), ("dev", "role")}
    # Nothing was renewed yet, so the agent has not paid for botocore.
    assert status["botocore_loaded"] is False


def test_agent_stop_stops_it_and_status_says_so(world):
    world.add_keys()
    use(world, "ci")
    wait_for_agent(world)
    pid = agent_pid(world)

    done = world.ok("agent", "stop")
    assert "agent stopped" in done.stderr and done.stdout == ""
    assert wait_gone(pid, 5.0) and not sock(world).exists()
    assert "no agent is running" in world.ok("agent", "status").stdout
    assert json.loads(world.ok("agent", "status", "--json").stdout) == {"running": False}
    assert "no agent is running" in world.ok("agent", "stop").stderr


def test_sigterm_removes_the_socket(world):
    world.add_keys()
    use(world, "ci")
    wait_for_agent(world)
    pid = agent_pid(world)
    os.kill(pid, signal.SIGTERM)
    assert wait_gone(pid, 5.0)
    assert not sock(world).exists()


def test_a_killed_agent_leaves_no_socket_that_slows_the_next_call(world):
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    wait_for_agent(world)
    pid = agent_pid(world)
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid, 5.0)
    assert sock(world).exists()  # SIGKILL leaves the file behind

    # The next switch still works (from the keyring), and starts a new agent, which
    # replaces the dead socket at once rather than after retries.
    started = time.monotonic()
    use(world, "dev")
    wait_for_agent(world, timeout=3)
    assert time.monotonic() - started < 3
    assert agent_pid(world) != pid
    world.moto.calls.clear()
    assert use(world, "dev")["AWSENV_PROFILE"] == "dev"
    assert world.moto.actions() == []

    # `agent stop` on a dead agent's socket removes the file.
    os.kill(agent_pid(world), signal.SIGKILL)
    done = world.ok("agent", "stop")
    assert "stale socket" in done.stderr and not sock(world).exists()


def test_a_second_agent_racing_the_first_leaves_one_serving(world):
    world.add_keys()
    use(world, "ci")  # sessions in the keyring; an agent may be starting now
    env = {k: v for k, v in world.env.items() if not k.startswith("AWS_")}
    racers = [subprocess.Popen([sys.executable, "-m", "awsenv.agent"], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(3)]
    try:
        wait_for_agent(world)
        time.sleep(1.5)  # the losers find the winner and exit
        alive = [p for p in racers if p.poll() is None]
        pid = agent_pid(world)
        # The agent `use` spawned or one racer won; every other one exited.
        assert len(alive) <= 1 and all(p.pid == pid for p in alive)
        assert use(world, "ci")["AWSENV_PROFILE"] == "ci"
    finally:
        for p in racers:
            if p.poll() is None:
                p.terminate()
                p.wait(5)


# renewal by the agent ------------------------------------------------------------------
AGE = """
import json, sys, time
from awsenv.store import agentclient as agent
from awsenv.store.vault import Vault
profile, left, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
prefix = json.dumps([kind, profile])[:-1] + ","
def change(doc):
    for key, entry in doc.items():
        if key.startswith(prefix):
            entry["Expiration"] = int(time.time()) + left
Vault().update_sessions(change, agent.push)
"""


def age(world, profile: str, left: int, kind: str = "role") -> None:
    """Time passing, for a role session (or an SSO profile's credentials, kind "sso"):
    its cached expiry moves to `left` seconds from now, in the keyring and the agent,
    as the next write would carry it."""
    subprocess.run([sys.executable, "-c", AGE, profile, str(left), kind], env=world.env, check=True, timeout=30)


def wait_until(check, timeout: float = 15.0, what: str = "it"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {timeout}s")


def assumed(world) -> list:
    return [c for c in world.moto.calls if c.action == "AssumeRole"]


def watched(world, profile: str) -> dict:
    status = json.loads(world.ok("agent", "status", "--json").stdout)
    return next((w for w in status["watched"] if w["profile"] == profile), {})


# The hook refreshes under 300 s (and asks for 360); the agent renews under 660.
WINDOWS = {"AWSENV_REFRESH_WINDOW": "300", "AWSENV_BROKER_LEAD": "300"}


def start_watching(world, profile: str, env: dict) -> dict:
    first = use(world, profile, "--mfa-code", "123456", env=env)
    wait_for_agent(world)
    use(world, profile, env=env)  # a switch through the agent: it now watches the role
    wait_until(lambda: watched(world, profile).get("state") == "fresh", what="watching")
    world.moto.calls.clear()
    return first


def test_a_role_a_shell_uses_is_renewed_before_the_hooks_window_and_refresh_calls_no_sts(world):
    world.add_keys()
    first = start_watching(world, "dev", WINDOWS)

    age(world, "dev", 500)  # inside the agent's lead, outside the hook's window
    renewal = wait_until(lambda: assumed(world), what="the agent's renewal")
    assert len(renewal) == 1 and renewal[0].key_id not in (world.alice.key_id, "")
    assert [c.action for c in world.moto.calls] == ["AssumeRole"]  # from the cached MFA session
    assert json.loads(world.ok("agent", "status", "--json").stdout)["botocore_loaded"] is True

    # The prompt hook finds the credentials due; its refresh is a cache hit.
    world.moto.calls.clear()
    due = {**WINDOWS, "AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(int(time.time()) + 200),
           "AWS_ACCESS_KEY_ID": first["AWS_ACCESS_KEY_ID"], "PYTHONPROFILEIMPORTTIME": "1"}
    done = world.ok("refresh", "--shell", "bash", env=due)
    assert world.moto.actions() == []
    # As light as a cached switch: no SDK, no keyring, not even the argument parser.
    assert heavy(imported(done.stderr), HEAVY + ("argparse",)) == []
    renewed = env_after(world, done.stdout)
    assert renewed["AWS_ACCESS_KEY_ID"] != first["AWS_ACCESS_KEY_ID"]
    assert int(renewed["AWSENV_EXPIRES"]) - time.time() > 3000


def test_a_role_capped_below_the_window_is_renewed_once_not_in_a_loop(world):
    world.add_keys()
    capped = {"AWSENV_REFRESH_WINDOW": "3600", "AWSENV_BROKER_LEAD": "300"}  # AWS gives dev 1 h at most
    start_watching(world, "dev", capped)

    def other_writes() -> None:  # every write makes the agent look at its schedules again
        for _ in range(3):
            age(world, "prod", 100)
        time.sleep(0.5)

    other_writes()
    assert assumed(world) == [], "a fresh capped session is not worth renewing"

    age(world, "dev", 1000)
    wait_until(lambda: assumed(world), what="the renewal")
    other_writes()
    assert len(assumed(world)) == 1
    assert watched(world, "dev")["state"] == "fresh"


def test_a_failing_sts_is_retried_with_backoff(world):
    world.add_keys()
    env = {**WINDOWS, "AWSENV_BROKER_BACKOFF": "0.3"}
    start_watching(world, "dev", env)
    times = []

    def refuse(call):
        if call.action == "AssumeRole":
            times.append(time.monotonic())
            return True
        return False

    world.moto.refuse = refuse
    age(world, "dev", 500)
    time.sleep(3.5)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert 3 <= len(times) <= 5, times  # 0, 0.3, 0.9, 2.1 s: not every tick
    assert all(later > earlier * 1.5 for earlier, later in zip(gaps, gaps[1:])), gaps
    assert watched(world, "dev")["state"].startswith("failed (")

    world.moto.refuse = None
    wait_until(lambda: watched(world, "dev").get("state") == "fresh", what="recovery")


def test_a_role_without_mfa_is_renewed_from_its_base_session(world):
    world.add_keys()
    use(world, "ci")  # a GetSessionToken session of the base profile, no MFA
    wait_for_agent(world)
    use(world, "deploy", env=WINDOWS)
    use(world, "deploy", env=WINDOWS)
    wait_until(lambda: watched(world, "deploy").get("state") == "fresh", what="watching")
    world.moto.calls.clear()

    age(world, "deploy", 500)
    renewal = wait_until(lambda: assumed(world), what="the renewal")
    assert renewal[0].key_id not in (world.robot.key_id, "")  # never the long-term key


def test_the_agent_never_asks_for_what_needs_the_key(world):
    world.add_keys()
    start_watching(world, "dev", WINDOWS)
    world.ok("clear", "jump")  # the MFA session is gone; only the user can make one
    age(world, "dev", 500)
    wait_until(lambda: watched(world, "dev").get("state") == "needs the user", what="giving up")
    assert world.moto.calls == []


def test_a_renewal_gets_its_shells_endpoint_and_leaves_os_environ_alone(world, monkeypatch):
    """In process, the broker renews `dev` for a shell whose AWS_ENDPOINT_URL is the
    emulator, while this process's own environment points STS at a dead port. The
    renewal reaches the emulator through the settings it was given, and os.environ is
    the same before, while the client is made, and after (the endpoint's threads read
    it at any moment)."""
    from awsenv.agent import broker
    from awsenv.aws import sts
    from awsenv.store import agentclient as agent

    world.add_keys()
    use(world, "jump", "--mfa-code", "123456")  # the MFA session dev is renewed from
    wait_for_agent(world)
    doc = agent._request({"op": "get"}, str(world.keyring.runtime_dir / "awsenv" / "agent.sock"))["doc"]
    world.moto.calls.clear()

    class Holder:  # the agent's document, as the broker sees it
        def __init__(self, doc: dict) -> None:
            self.doc = doc

        def snapshot(self) -> dict:
            return dict(self.doc)

        def replace(self, doc: dict) -> None:
            self.doc = doc

        def held(self) -> dict:
            return dict(self.doc)

    class Store:  # the keyring, as a renewal writes to it
        def update_sessions(self, change, publish, held=None):
            new = holder.snapshot()
            change(new)
            publish(new)
            return new

    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    before = dict(os.environ)
    during: list[dict] = []
    made = sts.client

    def client(*args, **kwargs):
        during.append(dict(os.environ))
        return made(*args, **kwargs)

    monkeypatch.setattr(sts, "client", client)
    holder = Holder(doc)
    renewer = broker.Broker(holder)
    renewer._vault = Store()
    spec = {"profile": "dev", "config": world.env["AWS_CONFIG_FILE"], "window": 600,
            "env": {"AWS_ENDPOINT_URL": world.moto.url}}
    assert renewer.renew_now(spec, 600) is True, renewer.report()
    assert during and all(seen == before for seen in during)
    assert dict(os.environ) == before
    assert [action for action, _key in world.moto.actions()] == ["AssumeRole"]
    assert any(json.loads(key)[:2] == ["role", "dev"] for key in holder.doc if key.startswith("["))
