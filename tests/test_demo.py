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
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "assumed-role/dev/" in out and "assumed-role/prod/" in out
    assert re.search(r"^dev\s+role\s+jump\s+yes", out, re.M)
    calls = out[out.index("STS calls"):].split("\n")
    assert [line.split()[0] for line in calls[1:] if line.strip()].count("GetSessionToken") == 1
    home = re.search(r"HOME in (\S+)", out).group(1)
    assert not Path(home).exists()
    assert processes_mentioning(home) == []
