"""awsenv as Windows runs it, on Linux: a sitecustomize.py takes away what Windows
CPython does not have (os.getuid, os.fork, fcntl, termios, the AF_UNIX constant of
_socket, /dev/tty) and puts in stand-ins that behave as Windows' do: os.execvpe starts
the program and exits 0 at once; msvcrt has locking() and the getwch() that getpass
reads a hidden answer with; CONIN$ and CONOUT$ are the console. awsenv must find all
this by feature detection (os.name stays "posix": the standard library breaks
otherwise). The keyring is the world's real gnome-keyring, as the Windows Credential
Locker cannot be had here, and the D-Bus client (jeepney) keeps its socket module."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import AWSENV, BIN
from hypothesis import given, settings
from hypothesis import strategies as st
from test_quoting import ps_assignments
from test_sso import portal, sso  # noqa: F401 - the fixtures

SITECUSTOMIZE = r'''
import os, sys, types
import socket, _socket   # jeepney (the D-Bus client of the stand-in keyring) keeps socket.AF_UNIX
import fcntl as _fcntl
import subprocess as _subprocess

for _name in ("getuid", "fork", "forkpty", "setsid"):
    if hasattr(os, _name):
        delattr(os, _name)
del _socket.AF_UNIX
sys.modules["fcntl"] = None      # `import fcntl` raises ImportError
sys.modules["termios"] = None

_open = os.open
def _no_dev_tty(path, *args, **kw):
    if path == "/dev/tty":
        raise FileNotFoundError(2, "No such file or directory", path)
    return _open(path, *args, **kw)
os.open = _no_dev_tty

def _execvpe(file, args, env):
    # Windows: exec* start the program and end this process with status 0 at once.
    _subprocess.Popen([file, *args[1:]], env=env)
    os._exit(0)
os.execvpe = _execvpe

msvcrt = types.ModuleType("msvcrt")
msvcrt.LK_UNLCK, msvcrt.LK_LOCK, msvcrt.LK_NBLCK = 0, 1, 2
def _locking(fd, mode, nbytes):
    with open(os.environ["WINSIM_LOG"], "a") as log:
        log.write(f"locking {mode} {nbytes}\n")
    _fcntl.lockf(fd, _fcntl.LOCK_UN if mode == 0 else _fcntl.LOCK_EX, nbytes)
msvcrt.locking = _locking
_keys = []
def _getwch():
    if not _keys:
        with open(os.environ["WINSIM_KEYS"], encoding="utf-8") as stream:
            _keys.extend(reversed(stream.read()))
    return _keys.pop() if _keys else "\r"
msvcrt.getwch = _getwch
msvcrt.putwch = lambda c: sys.stderr.write(c)
sys.modules["msvcrt"] = msvcrt
# A person at a Windows console: stdin is the console (isatty() is true), and what
# they type arrives through CONIN$ and getwch above.
import io
class _ConsoleStdin(io.StringIO):
    def isatty(self):
        return True
sys.stdin = sys.__stdin__ = _ConsoleStdin()
'''


@pytest.fixture
def windows(world, tmp_path):
    site = tmp_path / "winsite"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    console = tmp_path / "console"  # the working directory: CONIN$ and CONOUT$ live here
    console.mkdir()
    local = tmp_path / "LocalAppData"
    env = {
        **world.env, "PYTHONPATH": str(site), "LOCALAPPDATA": str(local),
        "WINSIM_LOG": str(tmp_path / "winsim.log"), "WINSIM_KEYS": str(tmp_path / "keys"),
    }

    def run(*args: str, cwd: Path = console, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([AWSENV, *args], env={**env, **extra}, cwd=cwd, capture_output=True,
                              text=True, start_new_session=True, timeout=120)

    run.env, run.console, run.local, run.log = env, console, local, tmp_path / "winsim.log"
    return run


def test_the_stand_ins_are_in_place(windows):
    probe = ("import os, _socket, importlib.util\n"
             "for mod in ('fcntl', 'termios'):\n"
             "    try:\n        __import__(mod)\n    except ImportError:\n        print(mod, 'absent')\n"
             "print(hasattr(os, 'getuid'), hasattr(os, 'fork'), hasattr(_socket, 'AF_UNIX'))\n")
    done = subprocess.run([sys.executable, "-c", probe], env=windows.env, capture_output=True, text=True)
    assert done.stdout.split("\n") == ["fcntl absent", "termios absent", "False False False", ""], done.stderr


def test_add_use_export_exec_list_doctor_on_windows(world, windows):
    # add: the key is asked on the console, the secret hidden (getpass through msvcrt).
    (windows.console / "CONIN$").write_text(world.alice.key_id + "\n")
    Path(windows.env["WINSIM_KEYS"]).write_text(world.alice.secret + "\r")
    done = windows("add", "jump")
    assert done.returncode == 0, done.stderr
    assert "Access key ID for jump" in (windows.console / "CONOUT$").read_text()
    assert "Secret access key for jump" in done.stderr  # getpass writes with putwch
    assert world.alice.secret not in (windows.console / "CONOUT$").read_text() + done.stderr
    assert windows("add", "ci", "--env", AWS_ACCESS_KEY_ID=world.robot.key_id,
                   AWS_SECRET_ACCESS_KEY=world.robot.secret).returncode == 0

    # use: STS, then the session cache written under the msvcrt lock in %LOCALAPPDATA%.
    done = windows("use", "dev", "--mfa-code", "123456", "--shell", "pwsh")
    assert done.returncode == 0, done.stderr
    assert dict(ps_assignments(done.stdout))["AWSENV_PROFILE"] == "dev"
    assert (windows.local / "awsenv" / "sessions.lock").exists()
    assert "locking 1 1" in windows.log.read_text()
    # No agent (no AF_UNIX): nothing listens in the POSIX runtime directory.
    assert not (Path(world.env["XDG_RUNTIME_DIR"]) / "awsenv" / "agent.sock").exists()
    world.moto.calls.clear()
    done = windows("use", "dev", "--shell", "pwsh")  # the cached session, from the keyring
    assert done.returncode == 0, done.stderr
    assert world.moto.actions() == []

    done = windows("export", "dev", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["AccessKeyId"].startswith("ASIA")
    # A credential_process that is awsenv itself (the WSL set-up calls awsenv.exe so).
    done = windows("export", "viaproc", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Version"] == 1

    # exec: the exit code of the command, which a Windows exec would lose.
    check = "import os, sys; sys.exit(7 if os.environ['AWSENV_PROFILE'] == 'dev' else 1)"
    done = windows("exec", "dev", "--", sys.executable, "-c", check)
    assert done.returncode == 7, done.stderr

    done = windows("list")
    assert done.returncode == 0, done.stderr
    assert "jump" in done.stdout and "dev" in done.stdout
    done = windows("doctor")
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "no-mfa" in done.stdout and "ci:" in done.stdout  # the audit ran, keyring and all


def test_a_local_app_data_folder_that_cannot_be_made_is_not_a_traceback(world, windows, tmp_path):
    """Mutation (cosmic-ray): the OSError of _windows_dir() not caught. When
    %LOCALAPPDATA%\\awsenv can't be made, the lock goes to the cache folder instead."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    assert windows("add", "ci", "--env", AWS_ACCESS_KEY_ID=world.robot.key_id,
                   AWS_SECRET_ACCESS_KEY=world.robot.secret).returncode == 0
    done = windows("use", "ci", "--shell", "pwsh", LOCALAPPDATA=str(blocked))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert dict(ps_assignments(done.stdout))["AWSENV_PROFILE"] == "ci"


def test_credential_process_keeps_windows_backslashes(world, windows, tmp_path):
    script = tmp_path / "proc.py"
    script.write_text("import json, sys\nprint(json.dumps({'Version': 1, 'AccessKeyId': 'AKIAX', "
                      "'SecretAccessKey': 's', 'SessionToken': sys.argv[1] + '|' + sys.argv[2]}))\n")
    with open(world.home / ".aws" / "config", "a") as config:
        config.write(f'\n[profile winproc]\ncredential_process = "{sys.executable}" {script} '
                     r'C:\tools\x.exe "C:\Program Files\y"' "\n")
    done = windows("export", "winproc", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["SessionToken"] == r"C:\tools\x.exe|C:\Program Files\y"


def test_init_pwsh_calls_the_exe_that_pips_launcher_names_without_exe(windows, tmp_path):
    """pip's awsenv.exe hands Python its path without `.exe`; a bare `awsenv` in the
    wrapper would call the wrapper itself, for ever."""
    scripts = tmp_path / "Scripts"
    scripts.mkdir()
    exe = scripts / "awsenv.exe"
    exe.write_bytes(Path(AWSENV).read_bytes())
    launcher = f"import sys; sys.argv[0] = {str(scripts / 'awsenv')!r}; from awsenv.cli.main import main; sys.exit(main())"
    path = "/usr/bin:/bin"
    assert str(BIN) not in path
    done = subprocess.run([sys.executable, "-c", launcher, "init", "pwsh"], env={**windows.env, "PATH": path},
                          capture_output=True, text=True, cwd=windows.console, timeout=60)
    assert done.returncode == 0, done.stderr
    from test_pwsh import exe_calls

    assert set(exe_calls(done.stdout)) == {str(exe)}


def mypy_errors(platform: str, cache: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--platform", platform, "--cache-dir", str(cache), "--no-error-summary", "awsenv"],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr  # 2: mypy itself failed
    # file and message, not the line: the same finding on both platforms is one finding
    return {line.split(":", 1)[0] + ":" + line.split(":", 2)[-1] for line in done.stdout.splitlines() if ": error:" in line}


def test_mypy_finds_no_error_for_win32_nor_linux(tmp_path):
    """The code type-checks on both platforms: everything that names a POSIX-only part
    of the standard library (os.getuid, fcntl, termios, AF_UNIX) sits behind a check
    that mypy --platform win32 follows, and nothing else is left for mypy to find."""
    assert mypy_errors("win32", tmp_path / "win32") == set()
    assert mypy_errors("linux", tmp_path / "linux") == set()


# Microsoft's table for "Parsing C++ command-line arguments", after a program name.
MICROSOFT = [
    ('"abc" d e', ["abc", "d", "e"]),
    (r"a\\\b d" '"e f"g h', [r"a\\\b", "de fg", "h"]),
    (r'a\\\"b c d', [r'a\"b', "c", "d"]),
    (r'a\\\\"b c" d e', [r"a\\b c", "d", "e"]),
    ('a"b"" c d', ['ab" c d']),
]


@pytest.mark.parametrize("line, words", MICROSOFT)
def test_windows_split_follows_the_documented_rule(line, words):
    from awsenv.host.process import windows_split

    assert windows_split(r'"C:\Program Files\x\prog.exe" ' + line) == [r"C:\Program Files\x\prog.exe", *words]
    assert windows_split(r"C:\tools\x.exe " + line) == [r"C:\tools\x.exe", *words]


@settings(max_examples=300, deadline=None)
@given(args=st.lists(st.text(alphabet=st.sampled_from(list('ab \\"\t\'')), max_size=8), max_size=6))
def test_windows_split_reverses_what_python_passes_to_windows(args):
    """subprocess.list2cmdline is how Python on Windows turns a list into a command line."""
    from awsenv.host.process import windows_split

    assert windows_split(subprocess.list2cmdline([r"C:\tools\x.exe", *args])) == [r"C:\tools\x.exe", *args]


def test_sso_sign_in_and_the_hooks_re_prompt_on_a_windows_console_in_powershell(world, sso, windows):
    """IAM Identity Center as PowerShell on Windows meets it: the sign-in and the hook's
    question on the console (CONIN$/CONOUT$), the browser kept off stdout, and what
    `refresh --shell pwsh` prints parsed as PowerShell: the new credentials after "y",
    only the next check after an empty answer."""
    sso.server.role_ttl = 300  # due for the hook at once
    done = windows("sso", "login", "corp")
    assert done.returncode == 0, done.stderr
    assert "signed in to sso-session corp" in done.stderr and done.stdout == ""
    done = windows("use", "sandbox", "--shell", "pwsh")
    assert done.returncode == 0, done.stderr
    first = dict(ps_assignments(done.stdout))
    assert first["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1] and first["AWSENV_PROFILE"] == "sandbox"
    sso.server.role_ttl = 3600

    def hook(answer: str, window: int) -> tuple[subprocess.CompletedProcess, int]:
        sso.server.expire_access_tokens()
        sso.server.revoke_refresh_tokens()
        (windows.console / "CONIN$").write_text(answer)
        expires = int(time.time()) + 300
        state = {"AWSENV_PROFILE": "sandbox", "AWSENV_EXPIRES": str(expires),
                 "AWS_ACCESS_KEY_ID": first["AWS_ACCESS_KEY_ID"], "AWSENV_REFRESH_WINDOW": str(window)}
        return windows("refresh", "--shell", "pwsh", **state), expires

    done, _expires = hook("y\n", 600)
    assert done.returncode == 0, done.stderr
    assert "Sign in to sso-session corp for sandbox in the browser? [y/N]" in (windows.console / "CONOUT$").read_text()
    renewed = dict(ps_assignments(done.stdout))  # the browser's chatter is not in it
    assert renewed["AWS_ACCESS_KEY_ID"] == sso.server.role_keys[-1] != first["AWS_ACCESS_KEY_ID"]
    assert len(sso.browsed()) == 2

    done, expires = hook("\n", 4000)  # the new credentials' hour is inside this window
    assert done.returncode == 0, done.stderr
    assert ps_assignments(done.stdout) == [("AWSENV_NEXT_CHECK", str(expires))]
    assert "sandbox not renewed" in done.stderr and len(sso.browsed()) == 2
