from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from world import MotoServer, SecretService, config_text, create_account, make_home, short_runtime_dir

BIN = Path(sys.executable).parent
AWSENV = str(BIN / "awsenv")

# A suite started in the background by a shell without job control (`make test &`,
# nohup) inherits SIGINT ignored, and so would every awsenv, bash and Python it starts:
# the Ctrl-C tests would then test nothing but that. A handled signal is reset to its
# default in a child, an ignored one is not; so the suite handles it as Python does.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
WEIRD = "ev'il\"$(touch PWNED)`touch PWNED2`;x"


def require(tool: str, *also: str) -> str:
    """A missing tool skips locally and fails under CI, so CI cannot hide it. `also`:
    folders to look in after PATH, where an installer puts a tool off PATH."""
    path = shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", os.defpath), *also]))
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed, and CI must have it")
        pytest.skip(f"{tool} is not installed")
    return path


def require_module(name: str):
    """The same rule for a Python module the tests need: skip locally, fail under CI."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as err:
        if os.environ.get("CI"):
            pytest.fail(f"the Python module {name} is not installed, and CI must have it ({err})")
        pytest.skip(f"the Python module {name} is not installed")


def module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# Every process a test starts carries this in its environment, so the end of the
# session can tell whether any of them is still running.
RUN_MARK = f"{os.getpid()}-{os.urandom(4).hex()}"
os.environ["PYTEST_AWSENV_RUN"] = RUN_MARK


def processes_marked(mark: str) -> list[str]:
    """The pids (other than ours) whose environment holds PYTEST_AWSENV_RUN=mark."""
    needle = f"PYTEST_AWSENV_RUN={mark}".encode() + b"\0"
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as stream:
                if needle in stream.read() and int(pid) != os.getpid():
                    found.append(pid)
        except OSError:
            continue
    return found


def describe(pids: list[str]) -> list[str]:
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                command = stream.read().replace(b"\0", b" ").decode(errors="replace")
            out.append(f"{pid}: {command[:120]}")
        except OSError:
            pass
    return out


@pytest.fixture(scope="session", autouse=True)
def leaves_nothing_behind():
    """The suite's own check: after the last test, /tmp holds nothing it did not hold
    before, and no process a test started is still running.

    The tests also run from tests/ (after collection, which reads paths from the
    checkout): Python puts the working directory first on sys.path for `-c` and `-m`,
    so a test that starts `python -c …` from the checkout would import its source tree,
    not the installed awsenv. tests/ holds no awsenv package."""
    os.chdir(Path(__file__).resolve().parent)
    before = set(os.listdir("/tmp"))
    yield
    import time

    deadline = time.monotonic() + 10  # an agent may take a moment to notice its end
    while processes_marked(RUN_MARK) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = describe(processes_marked(RUN_MARK))
    for pid in processes_marked(RUN_MARK):
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    new = sorted(set(os.listdir("/tmp")) - before)
    assert not left, f"processes the tests started are still running: {left}"
    assert not new, f"the tests left these in /tmp: {new}"


@pytest.fixture(scope="session")
def runtime_base():
    """One short directory in /tmp for the tests' private runtime directories, removed
    at the end of the session whatever happened."""
    base = Path(tempfile.mkdtemp(prefix="awsenv-tests-", dir="/tmp"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def moto():
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Home:
    """A throwaway HOME and environment with no AWS and no key store: the cheap fixture
    (`home`) for what needs neither, such as `init` and the shell scripts."""
    root: Path
    home: Path
    tmp: Path
    env: dict[str, str]

    def run(self, *args: str, env: dict | None = None, input: str | None = None, cwd=None, timeout=60):
        """awsenv with no controlling terminal, as in CI or a pipe."""
        return subprocess.run(
            [AWSENV, *args], env={**self.env, **(env or {})}, input=input, capture_output=True,
            text=True, start_new_session=True, cwd=cwd or self.root, timeout=timeout,
        )

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        done = self.run(*args, **kw)
        assert done.returncode == 0, f"awsenv {' '.join(args)} failed: {done.stderr}"
        return done

    def shell(self, shell: str, script: str, env: dict | None = None) -> subprocess.CompletedProcess:
        argv = {
            "bash": ["bash", "--noprofile", "--norc", "-c", script],
            "zsh": ["zsh", "-f", "-c", script],
            "fish": ["fish", "--no-config", "-c", script],
        }[shell]
        require(shell)
        return subprocess.run(
            argv, env={**self.env, **(env or {})}, capture_output=True, text=True,
            start_new_session=True, cwd=self.root, timeout=120,
        )


@dataclass
class World(Home):
    """Home, with the moto server, its people and a real Secret Service."""
    moto: MotoServer
    people: dict
    keyring: SecretService

    @property
    def alice(self):
        return self.people["alice"]

    @property
    def robot(self):
        return self.people["robot"]

    def add_keys(self) -> None:
        self.add_keys_for("jump", "ci")

    def add_keys_for(self, *profiles: str) -> None:
        owners = {"jump": self.alice, "ci": self.robot}
        for profile in profiles:
            who = owners[profile]
            self.ok("add", profile, "--env", env={
                "AWS_ACCESS_KEY_ID": who.key_id, "AWS_SECRET_ACCESS_KEY": who.secret})
        self.moto.calls.clear()

    def write_config(self, text: str) -> None:
        (self.home / ".aws" / "config").write_text(text)


@pytest.fixture
def world(moto, tmp_path, request, runtime_base):
    moto.reset()
    people = create_account(moto.url)
    moto.calls.clear()
    home = make_home(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    runtime = short_runtime_dir(runtime_base)
    keyring = SecretService(runtime, home)
    try:
        yield from _world(tmp_path, home, tmp, runtime, keyring, moto, people, request)
    finally:
        try:
            keyring.stop()
        finally:
            shutil.rmtree(runtime, ignore_errors=True)


def _world(tmp_path, home, tmp, runtime, keyring, moto, people, request):
    # @pytest.mark.no_secret_service: no D-Bus at all, as on a headless machine.
    bare = request.node.get_closest_marker("no_secret_service") is not None
    try:
        if not bare:
            keyring.start()
    except RuntimeError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(err))
    env = {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "TERM": "xterm",
        "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PYTEST_AWSENV_RUN": RUN_MARK,
        **({"XDG_RUNTIME_DIR": str(runtime)} if bare else keyring.env()),
        **mutants_coverage(request),
    }
    w = World(tmp_path, home, tmp, env, moto, people, keyring)
    w.write_config(config_text(people["alice"].mfa_serial, WEIRD))
    yield w


def mutants_coverage(request) -> dict[str, str]:
    """`make mutants` measures which test reaches which line of awsenv, in the programs
    a test starts too: they carry the coverage settings and the test's id. Empty
    otherwise."""
    config = os.environ.get("COVERAGE_PROCESS_START")
    return {"COVERAGE_PROCESS_START": config, "MUTANTS_TEST_ID": request.node.nodeid} if config else {}


class Hanging:
    """A TCP server on 127.0.0.1 that accepts and never answers: a network that hangs.
    `connected` is set once a client got through, so a test can act while the client is
    certainly waiting (instead of sleeping and hoping)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.connected = threading.Event()
        self._held = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                self._held.append(self.server.accept()[0])
            except OSError:
                continue
            self.connected.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self.server.close()


@pytest.fixture
def hanging():
    server = Hanging()
    yield server
    server.stop()


@pytest.fixture
def home(tmp_path, runtime_base):
    """The cheap fixture: a throwaway HOME with no AWS (the endpoint refuses) and no key
    store, for tests of `init`, the shell scripts and the parser."""
    runtime = short_runtime_dir(runtime_base)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    place = make_home(tmp_path)
    env = {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(place),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "TERM": "xterm",
        "AWS_CONFIG_FILE": str(place / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(place / ".aws" / "credentials"),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # discard: nothing may reach AWS
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWSENV_AGENT": "0",
        "XDG_DATA_HOME": str(place / ".local" / "share"),
        "XDG_CACHE_HOME": str(place / ".cache"),
        "XDG_RUNTIME_DIR": str(runtime),
        "PYTEST_AWSENV_RUN": RUN_MARK,
    }
    try:
        yield Home(tmp_path, place, tmp, env)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def _terminals(place):
    from terminal import Terminal

    opened = []

    def open_(shell: str, **kw) -> Terminal:
        require(shell)
        t = Terminal(shell, place, **kw)
        opened.append(t)
        return t

    return open_, opened


@pytest.fixture
def term(world):
    """Terminal factory: real interactive shells on a pseudo-terminal (tests/terminal.py);
    every terminal is closed at the end of the test."""
    open_, opened = _terminals(world)
    yield open_
    for t in opened:
        t.close()


@pytest.fixture
def shell_term(home):
    """`term` on the cheap fixture: shells with awsenv's init, and no AWS."""
    open_, opened = _terminals(home)
    yield open_
    for t in opened:
        t.close()


@pytest.fixture
def hanging_endpoint(hanging):
    """The URL of `hanging`."""
    return hanging.url


@pytest.fixture
def refused_endpoint():
    """A URL on 127.0.0.1 that refuses every connection, for certain: the port is bound
    (so nobody else gets it) but never listened on, and Linux answers a SYN to such a
    port with a reset. Held for the whole test."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"
