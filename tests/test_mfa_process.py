"""`mfa_process = COMMAND`: a profile's MFA codes printed by a program (ykman, op, bw),
as aws-vault reads the key. The programs here are small shell scripts in the test's
own folder; moto takes any six digits as alice's code, and its spy shows which one
reached STS."""
from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

import pytest
from helpers import env_after, one_line_error, use
from test_shells import export
from test_windows import windows  # noqa: F401 - the fixture


def script(folder: Path, body: str, name: str = "mfa-code") -> Path:
    """An executable /bin/sh script; each run appends a line to `runs` beside it."""
    path = folder / name
    path.write_text(f"#!/bin/sh\necho run >> {shlex.quote(str(folder / 'runs'))}\n{body}\n")
    path.chmod(0o755)
    return path


def runs(folder: Path) -> int:
    path = folder / "runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def give_jump(world, command: str) -> None:
    """jump, the base profile that holds alice's device, gets `mfa_process = command`."""
    config = world.home / ".aws" / "config"
    text = config.read_text()
    assert "[profile jump]\n" in text
    config.write_text(text.replace("[profile jump]\n", f"[profile jump]\nmfa_process = {command}\n", 1))


def token_codes(world) -> list[str]:
    return [c.params["TokenCode"] for c in world.moto.calls if "TokenCode" in c.params]


def test_use_takes_the_code_from_mfa_process_with_no_terminal_and_no_prompt(world, tmp_path):
    world.add_keys()
    give_jump(world, str(script(tmp_path, "echo 482913")))
    done = world.ok("use", "dev", "--shell", "bash")  # no terminal, no --mfa-code
    assert env_after(world, done.stdout)["AWSENV_PROFILE"] == "dev"
    assert token_codes(world) == ["482913"], "the printed code went to GetSessionToken"
    assert [a for a, _ in world.moto.actions()] == ["GetSessionToken", "AssumeRole"]
    assert "482913" not in done.stderr + done.stdout and runs(tmp_path) == 1
    use(world, "prod")  # from the same MFA session: the process is not run again
    assert runs(tmp_path) == 1


def test_a_role_that_names_the_same_device_uses_the_base_profiles_mfa_process(world, tmp_path):
    """`long` asks for 2 h, so its AssumeRole carries a code for its own mfa_serial,
    which is jump's device: jump's mfa_process makes it."""
    world.add_keys()
    give_jump(world, str(script(tmp_path, "echo 246810")))
    env = use(world, "long")
    assert env["AWSENV_PROFILE"] == "long"
    (call,) = world.moto.calls
    assert (call.action, call.params["TokenCode"], call.params["DurationSeconds"]) == ("AssumeRole", "246810", "7200")


def test_mfa_code_comes_first_then_mfa_process_then_a_totp_secret(world, tmp_path):
    import pyotp

    world.add_keys()
    give_jump(world, str(script(tmp_path, "echo 135790")))
    world.ok("mfa", "set", "jump", input=pyotp.random_base32() + "\n")
    use(world, "jump", "--mfa-code", "111111")
    assert runs(tmp_path) == 0
    use(world, "jump", "--refresh")
    assert token_codes(world) == ["111111", "135790"] and runs(tmp_path) == 1


def test_list_shows_which_profiles_codes_come_from_a_process(world):
    give_jump(world, "ykman oath accounts code --single aws-alice")
    rows = {r["profile"]: r for r in json.loads(world.ok("list", "--json").stdout)["profiles"]}
    assert rows["jump"]["mfa_process"] == rows["dev"]["mfa_process"] == rows["long"]["mfa_process"] == "jump"
    assert rows["ci"]["mfa_process"] is None and rows["deploy"]["mfa_process"] is None
    table = world.ok("list").stdout
    assert re.search(r"^dev\s+role\s+jump\s+process\s", table, re.M), table
    assert re.search(r"^ci\s+base\s+keyring\s+no\s", table, re.M), table


@pytest.mark.parametrize(("body", "says"), [
    ("echo 'yubikey not found' >&2\nexit 3", "exited with 3: yubikey not found"),
    ("echo abc", "did not print a 6-digit code"),
    ("echo 'a code for the other account' >&2\necho 12345678", "did not print a 6-digit code: a code for the other account"),
    # Its output may be a code or a secret: never in the line, not even through stderr.
    ("echo 975310\necho 'printed 975310, then failed' >&2\nexit 1", "exited with 1: printed [its output], then failed"),
    ("echo 'line one' >&2\necho 'line two' >&2\nexit 2", "exited with 2: line one"),
])
def test_a_failing_mfa_process_is_one_line_naming_the_profile(world, tmp_path, body, says):
    world.add_keys()
    give_jump(world, str(script(tmp_path, body)))
    line = one_line_error(world.run("use", "dev", "--shell", "bash"), 1)
    assert line == f"awsenv: mfa_process of profile 'jump' {says}"
    assert world.moto.calls == [] and runs(tmp_path) == 1


@pytest.mark.parametrize(("command", "says"), [
    ("/nonexistent/ykman oath accounts code --single aws", "failed: No such file or directory"),
    ("op item get 'unbalanced --otp", "is not a valid command line"),
])
def test_an_mfa_process_that_cannot_start_is_one_line_without_its_command(world, command, says):
    world.add_keys()
    give_jump(world, command)
    line = one_line_error(world.run("use", "jump", "--shell", "bash"), 1)
    assert line == f"awsenv: mfa_process of profile 'jump' {says}"


def test_a_code_already_sent_is_not_sent_again_the_next_step_is(world, tmp_path):
    """Two switches inside one 30 s step both need a code; the process prints the same
    one twice (as ykman does within a step). The second run waits for the next step
    and runs the process again, as for a TOTP secret."""
    codes = tmp_path / "codes"
    codes.write_text("314159\n314159\n271828\n")
    world.add_keys()
    give_jump(world, str(script(tmp_path, f'sed -n "$(wc -l < {shlex.quote(str(tmp_path / "runs"))})p" {codes}')))
    use(world, "jump")
    done = world.ok("use", "jump", "--refresh", "--shell", "bash")
    assert token_codes(world) == ["314159", "271828"] and runs(tmp_path) == 3
    assert "waiting" in done.stderr and "for the next MFA code" in done.stderr


def test_a_process_that_prints_the_spent_code_again_after_the_wait_is_one_line(tmp_path):
    """In-process, with the clock and the sleep given (as for TOTP): after one step the
    code is still the spent one, so the process is no TOTP; no second wait."""
    from awsenv.core.errors import MfaError
    from awsenv.session.mfa import STEP, CodeSource

    class NoTerminal:
        available = False
        lines: list = []

        def say(self, text):
            self.lines.append(text)

    now = [STEP * 56_666_666 + 20]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    command = str(script(tmp_path, "echo 123456"))
    codes = CodeSource(None, lambda _profile: None, {"SERIAL": ["123456", now[0] - 5]}, terminal=NoTerminal(),
                       clock=lambda: now[0], sleep=sleep)
    with pytest.raises(MfaError, match=r"^mfa_process of profile 'jump' printed a code that was already used"):
        codes.code("dev", "SERIAL", "jump", process=("jump", command))
    assert slept == [11] and runs(tmp_path) == 2
    assert NoTerminal.lines == ["awsenv: waiting 11s for the next MFA code"]


def test_a_timeout_ends_the_process_and_names_its_first_stderr_line(tmp_path):
    from awsenv.core.errors import MfaError
    from awsenv.host.process import run

    pid = tmp_path / "pid"
    command = str(script(tmp_path, f"echo 'Touch your YubiKey...' >&2\necho $$ > {pid}\nexec sleep 60"))
    started = time.monotonic()
    with pytest.raises(MfaError) as caught:
        run(command, "mfa_process of profile 'jump'", MfaError, capture_stderr=True, timeout=1)
    assert str(caught.value) == "mfa_process of profile 'jump' timed out after 1 s: Touch your YubiKey..."
    assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid.read_text()), 0)  # killed and reaped, not left behind


@pytest.mark.parametrize(("mode", "ran"), [("prompt", True), ("warn", False)])
def test_the_prompt_hook_runs_mfa_process_only_where_it_may_ask(world, tmp_path, mode, ran):
    """AWSENV_REFRESH=warn only says a code is needed: mfa_process, which may want a
    touch or an unlock, is a way of asking, and is not run."""
    world.add_keys()
    give_jump(world, str(script(tmp_path, "echo 864200")))
    due = {"AWSENV_PROFILE": "jump", "AWSENV_EXPIRES": str(int(time.time()) + 100), "AWSENV_REFRESH": mode}
    done = world.ok("refresh", "--shell", "bash", env=due)
    assert runs(tmp_path) == int(ran)
    if ran:
        assert token_codes(world) == ["864200"] and "renewed jump" in done.stderr
    else:
        assert world.moto.calls == [] and "needs a new MFA code" in done.stderr


def test_on_a_terminal_its_prompt_shows_and_its_answer_is_read(world, term, tmp_path):
    """What a password manager does: ask on stderr, read the terminal, print the code.
    In an interactive bash, `awsenv use jump` shows its question at once and hands it
    what is typed; awsenv asks nothing itself."""
    world.add_keys()
    give_jump(world, str(script(tmp_path, "printf 'Unlock the vault: ' >&2\nread -r answer\n"
                                          '[ "$answer" = open-sesame ] && echo 192837')))
    t = term("bash", before=export("bash", "AWSENV_AGENT", "0"))
    t.child.send("awsenv use jump\r")
    t.expect("Unlock the vault: ")
    t.child.send("open-sesame\r")
    t.prompt()
    assert t.value("AWSENV_PROFILE") == "jump"
    assert token_codes(world) == ["192837"] and "MFA code for" not in t.output


def test_ctrl_c_while_it_waits_for_a_touch_cancels_and_leaves_nothing(world, term, tmp_path):
    """Ctrl-C while the program waits (for a touch that never comes): the wrapper sets
    nothing, and the program is gone."""
    world.add_keys()
    pid = tmp_path / "pid"
    give_jump(world, str(script(tmp_path, f"echo $$ > {pid}\nprintf 'Touch your YubiKey...' >&2\nexec sleep 60")))
    t = term("bash", before=export("bash", "AWSENV_AGENT", "0"))
    t.child.send("awsenv use jump\r")
    t.expect("Touch your YubiKey...")
    t.child.sendcontrol("c")
    t.prompt()
    assert "RC:130" in t.run("echo RC:$?")
    assert t.value("AWSENV_PROFILE") == ""
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid.read_text()), 0)
    assert world.moto.calls == []


def test_on_windows_the_command_line_is_split_as_windows_does(world, windows, tmp_path):
    """The CommandLineToArgvW rule of credential_process: a backslash path stays whole.
    No console here (no CONIN$): the program gets no stdin and awsenv asks nothing."""
    world.add_keys()
    check = tmp_path / "check.py"
    check.write_text("import sys\nprint('505050' if sys.argv[1:] == [r'C:\\tools\\otp.exe', 'aws'] else 'no')\n")
    give_jump(world, f'"{sys.executable}" {check} C:\\tools\\otp.exe aws')
    done = windows("use", "jump", "--shell", "pwsh")
    assert done.returncode == 0, done.stderr
    assert token_codes(world) == ["505050"]
