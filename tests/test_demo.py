"""`make demo` works without a terminal, shows the real flow, and leaves nothing behind."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require

ROOT = Path(__file__).resolve().parent.parent
# What the test extra adds to the demo extra (pyproject.toml): `make demo` installs none of it.
TEST_TOOLS = {"pytest", "_pytest", "pexpect", "hypothesis", "tree_sitter", "tree_sitter_powershell", "conftest"}


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


def bare_path(folder: Path) -> str:
    """A PATH with the virtualenv and bash, and nothing else: no dbus-daemon, no
    gnome-keyring-daemon, as on a machine that never installed them."""
    folder.mkdir(exist_ok=True)
    (folder / "bash").symlink_to(require("bash"))
    return f"{Path(sys.executable).parent}:{folder}"


def demo_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS", "DBUS", "XDG_RUNTIME", "CI"))}
    env["PATH"] = bare_path(folder)
    return env


def run_demo(folder: Path) -> str:
    env = demo_env(folder)
    # -X importtime lists every module the demo imports: it must run with the demo extra alone.
    done = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "demo" / "demo.py")],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=300,
                          start_new_session=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert "moto" in imported
    assert imported.isdisjoint(TEST_TOOLS), imported & TEST_TOOLS
    return done.stdout


def steps(out: str) -> list[tuple[str, list[str]]]:
    """The scripted part as (command line, the lines printed under it); `# ` lines are the
    demo's comments on the next command."""
    flow = out[out.index("\n$ "):out.index("STS calls")]
    found: list[tuple[str, list[str]]] = []
    for line in flow.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        elif line.strip() and not line.startswith("# "):
            found[-1][1].append(line)
    return found


def sts_calls(out: str) -> list[str]:
    return [line.strip() for line in out[out.index("STS calls"):].splitlines()[1:] if line.strip()]


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> str:
    return run_demo(tmp_path_factory.mktemp("bin"))


def test_demo_runs_the_flow_and_cleans_up(demo_output):
    out = demo_output
    assert "assumed-role/dev/" in out and "assumed-role/prod/" in out
    assert re.search(r"^dev\s+role\s+jump\s+yes", out, re.M)
    # The keys are in the file store, and `list` says so, not "keyring".
    assert re.search(r"^jump\s+base\s+file\s+yes\s+stored", out, re.M), out
    assert [line.split()[0] for line in sts_calls(out)].count("GetSessionToken") == 2  # the refused one, then one
    assert_cleaned_up(out)


def test_demo_shows_every_command_that_prints(demo_output):
    """Each line of output sits under the command that printed it: what eval's only has no
    output of its own, so a command run but not shown would surface under one."""
    shown = steps(demo_output)
    output = {command: lines for command, lines in shown}
    for command, lines in shown:
        if command.startswith('eval "$(awsenv') and "000000" not in command:
            assert lines == [], f"{command!r} printed nothing itself, yet {lines!r} appeared under it"
    assert output["aws sts get-caller-identity --query Arn --output text"] == [
        "arn:aws:sts::123456789012:assumed-role/prod/root"
    ]
    assert shown[-1] == ("awsenv status", ["no awsenv credentials in this environment"])
    status = [lines for command, lines in shown if command == "awsenv status"]
    assert len(status) == 2 and re.match(r"dev  expires \S+Z  (5\dm|1h00m) left$", status[0][0]), status


def test_demo_labels_the_emulators_session_key(demo_output):
    """moto's fixed session key ID must not read as a second long-term key."""
    calls = sts_calls(demo_output)
    fixed = [line for line in calls if "AKIAIOSFODNN7EXAMPLE" in line]
    assert fixed and all("MFA session" in line and "same key ID" in line for line in fixed), fixed
    long_term = [line for line in calls if "long-term key" in line]
    assert long_term and all("AKIAIOSFODNN7EXAMPLE" not in line for line in long_term)


def test_demo_shows_a_rejected_mfa_code_then_the_right_one(demo_output):
    shown = steps(demo_output)
    commands = [command for command, _ in shown]
    tried = [i for i, command in enumerate(commands) if "--mfa-code 000000" in command]
    assert tried, f"the demo never tries a wrong MFA code: {commands}"
    wrong = tried[0]
    assert any("the MFA code was rejected" in line for line in shown[wrong][1]), shown[wrong]
    assert re.search(r"--mfa-code (?!000000)\d{6}", commands[wrong + 1]), commands[wrong + 1]
    assert shown[wrong + 1][1] == [] and shown[wrong + 2][1][0].startswith("dev ")
    tokens = [line for line in sts_calls(demo_output) if line.startswith("GetSessionToken")]
    assert "000000: refused" in tokens[0] and "refused" not in tokens[1], tokens


def assert_cleaned_up(out: str) -> None:
    home = re.search(r"HOME in ([^,\s]+)", out).group(1)
    runtime = re.search(r"agent in (\S+)", out).group(1)
    for path in (home, runtime):
        assert not Path(path).exists(), path
    # An agent started a moment before the hangup may still be binding its socket when the
    # demo stops it; it exits within a second of its runtime directory going.
    deadline = time.monotonic() + 5
    while (left := processes_mentioning(home) + processes_mentioning(runtime)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], (home, runtime)


def test_demo_on_a_terminal_opens_an_initialised_bash(tmp_path):
    """Every profile the demo lists works in its interactive shell."""
    import io

    import pexpect

    env = demo_env(tmp_path / "bin")
    child = pexpect.spawn(sys.executable, [str(ROOT / "demo" / "demo.py")], env=env, encoding="utf-8",
                          timeout=120, dimensions=(40, 200))
    child.logfile_read = log = io.StringIO()
    try:
        child.expect("Type exit to end the demo.")
        child.expect("awsenv-demo")
        offered = re.findall(r"^(\S+)\s+(?:base|role)\s", log.getvalue().replace("\r", ""), re.M)
        assert len(offered) >= 5, log.getvalue()
        for n, profile in enumerate(offered):
            child.sendline(f'awsenv use {profile} --mfa-code 2222{n:02d}; echo "rc=$? now=$AWSENV_PROFILE"; '
                           "aws sts get-caller-identity --query Account --output text")
            child.expect(r"rc=(\d+) now=(\S*)\r\n")
            assert child.match.groups() == ("0", profile), f"awsenv use {profile} failed in the demo's shell"
            child.expect(r"([^\r\n]*)\r\n")
            assert child.match.group(1) == "123456789012", f"the AWS CLI failed with {profile}'s credentials"
            child.expect("awsenv-demo")
        child.sendline("awsenv use prod")
        child.expect(r"\(prod (5[0-9]m|1h00m)\) ")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert_cleaned_up(log.getvalue().replace("\r", ""))


# Where the terminal closes: in the middle of the scripted flow (a command is writing to
# the store and starting the agent), or at the interactive shell's prompt.
HANGUPS = {
    "during the flow": [re.escape("$ eval \"$(awsenv use dev --mfa-code 123456)\"")],
    "at the prompt": ["Type exit to end the demo.", "awsenv-demo"],
}


@pytest.mark.parametrize("when", HANGUPS)
def test_demo_cleans_up_when_its_terminal_closes(tmp_path, when):
    import signal

    import pexpect

    env = demo_env(tmp_path / "bin")
    child = pexpect.spawn(sys.executable, [str(ROOT / "demo" / "demo.py")], env=env, encoding="utf-8",
                          timeout=120, dimensions=(40, 200))
    child.expect(r"HOME in \S+, agent in \S+")
    header = child.after
    for pattern in HANGUPS[when]:
        child.expect(pattern)
    child.kill(signal.SIGHUP)
    child.expect(pexpect.EOF)
    child.close()
    assert_cleaned_up(header)


def test_demo_without_the_emulator_says_so_in_one_line(tmp_path):
    """A Python without the demo extra (here: with site-packages switched off): one line
    naming what is missing and how to get it, no traceback, nothing left in /tmp."""
    env = demo_env(tmp_path / "bin")
    done = subprocess.run([sys.executable, "-S", str(ROOT / "demo" / "demo.py")], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("make demo: the moto AWS emulator is not installed")
    assert "make demo" in done.stderr.split("; ")[-1] and "Traceback" not in done.stderr


def test_demo_without_bash_says_so_in_one_line(tmp_path):
    env = {**demo_env(tmp_path / "bin"), "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run([sys.executable, str(ROOT / "demo" / "demo.py")], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=env, timeout=120)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("make demo: bash is not installed") and done.stderr.count("\n") == 1, done.stderr
