"""What many test files share: reading the statements `use` prints, the one-line error
check, secrets on disk, `add` on a terminal, and the keyring items of a test's own
Secret Service. Not tests; no fixture."""
from __future__ import annotations

import subprocess
import sys

from conftest import AWSENV


def secrets_on_disk(world, *secrets: str) -> list[str]:
    """Files under HOME or TMPDIR that hold any of the secrets, in any encoding we'd write."""
    found = []
    needles = [s.encode() for s in secrets if s]
    for root in (world.home, world.tmp):
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if any(n in data for n in needles):
                    found.append(str(path))
    return found


def env_after(world, script_output: str, shell: str = "bash") -> dict[str, str]:
    """Evaluate `use` output in a real bash and return the resulting environment."""
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", 'eval "$AWSENV_OUT" && env -0'],
        env={**world.env, "AWSENV_OUT": script_output}, capture_output=True, text=True, check=True,
    )
    return dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)


def use(world, *args: str, env: dict | None = None) -> dict[str, str]:
    done = world.ok("use", *args, "--shell", "bash", env=env)
    return env_after(world, done.stdout)


# 13 ---------------------------------------------------------------------------------
def one_line_error(done, code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def add_on_a_terminal(world, name: str, serial: str | list[str] = "") -> tuple[int, str, str]:
    """`awsenv add NAME` typed on a terminal: the key, yes to the offer, then `serial`
    at the MFA question (a list: one answer each time it is asked). The exit status,
    what showed before the offer, and after it."""
    import pexpect

    child = pexpect.spawn(AWSENV, ["add", name], env=world.env, cwd=str(world.root), encoding="utf-8", timeout=30)
    try:
        child.expect_exact(f"Access key ID for {name}: ")
        child.sendline(world.robot.key_id)
        child.expect_exact(f"Secret access key for {name}: ")
        child.sendline(world.robot.secret)
        child.expect(r"has no \[profile .*\]\. Add it\? \[Y/n\] ")
        seen = child.before + child.after
        child.sendline("")
        child.expect("Region, empty for \\[default\\]'s us-east-1: ")
        child.sendline("")
        for answer in [serial] if isinstance(serial, str) else serial:
            child.expect("MFA device ARN")
            child.sendline(answer)
        child.expect(pexpect.EOF)
        after = child.before
    finally:
        child.close()
    return child.exitstatus, seen, after


def keyring_set(world, item: str, value: str) -> None:
    code = "import keyring, sys; keyring.set_password('awsenv', sys.argv[1], sys.argv[2])"
    subprocess.run([sys.executable, "-c", code, item, value], env=world.env, check=True)


def keyring_get(world, item: str) -> str | None:
    code = "import keyring, sys; print(keyring.get_password('awsenv', sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", code, item], env=world.env, check=True, capture_output=True, text=True)
    return done.stdout.rstrip("\n")


def is_agent_of(pid: str, world) -> bool:
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        environ = open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        return False
    return b"awsenv.agent" in cmdline and str(world.keyring.runtime_dir).encode() in environ


def wait_gone(pid: int, timeout: float = 30) -> bool:
    """Whether the process exits (or is left a zombie) within `timeout` seconds, as the
    product itself tells it (awsenv.host.runtime.process_gone)."""
    import time

    from awsenv.host.runtime import process_gone

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(0.05)
    return False
