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

from test_core import env_after
from test_structure import wait_for_agent


def agent_pid(world) -> int:
    status = json.loads(world.ok("agent", "status", "--json").stdout)
    assert status["running"], status
    return status["pid"]


def sock(world):
    return world.keyring.runtime_dir / "awsenv" / "agent.sock"


def gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            return True
        time.sleep(0.02)
    return False


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
    assert gone(pid) and not sock(world).exists()
    assert "no agent is running" in world.ok("agent", "status").stdout
    assert json.loads(world.ok("agent", "status", "--json").stdout) == {"running": False}
    assert "no agent is running" in world.ok("agent", "stop").stderr


def test_sigterm_removes_the_socket(world):
    world.add_keys()
    use(world, "ci")
    wait_for_agent(world)
    pid = agent_pid(world)
    os.kill(pid, signal.SIGTERM)
    assert gone(pid)
    assert not sock(world).exists()


def test_a_killed_agent_leaves_no_socket_that_slows_the_next_call(world):
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    wait_for_agent(world)
    pid = agent_pid(world)
    os.kill(pid, signal.SIGKILL)
    assert gone(pid)
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
