"""The four shell scripts and Python agree: the same prompt segment, the same answer to
"is a refresh due?", the same bounds on what they read from the environment, and the
same hold on a refresh that dies, case by case, in real bash, zsh and fish on a
pseudo-terminal. The values they share (the refresh window, the longest number, "never")
come from core/settings.py, and the time-left notation is Python's `format_ttl`.

PowerShell cannot run here: its script is rendered from the same settings (checked
below), and its logic is checked by structure in test_pwsh.py.

The shells' clock is a `date` program of the test's that prints AWSENV_TEST_NOW (bash
loses EPOCHSECONDS and zsh unloads zsh/datetime, so both fall back to it, as fish
always does), so a case never straddles a second.
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from awsenv.core import settings
from awsenv.core.creds import format_ttl

SHELLS = ("bash", "zsh", "fish")
VARIABLES = ("AWSENV_PROFILE", "AWSENV_EXPIRES", "AWSENV_NEXT_CHECK", "AWSENV_REFRESH_WINDOW", "AWSENV_SERVED",
             "AWSENV_REFRESH")
NOW = 1_900_000_000


# What Python says, from the product's own constants and notation ----------------------
def number(value: str | None) -> int | None:
    ok = value is not None and value.isascii() and value.isdigit() and 0 < len(value) <= settings.NUMBER_DIGITS
    return int(value) if ok else None


def window(env: dict) -> int:
    given = number(env.get("AWSENV_REFRESH_WINDOW"))
    return settings.REFRESH_WINDOW if given is None else given


def segment(env: dict, now: int) -> str:
    profile, expires = env.get("AWSENV_PROFILE"), number(env.get("AWSENV_EXPIRES"))
    if not profile or expires is None:
        return ""
    left = expires - now
    if left <= 0:
        return f"{profile} expired"
    text = f"{profile} {format_ttl(left)}" + ("!" if left < window(env) else "")
    if env.get("AWSENV_SERVED"):
        text = f"{profile} served" + text[len(profile):]
    return text


def due(env: dict, now: int, agent_alive: bool) -> bool:
    expires = number(env.get("AWSENV_EXPIRES"))
    if not env.get("AWSENV_PROFILE") or expires is None or env.get("AWSENV_REFRESH") == "off":
        return False
    if "AWSENV_NEXT_CHECK" in env:
        check = number(env["AWSENV_NEXT_CHECK"])
        return check is not None and now >= check
    if number(env.get("AWSENV_SERVED")) is not None and not agent_alive:
        return True
    return expires - now < window(env)


# The cases -------------------------------------------------------------------------------
LEFT = (-100, 0, 1, 59, 60, 61, 599, 600, 601, 3599, 3600, 3660, 7199, 86_400, 360_000)
CASES: list[dict] = [{"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + left)} for left in LEFT]
CASES += [
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + left), "AWSENV_REFRESH_WINDOW": win}
    for left in (100, 119, 120, 121, 700) for win in ("120", "abc", "1" * 13, "0")
]
CASES += [
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": "1" * 13},  # 13 digits: not ours
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": "1" * 12},
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": "12a"},
    {"AWSENV_PROFILE": "", "AWSENV_EXPIRES": str(NOW + 100)},
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + 100), "AWSENV_REFRESH": "off"},
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + 5000), "AWSENV_NEXT_CHECK": str(NOW - 1)},
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + 5000), "AWSENV_NEXT_CHECK": str(NOW)},
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + 100), "AWSENV_NEXT_CHECK": str(NOW + 1)},
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + 100), "AWSENV_NEXT_CHECK": "1" * 13},
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + 100), "AWSENV_NEXT_CHECK": "soon"},
    {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + 100), "AWSENV_NEXT_CHECK": str(settings.NEVER)},
]


def assign(shell: str, env: dict) -> str:
    clear = f"set -e {' '.join(VARIABLES)}" if shell == "fish" else f"unset {' '.join(VARIABLES)}"
    if shell == "fish":
        sets = "; ".join(f"set -gx {name} '{value}'" for name, value in env.items())
    else:
        sets = "export " + " ".join(f"{name}='{value}'" for name, value in env.items())
    return f"{clear}; {sets}" if env else clear


def ask(shell: str) -> str:
    """One line that prints the segment and the due status as VAL:segment|status:END."""
    if shell == "fish":
        return r"printf 'V\x41L:%s|%s:END\n' (awsenv_prompt | string collect --allow-empty) (__awsenv_due; echo $status)"
    return r"""printf 'V\x41L:%s|%s:END\n' "$(awsenv_prompt)" "$(__awsenv_due; echo $?)" """


def clocked(shell_term, home, shell: str):
    """A shell with awsenv's init whose clock is AWSENV_TEST_NOW. Its prompt hook does
    not refresh (--no-refresh): the cases ask the functions, and a refresh at the prompt
    would change what they see."""
    clock = home.root / "clock"
    clock.mkdir(exist_ok=True)
    (clock / "date").write_text('#!/bin/sh\nprintf "%s\\n" "$AWSENV_TEST_NOW"\n')
    (clock / "date").chmod(0o755)
    after = {"bash": "unset EPOCHSECONDS", "zsh": "zmodload -u zsh/datetime", "fish": ""}[shell]
    before = "set -gx AWSENV_TEST_NOW 0" if shell == "fish" else "export AWSENV_TEST_NOW=0"
    init = "awsenv init fish --no-refresh | source" if shell == "fish" else f'eval "$(awsenv init {shell} --no-refresh)"'
    return shell_term(shell, before=before, after=after, init=init, env={"PATH": f"{clock}:{home.env['PATH']}"})


def answers(term, shell: str, env: dict, now: int) -> tuple[str, bool]:
    term.run(assign(shell, {**env, "AWSENV_TEST_NOW": str(now)}))
    from terminal import VALUE

    found = VALUE.findall(term.run(ask(shell)))
    assert found, f"{shell} printed no answer for {env}"
    text, _, status = found[-1].rpartition("|")
    return text, status == "0"


@pytest.mark.parametrize("shell", SHELLS)
def test_every_shell_shows_and_decides_as_python_does(shell_term, home, shell):
    term = clocked(shell_term, home, shell)
    wrong = []
    for env in CASES:
        got = answers(term, shell, env, NOW)
        want = (segment(env, NOW), due(env, NOW, agent_alive=True))
        if got != want:
            wrong.append(f"{env}: {shell} says {got}, Python {want}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_served_shell_repairs_after_a_dead_or_zombie_agent_only(shell_term, home, shell):
    term = clocked(shell_term, home, shell)
    zombie = subprocess.Popen(["true"])  # exits, and stays a zombie until we reap it
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        deadline = time.monotonic() + 10
        while not open(f"/proc/{zombie.pid}/stat").read().rpartition(")")[2].strip().startswith("Z"):
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        for pid, alive in ((os.getpid(), True), (zombie.pid, False), (dead.pid, False)):
            env = {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + 5000), "AWSENV_SERVED": str(pid)}
            got = answers(term, shell, env, NOW)
            assert got == (segment(env, NOW), due(env, NOW, alive)), (shell, pid, alive, got)
    finally:
        zombie.wait()


@pytest.mark.parametrize("shell", SHELLS)
def test_a_refresh_that_dies_is_held_back_until_expiry_then_for_good(shell_term, home, shell):
    """Python that cannot even start (a broken PYTHONHOME) prints nothing: the hook must
    not ask again at every prompt, as the program itself would not after a failure."""
    term = clocked(shell_term, home, shell)
    broken = "set -gx PYTHONHOME /nonexistent" if shell == "fish" else "export PYTHONHOME=/nonexistent"
    mended = "set -e PYTHONHOME" if shell == "fish" else "unset PYTHONHOME"
    for left, held in ((300, NOW + 300), (-5, settings.NEVER)):
        env = {"AWSENV_PROFILE": "dev", "AWSENV_EXPIRES": str(NOW + left), "AWSENV_TEST_NOW": str(NOW)}
        term.run(assign(shell, env))
        term.run(f"{broken}; __awsenv_eval refresh; {mended}")
        assert term.number("AWSENV_NEXT_CHECK") == held, (shell, left)
        # ...and with the hold in place, nothing is due before it.
        assert answers(term, shell, {**env, "AWSENV_NEXT_CHECK": str(held)}, NOW)[1] is False


def test_every_script_gets_the_shared_values_from_settings(home):
    for shell in ("bash", "zsh", "fish", "pwsh"):
        text = home.ok("init", shell).stdout
        assert "__AWSENV_" not in text, f"{shell}: a placeholder was not filled"
        assert str(settings.REFRESH_WINDOW) in text and str(settings.NUMBER_DIGITS) in text, shell
        assert str(settings.NEVER) in text, shell
