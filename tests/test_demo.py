"""`make demo` works without a terminal, shows the real flow, and leaves nothing behind."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import require

ROOT = Path(__file__).resolve().parent.parent


def processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            data = open(f"/proc/{pid}/cmdline", "rb").read() + open(f"/proc/{pid}/environ", "rb").read()
        except OSError:
            continue
        if text.encode() in data:
            found.append(pid)
    return found


def test_demo_runs_the_flow_and_cleans_up():
    for tool in ("dbus-daemon", "gnome-keyring-daemon", "bash"):
        require(tool)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS", "DBUS", "XDG_RUNTIME"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    done = subprocess.run([sys.executable, str(ROOT / "demo" / "demo.py")], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=env, timeout=300, start_new_session=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "assumed-role/dev/" in out and "assumed-role/prod/" in out
    assert re.search(r"^dev\s+role\s+jump\s+yes", out, re.M)
    calls = out[out.index("STS calls"):].split("\n")
    assert [line.split()[0] for line in calls[1:] if line.strip()].count("GetSessionToken") == 1
    assert_cleaned_up(out)


def assert_cleaned_up(out: str) -> None:
    home = re.search(r"HOME in ([^,\s]+)", out).group(1)
    runtime = re.search(r"keyring and agent in (\S+)", out).group(1)
    for path in (home, runtime):
        assert not Path(path).exists(), path
        assert processes_mentioning(path) == [], path


def test_demo_on_a_terminal_opens_an_initialised_bash():
    import pexpect

    for tool in ("dbus-daemon", "gnome-keyring-daemon", "bash"):
        require(tool)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS", "DBUS", "XDG_RUNTIME", "CI"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    import io

    child = pexpect.spawn(sys.executable, [str(ROOT / "demo" / "demo.py")], env=env, encoding="utf-8",
                          timeout=120, dimensions=(40, 200))
    child.logfile_read = log = io.StringIO()
    try:
        child.expect("Type exit to end the demo.")
        child.expect("awsenv-demo")
        child.sendline("awsenv use prod")
        child.expect(r"\(prod (5[0-9]m|1h00m)\) ")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert_cleaned_up(log.getvalue().replace("\r", ""))
