"""Shell integration (issue 3): real bash, zsh and fish on a pseudo-terminal, the
PowerShell script parsed by tree-sitter, golden files, completions/ and the wheel."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import AWSENV, require, require_module
from terminal import INIT, READY, now

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
INTERACTIVE = ("bash", "zsh", "fish")
SEGMENT = re.compile(r"\(dev (5[0-9]m|1h00m)\) " + READY)  # a role lasts 1 h
MFA_QUESTION = "MFA code for jump"


def export(shell: str, name: str, value: str) -> str:
    return f"set -gx {name} {value}" if shell == "fish" else f"export {name}={value}"


# 1. use / prompt / unset ------------------------------------------------------------
@pytest.mark.parametrize("shell", INTERACTIVE)
def test_use_sets_variables_and_prompt_shows_segment(world, term, shell):
    world.add_keys()
    t = term(shell)
    assert t.value("AWSENV_PROFILE") == ""
    t.run("awsenv use dev --mfa-code 111111")
    # The prompt drawn right after `use` carries the segment.
    assert SEGMENT.search(t.output.rsplit(READY, 2)[-2] + READY), t.output[-300:]
    assert t.value("AWSENV_PROFILE") == "dev"
    assert t.value("AWS_ACCESS_KEY_ID").startswith("ASIA")
    assert t.value("AWS_SESSION_TOKEN")
    assert t.value("AWS_REGION") == "eu-central-1"
    assert 3000 < t.number("AWSENV_EXPIRES") - now() <= 3600
    out = t.run("awsenv_prompt")
    assert re.search(r"^dev (5[0-9]m|1h00m)$", out, re.M), out
    t.run("awsenv unset")
    assert t.value("AWS_ACCESS_KEY_ID") == ""
    assert t.value("AWSENV_PROFILE") == ""
    out = t.run("awsenv_prompt")
    assert "dev" not in out.replace("awsenv_prompt", "")
    assert "(dev" not in t.run("")


@pytest.mark.parametrize("shell", ("bash", "zsh"))
def test_prompt_segment_format(world, term, shell):
    t = term(shell)
    cases = [(3 * 3600 + 5 * 60 + 30, "prod 3h05m"), (42 * 60 + 30, "prod 42m"),
             # 5m30s: half a minute of slack for a second boundary between setting and drawing
             (5 * 60 + 30, "prod 5m!"),
             (-5, "prod expired")]
    for left, shown in cases:
        out = t.run(f"AWSENV_PROFILE=prod AWSENV_EXPIRES=$((EPOCHSECONDS + {left})) awsenv_prompt")
        assert re.search(rf"^{re.escape(shown)}\r?$", out, re.M), (shown, out)


# 2. idempotent, keeps $?, strict modes ----------------------------------------------
@pytest.mark.parametrize("shell", INTERACTIVE)
def test_init_twice_one_hook_one_segment_keeps_status(world, term, shell):
    world.add_keys()
    t = term(shell, after=INIT[shell])
    if shell == "bash":
        assert t.run('printf "%s\\n" "${PROMPT_COMMAND[*]}"').count("__awsenv_hook") == 1
    elif shell == "zsh":
        assert t.run("print -l $precmd_functions").count("__awsenv_precmd") == 1
    else:
        assert t.run("functions --handlers-type generic").count("__awsenv_hook") == 1
    t.run("awsenv use dev --mfa-code 111111")
    prompt_line = t.run("").splitlines()[-1]
    assert prompt_line.count("(dev ") == 1, prompt_line
    t.run("false")
    status = "$status" if shell == "fish" else "$?"
    assert re.search(r"^rc=1\r?$", t.run(f"echo rc={status}"), re.M)


STRICT = {
    "bash": ["bash", "--noprofile", "--norc", "-euo", "pipefail", "-c", 'eval "$(awsenv init bash)"'],
    "zsh": ["zsh", "-f", "-eu", "-c", 'eval "$(awsenv init zsh)"'],
    "fish": ["fish", "--no-config", "-c", "awsenv init fish | source"],
}


@pytest.mark.parametrize("shell", INTERACTIVE)
@pytest.mark.parametrize("flags", ([], ["--no-prompt", "--no-refresh"], ["--cmd", "aws-env"]))
def test_init_in_strict_mode(shell, flags):
    require(shell)
    argv = list(STRICT[shell])
    argv[-1] = argv[-1].replace("init " + shell, " ".join(["init", shell, *flags]))
    # Twice, and then the hook once, still in strict mode.
    hook = {"bash": "__awsenv_hook", "zsh": "__awsenv_precmd", "fish": "emit fish_prompt"}[shell]
    argv[-1] = f"{argv[-1]}; {argv[-1]}; {hook}; echo ok"
    env = {**os.environ, "PATH": f"{Path(AWSENV).parent}:{os.environ['PATH']}"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "ok\n")


# 3. nothing due starts nothing --------------------------------------------------------
@pytest.mark.parametrize("shell", ("bash", "zsh"))
def test_nothing_due_starts_no_process(world, term, tmp_path, shell):
    world.add_keys()
    empty = tmp_path / "empty"
    empty.mkdir()
    t = term(shell)
    for _ in range(3):
        t.run("")
    t.run("awsenv use dev --mfa-code 111111")
    runs = len(t.recorder.runs())
    mark = len(t.output)
    t.run(f"PATH={empty}")
    for _ in range(3):
        t.run("")
    out = t.run("awsenv_prompt")
    assert re.search(r"^dev (5[0-9]m|1h00m)$", out, re.M), out
    # With the recording program still reachable by its absolute path: `use` again
    # while dev is fresh returns 0 and starts nothing.
    assert re.search(r"^rc=0\r?$", t.run("awsenv use dev; echo rc=$?"), re.M)
    assert len(t.recorder.runs()) == runs
    assert "not found" not in t.output[mark:]
    assert "(dev " in t.run("")


def test_fish_use_again_starts_nothing(world, term):
    world.add_keys()
    t = term("fish")
    t.run("awsenv use dev --mfa-code 111111")
    runs = len(t.recorder.runs())
    assert re.search(r"^rc=0\r?$", t.run("awsenv use dev; echo rc=$status"), re.M)
    t.run("")
    assert len(t.recorder.runs()) == runs
    # Not active: no process at all, so an empty PATH is fine.
    t.run("awsenv unset")
    t.run("set -gx PATH /nonexistent")
    mark = len(t.output)
    t.run("")
    t.run("")
    assert "Unknown command" not in t.output[mark:] and "not found" not in t.output[mark:]


# 4. silent refresh ------------------------------------------------------------------
@pytest.mark.parametrize("shell", INTERACTIVE)
def test_silent_refresh_from_cached_mfa_session(world, term, shell):
    world.add_keys()
    t = term(shell)
    t.run("awsenv use dev --mfa-code 111111")
    key = t.value("AWS_ACCESS_KEY_ID")
    world.moto.calls.clear()
    runs = len(t.recorder.runs())
    mark = len(t.output)
    soon = "(math (date +%s) + 100)" if shell == "fish" else "$((EPOCHSECONDS + 100))"
    t.run(export(shell, "AWSENV_EXPIRES", soon))  # the hook runs before this prompt
    assert "MFA" not in t.output[mark:]
    assert any("refresh" in run for run in t.recorder.runs()[runs:])
    assert t.number("AWSENV_EXPIRES") - now() > 600
    assert t.value("AWSENV_PROFILE") == "dev"
    assert t.value("AWS_ACCESS_KEY_ID").startswith("ASIA")
    assert "GetSessionToken" not in [action for action, _ in world.moto.actions()]
    assert key  # the shell had credentials before the refresh


@pytest.mark.parametrize("shell", INTERACTIVE)
def test_silent_refresh_renews_a_short_role_from_the_mfa_session(world, term, shell):
    world.add_keys()
    t = term(shell, before=export(shell, "AWSENV_REFRESH_WINDOW", "1000"))
    # A 15-minute role under a 1000 s window: due at the very next prompt.
    out = t.run("awsenv use dev --duration 900 --mfa-code 111111")
    assert "MFA" not in out
    calls = world.moto.actions()
    assert [action for action, _ in calls] == ["GetSessionToken", "AssumeRole", "AssumeRole"]
    session_key = calls[1][1]
    assert calls[2][1] == session_key, "the renewal is signed by the cached MFA session"
    assert world.moto.calls[1].params["DurationSeconds"] == "900"
    assert t.number("AWSENV_EXPIRES") - now() > 1000
    assert t.value("AWS_ACCESS_KEY_ID").startswith("ASIA")
    world.moto.calls.clear()
    for _ in range(2):
        t.run("")
    assert world.moto.actions() == [], "renewed credentials outlive the window: nothing more to do"


# 5. re-prompt for MFA -----------------------------------------------------------------
def start_short_jump(world, term, shell, code):
    world.add_keys()
    t = term(shell, before=export(shell, "AWSENV_REFRESH_WINDOW", "1000"))
    t.child.send(f"awsenv use jump --duration 900 --mfa-code {code}\r")
    t.expect(MFA_QUESTION)  # the very next prompt asks, naming the profile
    return t


@pytest.mark.parametrize("shell", INTERACTIVE)
def test_reprompt_renews_with_typed_code(world, term, shell):
    t = start_short_jump(world, term, shell, "111111")
    assert re.search(r"expire in 1[45]m", t.output), t.output[-400:]
    t.child.send("2222\r")  # a typo: said so, and asked again
    t.expect("an MFA code is 6 digits")
    t.expect(MFA_QUESTION)
    t.child.send("111111\r")  # the code the session was made with: spent
    t.expect("that code was already used")
    t.expect(MFA_QUESTION)
    typed = len(t.output)
    t.child.send("222222\r")
    t.prompt()
    # A code is not a secret once used: it is echoed, so the user sees what they typed.
    assert "222222" in t.output[typed:], t.output[typed:]
    assert t.number("AWSENV_EXPIRES") - now() > 1000
    assert t.value("AWSENV_PROFILE") == "jump"
    mark = len(t.output)
    t.run("")
    assert MFA_QUESTION not in t.output[mark:]


@pytest.mark.parametrize("shell", INTERACTIVE)
def test_reprompt_empty_answer_skips_until_expiry_then_asks_once(world, term, shell):
    t = start_short_jump(world, term, shell, "111111")
    t.child.send("\r")
    t.prompt()
    mark = len(t.output)
    for _ in range(3):
        t.run("")
    assert MFA_QUESTION not in t.output[mark:]
    assert t.value("AWSENV_PROFILE") == "jump"
    assert 0 < t.number("AWSENV_EXPIRES") - now() <= 900
    # The declined refresh left "not before expiry" behind. Move both to 10 s from now,
    # the state the hook would see then, rather than wait a quarter of an hour.
    assert t.number("AWSENV_NEXT_CHECK") == t.number("AWSENV_EXPIRES")
    expires = now() + 10
    t.run(f"{export(shell, 'AWSENV_EXPIRES', str(expires))}; {export(shell, 'AWSENV_NEXT_CHECK', str(expires))}")
    mark = len(t.output)
    t.run("")
    assert MFA_QUESTION not in t.output[mark:], "asked again before expiry"
    while now() <= expires:  # waiting for the clock, not timing anything
        time.sleep(0.2)
    t.child.send("\r")
    out = t.expect(MFA_QUESTION)  # expired: asked once more
    assert "have expired" in out, out
    t.child.send("\r")
    t.prompt()
    mark = len(t.output)
    for _ in range(3):
        t.run("")
    assert MFA_QUESTION not in t.output[mark:], "asked again after the second decline"
    assert t.value("AWSENV_PROFILE") == "jump"
    assert "(jump expired) " in t.run("")


@pytest.mark.parametrize("shell", INTERACTIVE)
def test_reprompt_ctrl_c_leaves_shell_as_it_was(world, term, shell):
    world.add_keys()
    t = term(shell)
    t.run("awsenv use jump --duration 900 --mfa-code 111111")  # 900 s left: not due yet
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWSENV_EXPIRES", "AWSENV_PROFILE")
    before = {name: t.value(name) for name in names}
    assert before["AWS_SESSION_TOKEN"] and 0 < int(before["AWSENV_EXPIRES"]) - now() <= 900
    t.child.send(export(shell, "AWSENV_REFRESH_WINDOW", "1000") + "\r")
    t.expect(MFA_QUESTION)
    t.child.sendcontrol("c")
    t.prompt()
    for name, value in before.items():
        assert t.value(name) == value, name
    mark = len(t.output)
    t.run("")
    assert MFA_QUESTION not in t.output[mark:]
    assert re.search(r"^alive\r?$", t.run("echo alive"), re.M)


def test_adhoc_role_through_the_wrapper_and_the_prompt(world, term):
    world.add_keys()
    t = term("bash")
    arn = "arn:aws:iam::123456789012:role/prod"
    out = t.run(f"awsenv use --role-arn {arn} --from jump --session-name me --mfa-code 111111")
    assert re.search(r"\(prod@123456789012 (5[0-9]m|1h00m)\) " + READY, out), out
    assert t.value("AWSENV_ROLE_ARN") == arn
    assume = [c for c in world.moto.calls if c.action == "AssumeRole"]
    assert assume[0].params["RoleArn"] == arn and assume[0].params["RoleSessionName"] == "me"


# 6. completion ------------------------------------------------------------------------
@pytest.mark.parametrize("shell", ("bash", "zsh"))
def test_tab_completes_profiles_and_subcommands(world, term, shell):
    # zsh: compinit after the init line, as many rc files have it.
    t = term(shell, after="autoload -Uz compinit && compinit -u" if shell == "zsh" else "")
    t.run("")  # zsh registers with compdef at the first prompt after compinit
    t.child.send("awsenv use lo\t")
    t.expect(r"use long")
    t.cancel_line()
    t.child.send("awsenv us\t")
    t.expect(r"awsenv use(\x1b\[[0-9;]*m)? ")
    t.cancel_line()
    t.child.send("awsenv use dev --mfa\t")
    t.expect(r"--mfa-code")
    t.cancel_line()


def test_fish_completion_offers_profiles(world):
    done = world.shell("fish", "awsenv init fish | source; complete -C 'awsenv use lo'; complete -C 'awsenv us'")
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert "long" in lines and "use" in lines, done.stdout


def test_completions_dir_is_current():
    """tools/completions.py is a development tool, run from the checkout, not shipped."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("completions_tool", ROOT / "tools" / "completions.py")
    completions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(completions)
    assert completions.stale(ROOT / "completions") == [], "run `make completions`"


# 7. PowerShell ----------------------------------------------------------------------
def parse_pwsh(text: str):
    tree_sitter = require_module("tree_sitter")
    tree_sitter_powershell = require_module("tree_sitter_powershell")
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    tree = parser.parse(text.encode())
    bad = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            bad.append((node.start_point, text.encode()[node.start_byte:node.end_byte][:80]))
        stack.extend(node.children)
    return tree, bad


def nodes(node):
    yield node
    for child in node.children:
        yield from nodes(child)


def code(node, kind: str) -> list[str]:
    """The texts of the `kind` nodes under node: code only, never a comment."""
    return [n.text.decode() for n in nodes(node) if n.type == kind]


@pytest.mark.parametrize("flags", ([], ["--no-prompt", "--no-refresh"], ["--cmd", "aws-env"]))
def test_pwsh_init_parses_and_defines_the_pieces(home, flags):
    from test_pwsh import commands, elements, exe_calls, functions

    text = home.ok("init", "pwsh", *flags).stdout
    tree, bad = parse_pwsh(text)
    assert bad == []
    cmd = flags[1] if flags[:1] == ["--cmd"] else "awsenv"
    defined = functions(tree.root_node)
    assert {f"global:{cmd}", "global:awsenv_prompt", "global:prompt"} <= set(defined)
    (register,) = commands(tree.root_node, "Register-ArgumentCompleter")
    assert elements(register)[:2] == ["-CommandName", cmd]
    assert "[DateTimeOffset]::UtcNow.ToUnixTimeSeconds()" in defined["global:__awsenv_now"].text.decode()
    assert set(exe_calls(text)) == {AWSENV}
    # Mirrors the other shells, found in code, not in a comment: the window defaults
    # to 600 and is read from AWSENV_REFRESH_WINDOW,
    window = defined["global:__awsenv_window"]
    assert "$env:AWSENV_REFRESH_WINDOW" in code(window, "variable")
    assert [r for r in code(window, "flow_control_statement") if r.split() == ["return", "600"]]
    # the segment says `expired` after expiry and marks the window with `!`,
    segment = defined["global:awsenv_prompt"]
    assert any(s.endswith(' expired"') for s in code(segment, "expandable_string_literal"))
    assert "'!'" in code(segment, "string_literal")
    assert "__awsenv_window" in code(segment, "command_name")
    # refresh is due at AWSENV_NEXT_CHECK, never with AWSENV_REFRESH=off,
    due = defined["global:__awsenv_due"]
    assert {"$env:AWSENV_NEXT_CHECK", "$env:AWSENV_REFRESH"} <= set(code(due, "variable"))
    assert "'off'" in code(due, "string_literal")
    # and a refresh that didn't finish is not asked for again before expiry.
    assert "'9999999999'" in code(defined["global:__awsenv_eval"], "string_literal")


def test_pwsh_use_output_parses_and_quotes(world):
    world.add_keys()
    done = world.ok("use", "dev", "--mfa-code", "111111", "--shell", "pwsh")
    _tree, bad = parse_pwsh(done.stdout)
    assert bad == []
    assert re.search(r"^\$env:AWSENV_PROFILE = 'dev'$", done.stdout, re.M)
    from awsenv.shells import get

    line = get("pwsh").export("X", "it's")
    assert line == "$env:X = 'it''s'" and parse_pwsh(line)[1] == []


# 9. golden files --------------------------------------------------------------------
EXTENSIONS = {"bash": "bash", "zsh": "zsh", "fish": "fish", "pwsh": "ps1"}
FAKE_EXE = "/opt/awsenv/bin/awsenv"


@pytest.mark.parametrize("shell", EXTENSIONS)
def test_init_matches_golden_file(home, shell):
    from awsenv.shells import get

    text = home.ok("init", shell).stdout
    quoted = get(shell).quote(AWSENV)
    assert quoted in text
    text = text.replace(quoted, get(shell).quote(FAKE_EXE))
    golden = GOLDEN / f"init.{EXTENSIONS[shell]}"
    if os.environ.get("UPDATE_GOLDEN"):
        # Rewriting and then comparing proves nothing; CI must compare against the file.
        assert not os.environ.get("CI"), "UPDATE_GOLDEN is refused under CI"
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), "run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{golden.name} differs; review, then UPDATE_GOLDEN=1"


def test_exe_path_is_quoted_once(home, tmp_path):
    """A venv path with a space and a quote still runs: the placeholder is quoted by
    init, never by the template."""
    from awsenv.shells import get

    for shell in EXTENSIONS:
        text = home.ok("init", shell).stdout
        quoted = get(shell).quote(AWSENV)
        assert f"'{quoted}'" not in text and f'"{quoted}"' not in text
        assert "__AWSENV_" not in text


# Found in review ----------------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_ctrl_c_interrupts_a_hanging_call(world, term, hanging, shell):
    world.add_keys()
    t = term(shell)
    t.child.send(f"AWS_ENDPOINT_URL={hanging.url} awsenv use dev --mfa-code 555555\r")
    # Once the call reached the endpoint, Python is certainly past its start-up and has
    # its SIGINT handler; the call would now wait out its read timeout.
    assert hanging.connected.wait(60), "awsenv never reached the endpoint"
    t.child.sendcontrol("c")
    out = t.prompt()
    # Not the read timeout's "unreachable": the interrupt ended the call.
    assert "cancelled" in out and "unreachable" not in out, out
    assert t.value("AWSENV_PROFILE") == ""


def test_bash_hook_goes_last_and_before_bash_preexec(home):
    script = """
__bp_interactive_mode() { :; }; first() { :; }
PROMPT_COMMAND=$'first;\\n__bp_interactive_mode'
eval "$(awsenv init bash)"; eval "$(awsenv init bash)"
printf '%s|' "$PROMPT_COMMAND"; echo
unset PROMPT_COMMAND; PROMPT_COMMAND="history -a;"
eval "$(awsenv init bash)"
printf '%s|' "$PROMPT_COMMAND"; echo
"""
    done = home.shell("bash", script)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert lines[0:3] == ["first;", "__awsenv_hook", "__bp_interactive_mode|"]
    assert lines[3:5] == ["history -a;", "__awsenv_hook|"]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_segment_variable_kept_with_no_prompt_and_big_numbers_ignored(home, shell):
    hook = "__awsenv_hook" if shell == "bash" else "__awsenv_precmd"
    script = f"""
eval "$(awsenv init {shell} --no-prompt)"
export AWSENV_PROFILE=dev AWSENV_EXPIRES=$(( $(date +%s) + 3000 ))
{hook}; echo "seg=[$__awsenv_segment]"
export AWSENV_EXPIRES=99999999999999999999
{hook}; echo "seg=[$__awsenv_segment] rc=$?"
"""
    done = home.shell(shell, script)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert re.search(r"^seg=\[dev (49|50)m\]$", done.stdout, re.M), done.stdout
    assert "seg=[] rc=0" in done.stdout


def test_fish_prompt_keeps_pipestatus(home):
    script = """
awsenv init fish | source
function __awsenv_original_fish_prompt; echo "[$pipestatus] $status"; end
true | false; fish_prompt
false; fish_prompt
"""
    done = home.shell("fish", script)
    assert done.stdout.splitlines() == ["[0 1] 1", "[1] 1"], done.stdout + done.stderr


@pytest.mark.parametrize("name", ["command", "builtin", "test", "__awsenv_x"])
def test_cmd_may_not_replace_what_the_scripts_call(home, name):
    done = home.run("init", "bash", "--cmd", name)
    assert done.returncode == 2 and done.stdout == "" and "--cmd" in done.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_cmd_may_differ_from_a_reserved_name_by_case_where_the_shell_tells_case_apart(home, shell):
    """`Command` is not `command` in bash, zsh or fish (PowerShell's refusal of `Prompt`
    is in test_pwsh). Mutation (cosmic-ray): `case_sensitive` made False."""
    done = home.run("init", shell, "--cmd", "Command")
    assert done.returncode == 0, done.stderr
    assert "Command" in done.stdout


def test_init_names_the_program_it_was_run_as_when_it_is_not_on_path(home):
    """A venv's awsenv run by its path, with the venv not on PATH: the wrapper calls that
    program. `python -m awsenv` with no awsenv anywhere: one line, not a wrapper that
    calls nothing. Mutations (cosmic-ray): executable() skipping sys.argv[0]; its
    `found is None` check negated."""
    from awsenv.shells import get
    from helpers import one_line_error

    bare = {"PATH": "/usr/bin:/bin"}
    done = home.run("init", "bash", env=bare)
    assert done.returncode == 0, done.stderr
    assert f"{get('bash').quote(AWSENV)} " in done.stdout, done.stdout[:400]
    module = subprocess.run([sys.executable, "-m", "awsenv", "init", "bash"], env={**home.env, **bare},
                            capture_output=True, text=True, cwd=home.root, timeout=60)
    line = one_line_error(module, 1)
    assert line == "awsenv: cannot find the awsenv program on PATH; the shell integration calls it by its full path"


def test_refresh_leaves_a_hand_set_region_alone(world):
    world.add_keys()
    script = """
set -e
eval "$(awsenv use dev --mfa-code 123456 --shell bash --region us-west-2)"
export AWS_REGION=ap-south-1 AWS_DEFAULT_REGION=ap-south-1
export AWSENV_REFRESH_WINDOW=4000
eval "$(awsenv refresh --shell bash)"
echo "$AWS_REGION $AWS_DEFAULT_REGION"
"""
    done = world.shell("bash", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ap-south-1 ap-south-1"
    assert [a for a, _ in world.moto.actions()].count("AssumeRole") == 2
