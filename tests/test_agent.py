"""The agent's process as a user meets it: who it answers, where it keeps its socket, when it
exits, and how it tells a process is gone."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from helpers import is_agent_of, use, wait_gone
from test_structure import wait_for_agent


def require_root() -> None:
    """Tests that need a second, real user: root here and in CI (.ci/run installs with
    apt-get), so a missing privilege skips locally and fails under CI."""
    if os.getuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("this test needs root, to act as a second user")
        pytest.skip("needs root, to act as a second user")

# the agent's safety checks --------------------------------------------------------------
STRANGER = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(5)
sock.connect(sys.argv[1])
print("connected", flush=True)
reply = b""
try:  # a refusing agent may close before this is sent or read
    sock.sendall(json.dumps({"op": "get"}).encode() + b"\\n")
    sock.shutdown(socket.SHUT_WR)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
except OSError:
    pass
print(len(reply), reply.decode(errors="replace"))
"""


def agent_socket(world) -> Path:
    return world.keyring.runtime_dir / "awsenv" / "agent.sock"


def agent_pids(world) -> list[int]:
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and is_agent_of(pid, world)]


def test_the_agent_answers_no_other_user(world):
    """Mutation: `_peer_is_us` returning True. The directory and socket modes are the
    first guard; they are opened up here so that a real second user (nobody) reaches
    the socket and only the SO_PEERCRED check stands between it and the sessions."""
    require_root()
    world.add_keys()
    world.ok("use", "ci", "--shell", "bash")
    wait_for_agent(world)
    sock = agent_socket(world)
    from awsenv.store import agentclient as agent

    assert any(json.loads(k)[1] == "ci" for k in agent._request({"op": "get"}, str(sock))["doc"] if k != "mfa-used")
    # The suite keeps every test's runtime directory in one private parent: opened too.
    parent = world.keyring.runtime_dir.parent
    for path, mode in ((parent, 0o711), (world.keyring.runtime_dir, 0o711), (sock.parent, 0o711), (sock, 0o666)):
        os.chmod(path, mode)
    nobody = pwd.getpwnam("nobody")
    try:
        done = subprocess.run(
            ["/usr/bin/python3", "-I", "-c", STRANGER, str(sock)], capture_output=True, text=True, timeout=30,
            user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], cwd="/",
        )
    finally:
        os.chmod(parent, 0o700)
    assert done.stdout.startswith("connected\n"), done.stderr  # it did reach the agent
    assert done.stdout == "connected\n0 \n", "the agent answered another user"
    assert agent._request({"op": "get"}, str(sock)) is not None, "and it still serves its owner"


@pytest.mark.parametrize("problem", ["group-readable", "owned-by-another-user"])
def test_a_runtime_dir_that_is_not_private_is_not_used(world, problem):
    """Mutation: runtime_dir() without its owner or mode check."""
    if problem == "owned-by-another-user":
        require_root()
    base = Path(tempfile.mkdtemp(prefix="awsenv-rt-", dir="/tmp"))
    try:
        folder = base / "awsenv"
        folder.mkdir(mode=0o700)
        if problem == "group-readable":
            folder.chmod(0o750)
        else:
            nobody = pwd.getpwnam("nobody")
            os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        world.add_keys()
        env = {"XDG_RUNTIME_DIR": str(base)}
        first = use(world, "ci", env=env)
        again = use(world, "ci", env=env)
        # Credentials still come, cached in the keyring; nothing (socket, lock) went
        # into the folder, and no agent was started for it.
        assert again["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]
        assert [a for a, _ in world.moto.actions()] == ["GetSessionToken"]
        assert os.listdir(folder) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_runtime_dir_that_does_not_exist_is_not_a_traceback(world, tmp_path):
    """Mutation (cosmic-ray): the OSError of runtime_dir() not caught. XDG_RUNTIME_DIR
    can name a folder that is gone (after `su`, in a container): awsenv works on,
    without an agent, and caches in the keyring."""
    world.add_keys()
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "gone")}
    first = use(world, "ci", env=env)
    assert use(world, "ci", env=env)["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]
    assert [a for a, _ in world.moto.actions()] == ["GetSessionToken"]
    assert not (tmp_path / "gone").exists()


def test_the_agent_exits_after_its_idle_time(world):
    """Mutation: the idle check in serve() removed."""
    world.add_keys()
    world.ok("use", "ci", "--shell", "bash", env={"AWSENV_AGENT_IDLE": "2"})
    wait_for_agent(world)
    (pid,) = agent_pids(world)
    assert wait_gone(pid), "the agent is still there after its idle time"
    assert not agent_socket(world).exists()


def test_the_agent_stays_through_a_quiet_spell_shorter_than_its_idle_time(world):
    """The agent's accept wakes every second to check its idle time and its socket; a
    second with no request is not an exit. Mutation (cosmic-ray): the accept's
    TimeoutError not caught, so the agent left at the first quiet second and a served
    shell lost its endpoint."""
    world.add_keys()
    world.ok("use", "ci", "--shell", "bash")
    wait_for_agent(world)
    (pid,) = agent_pids(world)
    time.sleep(3)  # three of the accept's timeouts, and no request
    assert agent_pids(world) == [pid] and agent_socket(world).exists()


def test_the_agent_exits_when_its_socket_is_removed(world):
    """Mutation: the socket's inode check in serve() removed."""
    world.add_keys()
    world.ok("use", "ci", "--shell", "bash")
    wait_for_agent(world)
    (pid,) = agent_pids(world)
    agent_socket(world).unlink()
    assert wait_gone(pid), "the agent outlived its socket"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signalled_agent_exits_and_removes_its_socket(world, signum):
    """Mutation (cosmic-ray): the signal handlers not installed. Killed by TERM, HUP or
    INT, the agent must still run its cleanup: its socket goes, and its tokens with it."""
    world.add_keys()
    world.ok("use", "ci", "--shell", "bash")
    wait_for_agent(world)
    (pid,) = agent_pids(world)
    os.kill(pid, signum)
    assert wait_gone(pid), "the agent outlived the signal"
    assert not agent_socket(world).exists(), "a signalled agent left its socket behind"


def test_without_a_peer_credential_option_the_private_directory_is_the_guard(monkeypatch):
    """Mutation (cosmic-ray): `return True` made False where Python exposes neither
    SO_PEERCRED nor LOCAL_PEERCRED: the agent would refuse its own user. The 0700
    directory guards it there."""
    import socket

    from awsenv.agent import server as agent

    class Conn:
        def getsockopt(self, *args):
            raise AssertionError("no option to ask")

    monkeypatch.delattr(socket, "SO_PEERCRED")
    monkeypatch.delattr(socket, "LOCAL_PEERCRED", raising=False)
    assert agent._peer_is_us(Conn()) is True


def test_local_peercred_refuses_another_uid(monkeypatch):
    """macOS and FreeBSD have no SO_PEERCRED but LOCAL_PEERCRED, whose struct xucred
    starts with its version (0) and the peer's uid. Only the decoding is checked here,
    with a stand-in for the socket: this machine's kernel has no LOCAL_PEERCRED (the
    real refusal on Linux: test_the_agent_answers_no_other_user)."""
    import socket
    import struct

    from awsenv.agent import server as agent

    class Conn:
        def __init__(self, answer):
            self.answer, self.asked = answer, []

        def getsockopt(self, level, option, size):
            self.asked.append((level, option))
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer[:size]

    def xucred(version: int, uid: int) -> bytes:
        return struct.pack("=2Ih2x16I", version, uid, 1, *[20] * 16)

    monkeypatch.delattr(socket, "SO_PEERCRED")
    monkeypatch.setattr(socket, "LOCAL_PEERCRED", 1, raising=False)
    ours = Conn(xucred(0, os.getuid()))
    assert agent._peer_is_us(ours) is True and ours.asked == [(0, 1)]  # SOL_LOCAL is 0
    assert agent._peer_is_us(Conn(xucred(0, os.getuid() + 1))) is False
    assert agent._peer_is_us(Conn(xucred(1, os.getuid()))) is False, "an unknown layout is refused"
    assert agent._peer_is_us(Conn(OSError("not a unix socket"))) is False


def test_whether_a_process_is_gone_with_proc_and_without(monkeypatch):
    """The agent's `stop` and the endpoint's owner check ask whether a pid is gone.
    Bug found by make mutants (the kill -0 fallback was reached by no test): without
    /proc (macOS, the BSDs) every pid counted as gone, so a server-mode token died at
    once and `agent stop` returned before the agent had exited."""
    from awsenv.host import runtime

    child = subprocess.Popen(["true"])
    child.wait()  # reaped: no process has that pid now
    for proc in (True, False):
        if not proc:
            def no_proc(path, *args, **kwargs):
                if str(path).startswith("/proc/"):
                    raise FileNotFoundError(path)
                return open(path, *args, **kwargs)

            isdir = os.path.isdir
            monkeypatch.setattr(runtime, "open", no_proc, raising=False)
            monkeypatch.setattr(os.path, "isdir", lambda path: not str(path).startswith("/proc") and isdir(path))
        assert runtime.process_gone(os.getpid()) is False, proc
        assert runtime.process_gone(child.pid) is True, proc

    # A /proc that may not be read (mounted with hidepid), and a process of another user,
    # to which kill -0 answers EPERM: both are there, not gone.
    def unreadable(path, *args, **kwargs):
        raise PermissionError(path)

    def not_ours(pid, signum):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(runtime, "open", unreadable, raising=False)
    assert runtime.process_gone(os.getpid()) is False
    assert runtime.process_gone(child.pid) is True
    monkeypatch.setattr(os, "kill", not_ours)
    assert runtime.process_gone(os.getpid()) is False
