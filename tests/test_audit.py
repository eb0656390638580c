"""Behaviours the audit of the suite found no test for (issue 12). Each test here was
seen to fail with the behaviour broken by hand (the mutation is named in its docstring)."""
from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import AWSENV, require
from terminal import READY, now
from test_core import env_after, one_line_error, use
from test_edges import _is_agent_of, keyring_get, keyring_set
from test_hostile_profile import nothing_ran
from test_shells import export
from test_structure import wait_for_agent
from world import boto_client

ROLE = "arn:aws:iam::123456789012:role"


def require_root() -> None:
    """Tests that need a second, real user: root here and in CI (.ci/run installs with
    apt-get), so a missing privilege skips locally and fails under CI."""
    if os.getuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("this test needs root, to act as a second user")
        pytest.skip("needs root, to act as a second user")


# the wrapper's exit status --------------------------------------------------------------
FAILED_USE = {
    "bash": 'eval "$(awsenv init bash)"\nawsenv use {args}\necho "rc=$? profile=${{AWSENV_PROFILE-unset}}"\n',
    "zsh": 'eval "$(awsenv init zsh)"\nawsenv use {args}\necho "rc=$? profile=${{AWSENV_PROFILE-unset}}"\n',
    "fish": "awsenv init fish | source\nawsenv use {args}\nset -l rc $status\n"
            "set -q AWSENV_PROFILE; and set p set; or set p unset\necho \"rc=$rc profile=$p\"\n",
}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_a_failed_use_through_the_wrapper_returns_its_status(world, shell):
    """Mutation: `__awsenv_eval` returning 0 (or the wrapper dropping the status)."""
    # unknown profile: a usage error (2); no key stored: a keyring failure (1)
    for args, code in (("nosuch", 2), ("dev --mfa-code 123456", 1)):
        done = world.shell(shell, FAILED_USE[shell].format(args=args))
        assert done.stdout.strip() == f"rc={code} profile=unset", (args, done.stdout, done.stderr)
        assert done.stderr.startswith("awsenv: "), done.stderr


# AWSENV_REFRESH=warn|off ----------------------------------------------------------------
def refresh_on_a_terminal(world, env: dict) -> tuple[int, str]:
    """`awsenv refresh` as the hook runs it, with a terminal it could ask on."""
    import pexpect

    child = pexpect.spawn(AWSENV, ["refresh", "--shell", "bash"], env=env, cwd=str(world.root),
                          encoding="utf-8", timeout=30)
    try:
        index = child.expect(["MFA code for jump", pexpect.EOF])
        output = child.before + (child.after if index == 0 else "")
        if index == 0:
            child.sendline("")  # decline
            child.expect(pexpect.EOF)
            output += child.before
    finally:
        child.close()
    return child.exitstatus, output


def test_refresh_warn_says_so_without_asking_and_off_does_nothing(world):
    """Mutations: `prompt=mode == "prompt"` made always True; the `off` check removed."""
    world.add_keys()
    # A jump session with 15 minutes left under a 1000 s window: due, and only a new
    # code can renew it.
    env = {**use(world, "jump", "--duration", "900", "--mfa-code", "123456"), "AWSENV_REFRESH_WINDOW": "1000"}
    world.moto.calls.clear()
    status, output = refresh_on_a_terminal(world, env)  # prompt, the default, asks
    assert status == 0 and "MFA code for jump" in output, output
    status, output = refresh_on_a_terminal(world, {**env, "AWSENV_REFRESH": "warn"})
    assert status == 0, output
    assert "MFA code for jump" not in output
    assert "cannot refresh jump" in output and "needs a new MFA code" in output, output
    assert re.search(r"export AWSENV_NEXT_CHECK='\d+';", output), "warned once, not on every prompt"
    status, output = refresh_on_a_terminal(world, {**env, "AWSENV_REFRESH": "off"})
    assert (status, output) == (0, "")
    assert world.moto.actions() == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_refresh_off_starts_nothing_at_the_prompt(world, term, shell):
    """Mutation: the hook's `AWSENV_REFRESH != off` check removed."""
    world.add_keys()
    t = term(shell, before=export(shell, "AWSENV_REFRESH_WINDOW", "1000") + "\n" + export(shell, "AWSENV_REFRESH", "off"))
    t.run("awsenv use jump --duration 900 --mfa-code 111111")
    runs = len(t.recorder.runs())
    for _ in range(2):
        t.run("")
    assert len(t.recorder.runs()) == runs, t.recorder.runs()[runs:]
    assert "MFA code for jump" not in t.output
    assert re.search(r"\(jump 1[45]m!\) " + READY, t.output), t.output[-300:]
    # The same shell with the default mode asks at the next prompt.
    t.child.send(export(shell, "AWSENV_REFRESH", "prompt") + "\r")
    t.expect("MFA code for jump")
    t.child.send("\r")
    t.prompt()


# a role capped below the window -----------------------------------------------------------
CAPPED = """
set -eu
eval "$(awsenv init bash)"
awsenv use dev --mfa-code 123456
export AWSENV_REFRESH_WINDOW=4000
__awsenv_hook
echo "renewed expires=$AWSENV_EXPIRES next=${AWSENV_NEXT_CHECK-none} now=$(date +%s)"
__awsenv_hook
__awsenv_hook
echo "quiet next=$AWSENV_NEXT_CHECK"
export AWSENV_NEXT_CHECK=$(date +%s)
__awsenv_hook
echo "again expires=$AWSENV_EXPIRES next=${AWSENV_NEXT_CHECK-none}"
"""


@pytest.mark.parametrize("min_ttl", [None, "900"])
def test_a_role_capped_below_the_window_is_renewed_once_per_lifetime(world, min_ttl):
    """Mutation: `creds.expiration + MIN_TTL` in the AWSENV_NEXT_CHECK arithmetic."""
    world.add_keys()
    done = world.shell("bash", CAPPED, env={"AWSENV_MIN_TTL": min_ttl} if min_ttl else None)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: dict(kv.split("=") for kv in line.split()[1:]) for line in done.stdout.splitlines()}
    renewed, again = lines["renewed"], lines["again"]
    expires, next_check, at = int(renewed["expires"]), int(renewed["next"]), int(renewed["now"])
    # AWS caps the role at 1 h, under the 4000 s window: the next check is due when
    # the role has AWSENV_MIN_TTL left, inside its lifetime, not at every prompt.
    assert next_check == expires - int(min_ttl or 300)
    assert at < next_check < expires
    assert lines["quiet"]["next"] == renewed["next"]
    assert int(again["next"]) == int(again["expires"]) - int(min_ttl or 300)
    assumed = [a for a, _ in world.moto.actions()].count("AssumeRole")
    assert assumed == 3, "use, one renewal, and one more when the next check came"


# rotate's rollback paths --------------------------------------------------------------
def iam_keys(world, user: str) -> set[str]:
    listed = boto_client("iam", world.moto.url).list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {k["AccessKeyId"] for k in listed}


def new_key_of(world) -> str:
    created = [c for c in world.moto.calls if c.action == "CreateAccessKey"]
    assert len(created) == 1
    (key,) = {c.key_id for c in world.moto.calls if c.action == "GetCallerIdentity"} - {world.robot.key_id}
    return key


def still_works_with(world, key_id: str) -> None:
    world.ok("clear")
    world.moto.calls.clear()
    use(world, "ci")
    assert world.moto.actions() == [("GetSessionToken", key_id)]


def test_rotate_whose_new_key_cannot_be_deleted_keeps_the_old_one_and_names_both(world):
    """Mutation: the cleanup's message dropped (the new key left in IAM unnamed)."""
    world.add_keys()
    old = world.robot.key_id
    world.moto.refuse = lambda call: (
        (call.action == "GetCallerIdentity" and call.key_id != old)
        or (call.action == "DeleteAccessKey" and call.params.get("AccessKeyId") != old and ("AccessDenied", "no"))
    )
    done = world.run("rotate", "ci", env={"AWSENV_ROTATE_VERIFY_SECONDS": "1"})
    world.moto.refuse = None
    new = new_key_of(world)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert re.search(rf"could not delete the new key {new}\b.*delete it in IAM", done.stderr), done.stderr
    assert f"the old key {old} is kept" in done.stderr
    assert world.robot.secret not in done.stderr
    assert iam_keys(world, "robot") == {old, new}
    still_works_with(world, old)


def test_rotate_interrupted_while_verifying_keeps_the_old_key(world):
    """Mutation: KeyboardInterrupt not caught around the verification (the new key
    stays in IAM), or the old key not named."""
    world.add_keys()
    old = world.robot.key_id
    verifying = threading.Event()

    def not_yet(call):
        if call.action == "GetCallerIdentity" and call.key_id != old:
            verifying.set()
            return True
        return None

    world.moto.refuse = not_yet
    child = subprocess.Popen(
        [AWSENV, "rotate", "ci"], env={**world.env, "AWSENV_ROTATE_VERIFY_SECONDS": "120"}, cwd=world.root,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert verifying.wait(60), "rotate never tried the new key"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    world.moto.refuse = None
    new = new_key_of(world)
    assert child.returncode == 130 and out == "", err
    assert f"the old key {old} is kept" in err and new in err, err
    assert [c.params.get("AccessKeyId") for c in world.moto.calls if c.action == "DeleteAccessKey"] == [new]
    assert iam_keys(world, "robot") == {old}
    still_works_with(world, old)


def test_rotate_whose_old_key_cannot_be_deleted_keeps_the_new_one_stored(world):
    """Mutation: the new key stored only after the old one is deleted."""
    world.add_keys()
    old = world.robot.key_id
    world.moto.refuse = lambda call: (
        ("AccessDenied", "no") if call.action == "DeleteAccessKey" and call.params.get("AccessKeyId") == old else None
    )
    done = world.run("rotate", "ci")
    world.moto.refuse = None
    new = new_key_of(world)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    line = done.stderr.splitlines()[-1]  # after the progress line
    assert f"the new key {new} is stored and works" in line and f"old key {old} failed" in line, done.stderr
    assert iam_keys(world, "robot") == {old, new}
    still_works_with(world, new)


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
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _is_agent_of(pid, world)]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # an orphan's zombie has exited


def wait_gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


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


def test_a_write_drops_expired_sessions_from_the_keyring(world):
    """Mutation (cosmic-ray): the loop in Resolver.save that drops expired entries made
    empty. Expired credentials must not pile up in the keyring item."""
    from test_broker import age
    from test_edges import keyring_get

    world.add_keys()
    use(world, "ci")
    age(world, "ci", -10, kind="session")  # the ci session has ended
    assert any(json.loads(key)[1] == "ci" for key in json.loads(keyring_get(world, "sessions")))
    use(world, "dev", "--mfa-code", "123456")  # the next write
    doc = json.loads(keyring_get(world, "sessions"))
    profiles = [json.loads(key)[1] for key in doc if key.startswith("[")]
    assert "ci" not in profiles and {"jump", "dev"} <= set(profiles), profiles


# the MFA code memory ----------------------------------------------------------------------
class NoTerminal:
    available = False


@pytest.mark.parametrize(("elapsed", "refused"), [(0, True), (89, True), (90, False), (600, False)])
def test_a_sent_code_is_spent_for_90_seconds(elapsed, refused):
    """Mutation: 3 * STEP (90 s) made 1 * STEP (30 s). STS accepts a code about one
    step either side of its own, so a code stays spent for three steps."""
    from awsenv.core.errors import MfaError
    from awsenv.session.mfa import CodeSource

    sent_at = 1_700_000_000
    codes = CodeSource("123456", lambda _profile: None, {"SERIAL": ["123456", sent_at]}, terminal=NoTerminal(),
                       clock=lambda: sent_at + elapsed)
    if refused:
        with pytest.raises(MfaError, match="already used"):
            codes.code("jump", "SERIAL")
    else:
        assert codes.code("jump", "SERIAL") == "123456"
    other = CodeSource("654321", lambda _profile: None, {"SERIAL": ["123456", sent_at]}, terminal=NoTerminal(),
                       clock=lambda: sent_at + elapsed)
    assert other.code("jump", "SERIAL") == "654321", "only the code that was sent is spent"


def test_duration_asks_for_a_role_session_of_that_length(world):
    """Mutation (cosmic-ray): --duration applied to the role's source instead of the
    role (`if top` made `if not top`): dev would get its usual hour."""
    world.add_keys()
    env = use(world, "dev", "--mfa-code", "123456", "--duration", "20m")
    assert 1100 < int(env["AWSENV_EXPIRES"]) - time.time() <= 1200
    (call,) = [c for c in world.moto.calls if c.action == "AssumeRole"]
    assert call.params["DurationSeconds"] == "1200"


def test_a_role_takes_its_mfa_code_from_the_base_profiles_totp_secret(world):
    """Mutation (cosmic-ray): the secret looked up under the role's name (`base or
    profile` made `and`). The secret is stored for the profile that holds the device."""
    import pyotp

    world.add_keys()
    world.ok("mfa", "set", "jump", input=pyotp.random_base32() + "\n")
    env = use(world, "dev")  # no --mfa-code and no terminal: the code comes from jump's secret
    assert env["AWSENV_PROFILE"] == "dev"
    assert [a for a, _ in world.moto.actions()] == ["GetSessionToken", "AssumeRole"]


def test_a_stored_totp_secret_that_is_not_base32_is_one_line(world):
    """Mutation (cosmic-ray): the errors of a bad secret not caught in _totp. `mfa set`
    refuses such a secret, but the keyring item can be changed by other tools."""
    from test_edges import keyring_set

    world.add_keys()
    keyring_set(world, "totp:jump", "not base32!")
    line = one_line_error(world.run("use", "jump", "--shell", "bash"), 1)
    assert "TOTP secret" in line and "not base32" in line and "awsenv mfa set" in line
    assert world.moto.actions() == []


def test_a_totp_code_already_sent_waits_for_the_next_step_and_no_longer(monkeypatch):
    """Mutation (cosmic-ray): the wait for the next TOTP step miscounted (`%` made `//`,
    a sign flipped, one second less). 20 s into a step, the next code comes 11 s later
    (one second into the next step), not sooner and not a step later."""
    import pyotp

    from awsenv.session.mfa import STEP, CodeSource

    secret = pyotp.random_base32()
    now = [STEP * 56_666_666 + 20]
    monkeypatch.setattr(pyotp.TOTP, "now", lambda self: self.at(now[0]))
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    class Said:
        available = True
        lines: list = []

        def say(self, text):
            self.lines.append(text)

    sent = pyotp.TOTP(secret).at(now[0])
    codes = CodeSource(None, lambda _profile: secret, {"SERIAL": [sent, now[0] - 5]}, terminal=Said(),
                       clock=lambda: now[0], sleep=sleep)
    code = codes.code("jump", "SERIAL")
    assert slept == [11] and code == pyotp.TOTP(secret).at(STEP * 56_666_667 + 1) != sent
    assert Said.lines == ["awsenv: waiting 11s for the next MFA code"]


@pytest.mark.parametrize(("ago", "refused"), [(60, True), (120, False)])
def test_the_code_memory_is_kept_between_runs(world, ago, refused):
    """The same limit through the program and the keyring: a code sent a minute ago by
    another run is refused before any call; one sent two minutes ago goes to STS."""
    world.add_keys()
    serial = world.alice.mfa_serial
    keyring_set(world, "sessions", json.dumps({"mfa-used": {serial: ["123456", int(time.time()) - ago]}}))
    done = world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash", env={"AWSENV_AGENT": "0"})
    if refused:
        assert "already used" in one_line_error(done, 1)
        assert world.moto.actions() == []
    else:
        assert done.returncode == 0, done.stderr
        assert [c.params.get("TokenCode") for c in world.moto.calls] == ["123456"]


# AWSENV_MIN_TTL at its threshold ------------------------------------------------------
class SessionsOnly:
    """The vault's session side, in memory; no long-term key is stored."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc

    def load_sessions(self) -> dict:
        return self.doc

    def handoff(self) -> None:
        return None  # nothing for an agent to hold

    def get_key(self, _name: str):
        return None


@pytest.mark.parametrize(("left", "reused"), [(301, True), (300, False), (299, False)])
def test_min_ttl_threshold(tmp_path, monkeypatch, left, reused):
    """A cached session is reused while it has more than AWSENV_MIN_TTL left.
    Mutation: `>` made `>=`, or the variable not read."""
    from awsenv.core.cachekeys import session_key
    from awsenv.core.config import AwsConfig
    from awsenv.core.creds import Credentials
    from awsenv.core.errors import KeyringError
    from awsenv.session.resolver import Request, Resolver

    config = tmp_path / "config"
    config.write_text("[profile jump]\nmfa_serial = arn:aws:iam::123456789012:mfa/alice\n")
    monkeypatch.setenv("AWSENV_AGENT", "0")
    monkeypatch.setenv("AWSENV_MIN_TTL", "300")
    expires = 1_700_000_000
    cached = Credentials("ASIACACHED0000000000", "secret", "token", expires)
    doc = {session_key("jump", "arn:aws:iam::123456789012:mfa/alice"): cached.to_dict()}
    resolver = Resolver(AwsConfig(str(config), str(tmp_path / "credentials")), SessionsOnly(doc),
                        clock=lambda: expires - left)
    if reused:
        assert resolver.resolve(Request("jump"))[0] == cached
    else:
        with pytest.raises(KeyringError, match="no key stored"):  # it went for a new session
            resolver.resolve(Request("jump"))


def test_min_ttl_through_the_program(world):
    world.add_keys()
    use(world, "jump", "--mfa-code", "123456")  # 12 h
    world.moto.calls.clear()
    assert use(world, "jump", env={"AWSENV_MIN_TTL": str(12 * 3600 - 600)})["AWSENV_PROFILE"] == "jump"
    assert world.moto.actions() == []
    done = world.run("use", "jump", "--shell", "bash", env={"AWSENV_MIN_TTL": str(12 * 3600 + 60)})
    assert "needs an MFA code" in one_line_error(done, 1)
    # Not a number: one line that names it (mutation: env_seconds' ValueError not caught).
    done = world.run("use", "jump", "--shell", "bash", env={"AWSENV_MIN_TTL": "5m"})
    assert one_line_error(done, 2) == "awsenv: AWSENV_MIN_TTL must be a number of seconds, not '5m'"


@pytest.mark.parametrize("entry", [
    {"SecretAccessKey": "s", "SessionToken": "t", "Expiration": 4102444800},  # no key ID
    {"AccessKeyId": "ASIAX", "SecretAccessKey": "s", "Expiration": "soon"},
    {"AccessKeyId": "ASIAX", "SecretAccessKey": "s", "Expiration": [4102444800]},
])
def test_a_damaged_cached_session_is_replaced_not_a_traceback(world, entry):
    """The sessions item under the right key, but what it holds is not a session (the
    item can be edited by other tools). Mutations (cosmic-ray): KeyError, ValueError or
    TypeError from Credentials.from_dict not caught in `cached`."""
    world.add_keys()
    use(world, "ci")
    stored = json.loads(keyring_get(world, "sessions"))
    (key,) = [k for k in stored if k != "mfa-used"]
    world.ok("agent", "stop")
    keyring_set(world, "sessions", json.dumps({key: entry}))
    world.moto.calls.clear()
    env = use(world, "ci", env={"AWSENV_AGENT": "0"})
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]
    assert env["AWS_ACCESS_KEY_ID"] != "ASIAX"


# the prompt and the hook under set -u ------------------------------------------------------
NOUNSET = {
    "bash": """set -euo pipefail
PS1='$ '
eval "$(awsenv init bash)"
awsenv use dev --mfa-code 123456
__awsenv_hook
awsenv_prompt
printf '%s\\n' "${PS1@P}"
export AWSENV_REFRESH_WINDOW=4000
__awsenv_hook
printf '%s\\n' "${PS1@P}" "next=$AWSENV_NEXT_CHECK"
""",
    "zsh": """set -eu
PROMPT='$ '
eval "$(awsenv init zsh)"
awsenv use dev --mfa-code 123456
__awsenv_precmd
awsenv_prompt
print -rP -- "$PROMPT"
export AWSENV_REFRESH_WINDOW=4000
__awsenv_precmd
print -rP -- "$PROMPT"
print -r -- "next=$AWSENV_NEXT_CHECK"
""",
}


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_prompt_and_hook_under_set_u_with_credentials_active(world, shell):
    """Mutation: any unguarded `$VAR` (e.g. `${AWSENV_NEXT_CHECK-}` made `$AWSENV_NEXT_CHECK`)."""
    world.add_keys()
    done = world.shell(shell, NOUNSET[shell])
    # The one stderr line is the refresh saying what it did (issue 8); nothing else.
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"awsenv: renewed dev \((5[0-9]m|1h00m) left\)\n", done.stderr), done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"dev (5[0-9]m|1h00m)", lines[0]), lines
    assert re.fullmatch(r"\(dev (5[0-9]m|1h00m)\) \$ ", lines[1]), lines
    # after the refresh the window is 4000 s: the 1 h role is urgent, and checked once more later
    assert re.fullmatch(r"\(dev (5[0-9]m|1h00m)!\) \$ ", lines[2]), lines
    assert re.fullmatch(r"next=\d+", lines[3]), lines
    assert [a for a, _ in world.moto.actions()].count("AssumeRole") == 2


# a hostile profile name in the real prompt -----------------------------------------------
PROMPT_NAME = "p%n%F{red}%%$(touch PWNED)`touch PWNED2`\\w\\$;x'\"{}!"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_hostile_profile_name_in_the_drawn_prompt(world, term, shell):
    """Mutations: PS1 built with the name inside it (not a variable), zsh's `%` not
    doubled, fish printing the segment as a format string."""
    world.add_keys()
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + f"\n[profile {PROMPT_NAME}]\nrole_arn = {ROLE}/dev\n"
                      f"source_profile = jump\nmfa_serial = {world.alice.mfa_serial}\n")
    t = term(shell, env={"P": PROMPT_NAME})
    out = t.run('awsenv use "$P" --mfa-code 111111')
    assert re.search(re.escape(f"({PROMPT_NAME} ") + r"(5[0-9]m|1h00m)\) " + READY, out), out
    assert "(" + PROMPT_NAME + " " in t.run("")
    assert t.value("AWSENV_PROFILE") == PROMPT_NAME
    nothing_ran(world)


# PROMPT_COMMAND as an array --------------------------------------------------------------
def test_prompt_command_as_an_array(world, term):
    """Mutation: the array branch of __awsenv_install_hook treating it as a string
    (only element 0 runs, so the hook would never run)."""
    world.add_keys()
    t = term("bash", before="__mark() { __marks=$((${__marks:-0} + 1)); }\nPROMPT_COMMAND=(__mark 'true')",
             after='eval "$(awsenv init bash)"')
    listing = t.run("declare -p PROMPT_COMMAND")
    assert 'declare -a PROMPT_COMMAND=([0]="__mark" [1]="true" [2]="__awsenv_hook")' in listing, listing
    marks = t.number("__marks")
    t.run("awsenv use dev --mfa-code 111111")
    assert re.search(r"\(dev (5[0-9]m|1h00m)\) " + READY, t.output[-200:]), t.output[-300:]
    assert t.number("__marks") > marks, "the user's own command still runs"
    # and the hook in the array refreshes: silently, from the cached MFA session
    runs = len(t.recorder.runs())
    t.run("export AWSENV_EXPIRES=$((EPOCHSECONDS + 100))")
    assert any(run.startswith("refresh") for run in t.recorder.runs()[runs:])
    assert t.number("AWSENV_EXPIRES") - now() > 600


# remove --sessions-only --------------------------------------------------------------
def rows(world) -> dict:
    return {r["profile"]: r for r in json.loads(world.ok("list", "--json").stdout)["profiles"]}


def test_remove_sessions_only_keeps_the_key(world):
    """Mutation: --sessions-only ignored (the key goes too) or doing nothing."""
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    use(world, "ci")
    done = world.ok("remove", "jump", "--sessions-only")
    assert "dropped 2 cached session(s) of 'jump'" in done.stderr, done.stderr
    listed = rows(world)
    assert listed["jump"]["key_stored"] is True
    assert listed["jump"]["session_seconds_left"] is None and listed["dev"]["session_seconds_left"] is None
    assert listed["ci"]["session_seconds_left"] is not None, "other profiles' sessions stay"
    world.moto.calls.clear()
    assert world.run("use", "dev", "--shell", "bash").returncode == 1, "the MFA session is gone"
    use(world, "dev", "--mfa-code", "654321")
    assert world.moto.actions()[0] == ("GetSessionToken", world.alice.key_id), "the stored key still signs"


# completion under --cmd NAME ------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_under_another_command_name(world, term, shell):
    """Mutation: the completer registered for `awsenv` instead of the wrapper's name."""
    init = f'eval "$(awsenv init {shell} --cmd aws-env)"'
    t = term(shell, init=init, after="autoload -Uz compinit && compinit -u" if shell == "zsh" else "")
    t.run("")
    t.child.send("aws-env use lo\t")
    t.expect(r"use long")
    t.cancel_line()
    t.child.send("aws-env us\t")
    t.expect(r"aws-env use(\x1b\[[0-9;]*m)? ")
    t.cancel_line()


def test_fish_completion_under_another_command_name(world):
    done = world.shell("fish", "awsenv init fish --cmd aws-env | source; complete -C 'aws-env use lo'")
    assert done.returncode == 0, done.stderr
    assert "long" in [line.split("\t")[0] for line in done.stdout.splitlines()], done.stdout


# --from defaults to default --------------------------------------------------------------
def test_role_arn_without_from_is_reached_from_default(world):
    """Mutation: the `or "default"` dropped (the role would have no source)."""
    world.ok("add", "default", "--env", env={
        "AWS_ACCESS_KEY_ID": world.robot.key_id, "AWS_SECRET_ACCESS_KEY": world.robot.secret})
    world.moto.calls.clear()
    env = use(world, "--role-arn", f"{ROLE}/deploy")
    assert world.moto.actions() == [("AssumeRole", world.robot.key_id)]
    assert world.moto.calls[0].params["RoleArn"] == f"{ROLE}/deploy"
    assert env["AWSENV_ROLE_FROM"] == "default"
    assert env["AWS_REGION"] == "us-east-1", "the region of [default]"
    require("aws")
    cli = subprocess.run(["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert "assumed-role/deploy/" in cli.stdout, cli.stderr


# survivors of `make mutants` in session.py ---------------------------------------------
def test_a_role_changed_in_the_config_is_not_served_from_its_old_session(world):
    """Mutations (cosmic-ray): role_arn, external_id or role_session_name left out of the
    role's cache key (`p("role_arn") or ""` made `and ""`): after an edit of the config,
    `use dev` would hand out the old role's credentials."""
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    config = world.home / ".aws" / "config"
    text = config.read_text()
    edits = [  # each setting set, then changed
        (f"role_arn = {ROLE}/dev", f"role_arn = {ROLE}/prod", "RoleArn", f"{ROLE}/prod"),
        ("[profile dev]\n", "[profile dev]\nexternal_id = partner-7\n", "ExternalId", "partner-7"),
        ("external_id = partner-7", "external_id = partner-8", "ExternalId", "partner-8"),
        ("[profile dev]\n", "[profile dev]\nrole_session_name = nightly\n", "RoleSessionName", "nightly"),
        ("role_session_name = nightly", "role_session_name = weekly", "RoleSessionName", "weekly"),
    ]
    for before, after, param, value in edits:
        assert before in text
        text = text.replace(before, after, 1)
        config.write_text(text)
        world.moto.calls.clear()
        use(world, "dev")  # the cached MFA session signs: no code
        (call,) = world.moto.calls
        assert (call.action, call.params.get(param)) == ("AssumeRole", value), (param, world.moto.calls)
        world.moto.calls.clear()
        use(world, "dev")
        assert world.moto.calls == [], "the session made for these settings is cached"


def test_cache_keys_this_version_did_not_write_are_passed_over(world):
    """Mutations (cosmic-ray): the exceptions of `key_profile` not caught; drop_sessions
    stopping at the spent codes' entry (`continue` made `break`). A keyring item
    can be edited by other tools (or an older awsenv): a key that is not JSON, not a
    list, or too short is nobody's session, and no command fails on it."""
    world.add_keys()
    use(world, "jump", "--mfa-code", "123456")  # a spent code: the "mfa-used" entry, sorted among them
    use(world, "ci")
    world.ok("agent", "stop")
    entry = {"AccessKeyId": "ASIAODDKEY0000000000", "SecretAccessKey": "x", "SessionToken": "y",
             "Expiration": int(time.time()) + 3600}
    odd = ["not json", "[]", "7", '{"a": 1}', '["role"]', "[1, 2]", '"session"', '["session", ["ci"]]']
    stored = json.loads(keyring_get(world, "sessions"))
    keyring_set(world, "sessions", json.dumps({**stored, **{key: entry for key in odd}}))
    use(world, "ci")  # no agent yet: this run reads the item, and starts one that loads it too
    wait_for_agent(world)
    status = json.loads(world.ok("agent", "status", "--json").stdout)
    assert [(s["profile"], s["kind"]) for s in status["sessions"]] == [("ci", "session"), ("jump", "session")], status
    done = world.ok("remove", "ci", "--sessions-only")
    assert "dropped 1 cached session(s) of 'ci'" in done.stderr, done.stderr
    assert rows(world)["ci"]["session_seconds_left"] is None
    done = world.ok("clear")  # every entry but the spent codes, wherever they sort
    assert f"dropped {len(odd) + 1} cached session(s)" in done.stderr, done.stderr


def test_a_bad_refresh_window_does_not_stop_use(world):
    """Mutation (cosmic-ray): `refresh_window()` not falling back to 600. The hooks
    read AWSENV_REFRESH_WINDOW with the same fallback; `use` only passes it on to the
    agent, so a typo in it must not stop the switch."""
    world.add_keys()
    env = use(world, "deploy", env={"AWSENV_REFRESH_WINDOW": "10m"})
    assert env["AWSENV_PROFILE"] == "deploy"


def test_a_first_session_of_an_explicit_duration_is_cached(world):
    """Mutation (cosmic-ray): `_store` skipping every session of an explicit --duration
    (`explicit and held...` made `or`), not only one shorter than the cached session:
    the next `use jump` would ask for an MFA code again."""
    world.add_keys()
    first = use(world, "jump", "--duration", "1h", "--mfa-code", "123456")
    world.moto.calls.clear()
    again = use(world, "jump")  # no code, and no terminal to ask on
    assert world.moto.calls == [] and again["AWSENV_EXPIRES"] == first["AWSENV_EXPIRES"]


def test_no_stored_key_names_the_profile_that_needs_it(world):
    """Mutation (cosmic-ray): the "(the source of ...)" part said for the wrong
    profile (`for_profile != base.name` negated)."""
    line = one_line_error(world.run("use", "dev", "--mfa-code", "123456", "--shell", "bash"), 1)
    assert line == "awsenv: no key stored for profile 'jump' (the source of 'dev'); run `awsenv add jump`"
    line = one_line_error(world.run("use", "jump", "--mfa-code", "123456", "--shell", "bash"), 1)
    assert line == "awsenv: no key stored for profile 'jump'; run `awsenv add jump`"


def test_a_failure_is_reported_even_when_the_keyring_goes_before_the_save(world):
    """A run that fails keeps what it got (the MFA session) in the keyring; when that
    write fails too, the user is still told the first failure, the one that matters.
    Mutation (cosmic-ray): the save's own exception not caught in `resolve`."""
    world.add_keys()
    asked, answer = threading.Event(), threading.Event()

    def refuse(call):
        if call.action != "AssumeRole":
            return None
        asked.set()
        answer.wait(30)
        return ("AccessDenied", "not allowed to assume dev")

    world.moto.refuse = refuse
    run = subprocess.Popen([AWSENV, "use", "dev", "--mfa-code", "123456", "--shell", "bash"], env=world.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert asked.wait(30), "AssumeRole was never called"
        world.keyring.stop()  # the Secret Service goes while AWS is deciding
    finally:
        answer.set()
        out, err = run.communicate(timeout=60)
    done = subprocess.CompletedProcess(run.args, run.returncode, out, err)
    line = one_line_error(done, 1)
    assert line == f"awsenv: access denied assuming role {ROLE}/dev", line


def test_a_role_reached_from_a_role_is_assumed_with_that_roles_session(world):
    """deep -> dev -> jump: dev's session assumes prod, for at most the hour AWS allows a
    chained role. Mutations (cosmic-ray): `if source.is_role` negated, which asked for an
    MFA session of dev as if it were a base profile; the source resolved with
    `top=True`, which gave it the target's --duration. No test resolved such a chain."""
    world.add_keys()
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + f"\n[profile deep]\nrole_arn = {ROLE}/prod\nsource_profile = dev\n")
    env = use(world, "deep", "--mfa-code", "123456")
    assert [c.action for c in world.moto.calls] == ["GetSessionToken", "AssumeRole", "AssumeRole"]
    get_session, to_dev, to_prod = world.moto.calls
    assert to_dev.params["RoleArn"] == f"{ROLE}/dev" and to_dev.key_id == get_session_key(world, "jump")
    assert to_prod.params["RoleArn"] == f"{ROLE}/prod" and to_prod.key_id == get_session_key(world, "dev", "role")
    assert to_prod.params["DurationSeconds"] == "3600"
    assert 3000 < int(env["AWSENV_EXPIRES"]) - time.time() <= 3600
    world.moto.calls.clear()
    use(world, "deep")
    assert world.moto.calls == [], "both sessions are cached"
    # --duration is the target's: dev's cached session still serves as the source.
    use(world, "deep", "--duration", "20m")
    (call,) = world.moto.calls
    assert (call.params["RoleArn"], call.params["DurationSeconds"]) == (f"{ROLE}/prod", "1200")


def get_session_key(world, profile: str, kind: str = "session") -> str:
    """The access key ID of the cached session of that kind for `profile`."""
    stored = json.loads(keyring_get(world, "sessions"))
    (key_id,) = [v["AccessKeyId"] for k, v in stored.items() if k != "mfa-used" and json.loads(k)[:2] == [kind, profile]]
    return key_id


def test_the_agent_renews_an_ad_hoc_role(world):
    """`use --role-arn ARN --from jump`: the role is in no config file, so the agent is
    given its ARN and source to renew it. Mutation (cosmic-ray): the watch's `adhoc`
    part given for config profiles only (`==` made `!=`)."""
    from test_broker import WINDOWS, age, assumed, wait_until, watched

    world.add_keys()
    args = ("--role-arn", f"{ROLE}/prod", "--from", "jump")
    use(world, *args, "--mfa-code", "123456", env=WINDOWS)
    wait_for_agent(world)
    name = use(world, *args, env=WINDOWS)["AWSENV_PROFILE"]  # through the agent: it watches the role
    assert name == "prod@123456789012"
    wait_until(lambda: watched(world, name).get("state") == "fresh", what="watching")
    world.moto.calls.clear()
    age(world, name, 500)  # inside the agent's lead
    (renewal,) = wait_until(lambda: assumed(world), what="the agent's renewal")
    assert renewal.params["RoleArn"] == f"{ROLE}/prod"
    assert renewal.key_id == get_session_key(world, "jump")
    wait_until(lambda: watched(world, name).get("state") == "fresh", what="renewed")


@pytest.mark.parametrize("command, says", [
    ("/nonexistent/creds-helper --profile x", "failed: No such file or directory"),
    ("creds-helper --token 'unbalanced", "is not a valid command line"),
])
def test_a_credential_process_that_cannot_start_is_one_line_without_its_command(world, command, says):
    """Mutations (cosmic-ray): OSError or ValueError (shlex) not caught. The command line
    may hold a token: the line names the profile and the reason only."""
    config = world.home / ".aws" / "config"
    config.write_text(config.read_text() + f"\n[profile helper]\ncredential_process = {command}\n")
    line = one_line_error(world.run("use", "helper", "--shell", "bash"), 1)
    assert line == f"awsenv: credential_process of profile 'helper' {says}"


def test_the_hooks_refresh_asks_the_agent_to_renew_a_role_it_does_not_watch_yet(world):
    """The prompt hook finds dev due and the agent has not renewed it (it never watched
    dev: the switch happened before it started). The refresh asks the agent, whose STS
    client is warm, instead of importing botocore at the prompt. Mutation (cosmic-ray):
    `self._agent = doc is not None` made `is None`, so the refresh renewed it itself."""
    from test_broker import age, assumed, watched
    from test_structure import HEAVY, heavy, imported

    world.add_keys()
    first = use(world, "dev", "--mfa-code", "123456")  # no agent yet: this run starts it
    wait_for_agent(world)
    assert watched(world, "dev") == {}
    age(world, "dev", 200)
    world.moto.calls.clear()
    due = {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(int(time.time()) + 200),
           "AWS_ACCESS_KEY_ID": first["AWS_ACCESS_KEY_ID"], "PYTHONPROFILEIMPORTTIME": "1"}
    done = world.ok("refresh", "--shell", "bash", env=due)
    assert heavy(imported(done.stderr), HEAVY) == [], "no SDK and no keyring at the prompt"
    (renewal,) = assumed(world)
    assert renewal.key_id == get_session_key(world, "jump"), "from the cached MFA session"
    renewed = env_after(world, done.stdout)
    assert renewed["AWS_ACCESS_KEY_ID"] == get_session_key(world, "dev", "role") != first["AWS_ACCESS_KEY_ID"]


def test_a_role_is_assumed_in_its_own_region_else_its_sources(world):
    """dev names eu-central-1; prod names none and is reached from jump (eu-west-1):
    each AssumeRole is signed for that region. Mutation (cosmic-ray): `profile.region
    or source.region` made `and`."""
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    use(world, "prod")
    regions = {c.params["RoleArn"].rpartition("/")[2]: c.region for c in world.moto.calls if c.action == "AssumeRole"}
    assert regions == {"dev": "eu-central-1", "prod": "eu-west-1"}, world.moto.calls


def test_a_role_session_is_named_after_the_local_user(world):
    """SPEC: role_session_name defaults to something traceable in CloudTrail, the local
    user name, with what STS refuses made `-` and cut to 64. Mutation (cosmic-ray):
    `name[:64] or "awsenv"` made `and` (every session named "awsenv")."""
    world.add_keys()
    for login, named in (("jane doe/ops", "jane-doe-ops"), ("x" * 70, "x" * 64)):
        env = {"LOGNAME": login, "USER": login}
        use(world, "deploy", "--refresh", env=env)
        assert world.moto.calls[-1].params["RoleSessionName"] == named


def test_a_role_whose_source_profile_changed_is_not_served_from_its_old_session(world):
    """Mutation (cosmic-ray): source_profile left out of the role's cache key."""
    world.ok("add", "default", "--env", env={
        "AWS_ACCESS_KEY_ID": world.robot.key_id, "AWS_SECRET_ACCESS_KEY": world.robot.secret})
    world.add_keys()
    use(world, "deploy")
    config = world.home / ".aws" / "config"
    text = config.read_text()
    assert text.count("source_profile = ci\n") == 1
    config.write_text(text.replace("source_profile = ci\n", "source_profile = default\n"))
    world.moto.calls.clear()
    use(world, "deploy")
    assert [c.action for c in world.moto.calls] == ["AssumeRole"], "a new session, from default"


def test_refresh_with_the_agent_running_makes_new_sessions_itself(world):
    """`use dev --refresh` renews dev itself: one new role session from the cached MFA
    session, not the agent's renewal of dev, and no new MFA session (a code given is
    not spent). No test ran --refresh with the agent up."""
    world.add_keys()
    use(world, "dev", "--mfa-code", "123456")
    wait_for_agent(world)
    use(world, "dev")  # through the agent, which now watches dev
    world.moto.calls.clear()
    use(world, "dev", "--refresh", "--mfa-code", "654321")
    assert [(c.action, c.params.get("TokenCode")) for c in world.moto.calls] == [("AssumeRole", None)]
