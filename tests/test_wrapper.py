"""The wrapper function as a user types it (issue 8): bare and through eval or a pipe,
the exit status of a failed `use`, the statements' own status, the refresh window the
hook passes on, `awsenv init` with no shell name, and Tab completion. Real bash, zsh
and fish on a pseudo-terminal, moto over HTTP, gnome-keyring."""
from __future__ import annotations

import re
import subprocess

import pytest

from conftest import AWSENV
from terminal import Terminal, now

INTERACTIVE = ("bash", "zsh", "fish")
CODE = "--mfa-code 111111"

# The forms that apply what `use` prints, in each shell.
EVAL_FORMS = [
    ("bash", 'eval "$(awsenv {})"'),
    ("zsh", 'eval "$(awsenv {})"'),
    ("fish", "awsenv {} | source"),
    ("fish", "eval (awsenv {})"),
]
STATUS = {"bash": "$?", "zsh": "$?", "fish": "$status"}


def rc(t: Terminal, line: str) -> int:
    """Run `line`, then print the status it left."""
    out = t.run(f"{line}; echo rc={STATUS[t.shell]}")
    found = re.findall(r"^rc=(\d+)\r?$", out, re.M)
    assert found, out
    return int(found[-1])


# Bug 1: eval "$(awsenv use dev)" in an initialised shell -------------------------------
@pytest.mark.parametrize(("shell", "form"), EVAL_FORMS)
def test_use_and_unset_through_eval_or_a_pipe(world, term, shell, form):
    world.add_keys()
    t = term(shell)
    assert rc(t, form.format(f"use dev {CODE}")) == 0
    assert t.value("AWSENV_PROFILE") == "dev"
    assert t.value("AWS_ACCESS_KEY_ID").startswith("ASIA")
    assert t.value("AWS_REGION") == "eu-central-1"
    assert 3000 < t.number("AWSENV_EXPIRES") - now() <= 3600
    key = t.value("AWS_ACCESS_KEY_ID")

    # Already active: the shortcut prints nothing, starts nothing, changes nothing.
    runs = len(t.recorder.runs())
    assert rc(t, form.format("use dev")) == 0
    assert len(t.recorder.runs()) == runs
    assert t.value("AWS_ACCESS_KEY_ID") == key

    # Another profile is not mistaken for the active one.
    assert rc(t, form.format("use prod")) == 0
    assert t.value("AWSENV_PROFILE") == "prod"
    assert t.value("AWS_REGION") == "", "dev's region goes with dev"

    assert rc(t, form.format("unset")) == 0
    for name in ("AWSENV_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWSENV_EXPIRES"):
        assert t.value(name) == "", name


COUNT_EXPORTS = {
    "bash": "x=$(awsenv use dev {}); printf '%s\\n' \"$x\" | grep -c '^export '",
    "zsh": "x=$(awsenv use dev {}); printf '%s\\n' \"$x\" | grep -c '^export '",
    # fish runs a function in its own process: without the check, the wrapper would
    # apply them there and print nothing.
    "fish": "awsenv use dev {} | string match -r '^set -gx ' | count",
}


@pytest.mark.parametrize("shell", INTERACTIVE)
def test_command_substitution_or_pipe_gets_the_statements(world, term, shell):
    world.add_keys()
    t = term(shell)
    out = t.run(COUNT_EXPORTS[shell].format(CODE))
    assert re.search(r"^(1[0-9])\r?$", out, re.M), out
    assert t.value("AWSENV_PROFILE") == "", "printed, not applied"
    # Bare, the wrapper applies them.
    t.run("awsenv use dev")
    assert t.value("AWSENV_PROFILE") == "dev"


def test_fish_file_redirect_still_applies(world, term):
    """In fish a function is not a subshell: only a reader (a pipe, a command
    substitution) gets the statements; output sent to a file still applies."""
    world.add_keys()
    t = term("fish")
    assert rc(t, f"awsenv use dev {CODE} > out.txt") == 0
    assert t.value("AWSENV_PROFILE") == "dev"
    assert (world.root / "out.txt").read_text() == ""


def failing_forms(shell: str, args: str) -> list[str]:
    """Lines that end by printing the status of a failing `awsenv ARGS` as rc=N."""
    if shell == "fish":
        return [f"awsenv {args}; echo rc=$status",
                f"awsenv {args} | source; echo rc=$pipestatus[1]",
                f"set x (awsenv {args}); echo rc=$status"]
    return [f"awsenv {args}; echo rc=$?", f"x=$(awsenv {args}); echo rc=$?"]


@pytest.mark.parametrize("shell", INTERACTIVE)
def test_failed_use_gives_its_status_in_each_form(world, term, shell):
    world.add_keys()
    t = term(shell)
    for args, status in ((f"use nope {CODE}", 2), ("use dev --duration 5", 2)):
        for line in failing_forms(shell, args):
            out = t.run(line)
            assert re.search(rf"^rc={status}\r?$", out, re.M), (line, out)
    # An AWS failure is 1.
    world.moto.refuse = lambda call: call.action == "AssumeRole"
    for line in failing_forms(shell, f"use dev {CODE}"):
        out = t.run(line)
        assert re.search(r"^rc=1\r?$", out, re.M), (line, out)
        assert "InvalidClientTokenId" in out or "security token" in out, out
    assert t.value("AWSENV_PROFILE") == ""
    assert t.value("AWS_ACCESS_KEY_ID") == ""


# Bug 2: the statements leave status 0 ------------------------------------------------
def test_fish_source_then_and_runs_the_next_command(world, term):
    world.add_keys()
    t = term("fish")
    out = t.run(f"false; awsenv use dev {CODE} | source; and echo ok-$status")
    assert re.search(r"^ok-0\r?$", out, re.M), out
    assert t.value("AWSENV_PROFILE") == "dev"
    out = t.run("false; awsenv unset | source; and echo ok-$status")
    assert re.search(r"^ok-0\r?$", out, re.M), out
    assert t.value("AWSENV_PROFILE") == ""


@pytest.mark.parametrize("shell", INTERACTIVE)
def test_statements_leave_status_zero(world, shell):
    """use, unset and a declined refresh, sourced after a failing command, in an
    environment where much of what they unset is absent."""
    world.add_keys()
    printed = {
        # warn, and no session cached yet: the refresh is declined and says when to retry.
        "refresh": world.ok("refresh", "--shell", shell, env={
            "AWSENV_PROFILE": "jump", "AWSENV_EXPIRES": str(now() + 100), "AWSENV_REFRESH": "warn"}).stdout,
        "use": world.ok("use", "dev", "--mfa-code", "111111", "--shell", shell).stdout,
        "unset": world.ok("unset", "--shell", shell).stdout,
    }
    assert "AWSENV_NEXT_CHECK" in printed["refresh"]
    for what, text in printed.items():
        path = world.root / f"{what}.{shell}"
        path.write_text(text)
        script = f"false; source {path}; echo rc={STATUS[shell]}"
        done = world.shell(shell, script)
        assert done.stdout.strip() == "rc=0" and done.stderr == "", (what, done.stdout, done.stderr)


# Bug 8: the window the hook uses is the one the program uses -----------------------------
@pytest.mark.parametrize("shell", INTERACTIVE)
def test_unexported_refresh_window_reaches_the_program(world, term, shell):
    world.add_keys()
    unexported = "set -g AWSENV_REFRESH_WINDOW 1000" if shell == "fish" else "AWSENV_REFRESH_WINDOW=1000"
    t = term(shell, before=unexported)
    env = t.run("env | grep -c '^AWSENV_REFRESH_WINDOW=' || true")
    assert re.search(r"^0\r?$", env, re.M), env
    # A 15-minute role under a 1000 s window: the hook renews it at the next prompt,
    # and the program must ask for credentials that outlive the same window.
    out = t.run(f"awsenv use dev --duration 900 {CODE}")
    assert re.search(r"awsenv: renewed dev \((5[0-9]m|1h00m) left\)", out), out
    assert [action for action, _ in world.moto.actions()].count("AssumeRole") == 2
    assert t.number("AWSENV_EXPIRES") - now() > 1000
    world.moto.calls.clear()
    runs = len(t.recorder.runs())
    t.run("")
    assert world.moto.actions() == [] and len(t.recorder.runs()) == runs, "nothing more is due"


@pytest.mark.parametrize("shell", INTERACTIVE)
def test_unexported_refresh_mode_reaches_the_program(world, term, shell):
    world.add_keys()
    settings = {"bash": "AWSENV_REFRESH=warn; export AWSENV_REFRESH_WINDOW=1000",
                "zsh": "AWSENV_REFRESH=warn; export AWSENV_REFRESH_WINDOW=1000",
                "fish": "set -g AWSENV_REFRESH warn; set -gx AWSENV_REFRESH_WINDOW 1000"}
    t = term(shell, before=settings[shell])
    # jump's own 15-minute MFA session is due at once; warn never asks for a code.
    out = t.run(f"awsenv use jump --duration 900 {CODE}")
    assert "MFA code for" not in out
    assert re.search(r"awsenv: cannot refresh jump: .*needs a new MFA code", out), out
    assert t.number("AWSENV_NEXT_CHECK") == t.number("AWSENV_EXPIRES")


# use / unset / refresh on stderr -------------------------------------------------------
def test_use_and_unset_are_silent_refresh_says_what_it_did(world):
    world.add_keys()
    use = world.ok("use", "dev", "--mfa-code", "111111", "--shell", "bash")
    assert use.stderr == ""
    assert world.ok("unset", "--shell", "bash").stderr == ""
    # A window above the time left: renewed from the cached MFA session, in one line.
    done = world.ok("refresh", "--shell", "bash", env={**exported(use.stdout), "AWSENV_REFRESH_WINDOW": "3590"})
    assert re.fullmatch(r"awsenv: renewed dev \((5[0-9]m|1h00m) left\)\n", done.stderr), done.stderr
    assert [action for action, _ in world.moto.actions()].count("AssumeRole") == 2
    # The default window: the active role is handed back, nothing renewed, nothing said.
    again = world.ok("refresh", "--shell", "bash", env=exported(done.stdout))
    assert again.stderr == "" and "AWS_SESSION_TOKEN=" in again.stdout


def exported(statements: str) -> dict[str, str]:
    """The variables bash statements export (values with no quote inside)."""
    pairs = re.findall(r"^export ([A-Z_]+)='([^']*)';$", statements, re.M)
    assert pairs, statements
    return dict(pairs)


def test_declined_refresh_says_so_in_one_line(world, term):
    world.add_keys()
    t = term("bash", before="export AWSENV_REFRESH_WINDOW=1000")
    t.child.send(f"awsenv use jump --duration 900 {CODE}\r")
    t.expect("MFA code for jump")
    t.child.send("\r")
    out = t.prompt()
    lines = [line for line in out.splitlines() if line.startswith("awsenv:")]
    assert re.fullmatch(r"awsenv: jump not renewed; asking again when it expires in 1[45]m", lines[-1]), out


# awsenv init with no shell name ------------------------------------------------------------
@pytest.mark.parametrize("shell", INTERACTIVE)
def test_init_without_a_shell_name_detects_it(world, term, shell):
    world.add_keys()
    line = "awsenv init | source" if shell == "fish" else 'eval "$(awsenv init)"'
    # $SHELL names another shell: the calling one (shellingham) wins.
    t = term(shell, init=line, env={"SHELL": "/usr/bin/zsh" if shell == "bash" else "/bin/bash"})
    assert rc(t, f"awsenv use dev {CODE}") == 0
    assert t.value("AWSENV_PROFILE") == "dev"
    assert "(dev " in t.run("")


def pretend_parent(script: str, env: dict) -> subprocess.CompletedProcess:
    """Run `script` in a bash that calls itself tcsh: a shell shellingham knows and
    awsenv does not print for."""
    return subprocess.run(
        ["bash", "-c", 'exec -a tcsh bash -c "$0"', script], env=env, capture_output=True,
        text=True, timeout=60,
    )


def test_init_detection_failure_names_what_was_tried(home):
    env = {k: v for k, v in home.env.items() if k != "SHELL"}
    done = pretend_parent(f"'{AWSENV}' init; echo rc=$?", env)
    assert done.stdout == "rc=2\n", done.stdout
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("awsenv: "), done.stderr
    for said in ("tcsh", "$SHELL is unset", "awsenv init bash|zsh|fish|pwsh"):
        assert said in done.stderr, done.stderr
    # $SHELL is the fallback.
    done = pretend_parent(f"'{AWSENV}' init --no-prompt; echo rc=$?", {**env, "SHELL": "/usr/bin/zsh"})
    assert done.stdout.endswith("rc=0\n") and "precmd_functions" in done.stdout, done.stderr


# Completion --------------------------------------------------------------------------------
def listed(t: Terminal, typed: str, expect: str) -> str:
    """Type `typed` (with its Tabs) and return what appeared until `expect` had shown
    and the line was dropped."""
    mark = len(t.output)
    t.child.send(typed)
    t.expect(expect)
    t.cancel_line()
    return t.output[mark:]


TAB_TWICE = {"bash": "\t\t", "zsh": "\t", "fish": "\t"}


@pytest.mark.parametrize("shell", INTERACTIVE)
def test_tab_after_use_offers_profiles_then_flags_after_a_dash(world, term, shell):
    t = term(shell, after="autoload -Uz compinit && compinit -u" if shell == "zsh" else "")
    tabs = TAB_TWICE[shell]
    out = listed(t, f"awsenv use {tabs}", "viaproc")
    assert "deploy" in out and "long" in out, out
    assert "--mfa-code" not in out and "--help" not in out, out
    out = listed(t, f"awsenv use -{tabs}", "mfa-code")  # fish highlights the typed `-`
    assert "--duration" in out, out


COMPINIT = "autoload -Uz compinit && compinit -u"


@pytest.mark.parametrize("order", ("before", "after", "before and after"))
@pytest.mark.parametrize("cmd", ("awsenv", "aws-env"))
def test_zsh_completion_whatever_the_order_of_compinit(world, term, order, cmd):
    """compinit before the init line, after it (many rc files), or both (a framework
    and the user each run it)."""
    init = f'eval "$(awsenv init zsh --cmd {cmd})"'
    place = {where: COMPINIT for where in order.split(" and ")}
    t = term("zsh", init=init, **place)
    t.child.send(f"{cmd} use lo\t")
    t.expect(rf"{cmd} use long")
    t.cancel_line()


@pytest.mark.parametrize("shell", ("bash", "fish"))
def test_completion_under_another_command_name(world, term, shell):
    init = {"bash": 'eval "$(awsenv init bash --cmd aws-env)"', "fish": "awsenv init fish --cmd aws-env | source"}
    t = term(shell, init=init[shell])
    t.child.send("aws-env use lo\t")
    t.expect(r"long")  # typed `lo`; fish redraws the line with colours between words
    t.cancel_line()


@pytest.mark.parametrize("shell", ("bash", "zsh", "fish"))
def test_exec_completes_the_profiles_alone_then_file_names(world, tmp_path, shell):
    """zsh offered `awsenv exec <Tab>` as the profiles mixed with the file names of the
    working directory (the command's words). The profile comes first; a script after it."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "run-me.sh").write_text("")

    def offered(line: str) -> set[str]:
        out = tmp_path / "offered"
        world.ok(env={"_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": shell, "_ARGCOMPLETE_SUPPRESS_SPACE": "1",
                      "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(out)},
                 cwd=folder)
        # zsh's words carry `:description`, fish's a tab and a description
        return {word.split(":")[0].split("\t")[0].strip() for word in out.read_text().split("\013")} - {""}

    profiles = offered("awsenv exec ")
    assert {"dev", "deploy", "viaproc"} <= profiles and "run-me.sh" not in profiles, profiles
    assert "run-me.sh" in offered("awsenv exec dev "), "a script to run is a file name"
