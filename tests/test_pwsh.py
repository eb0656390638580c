"""The PowerShell integration, checked by its parsed structure (tree-sitter-powershell):
PowerShell cannot run here. Each test names the defect of issue 11 it guards against,
and looks at syntax nodes, not at substrings that a comment could satisfy."""
from __future__ import annotations

import json

import pytest

from conftest import WEIRD
from test_quoting import PS_BASE64, ps_assignments, ps_decode, ps_parser, ps_problems, walk


def parse(text: str):
    tree = ps_parser().parse(text.encode())
    assert ps_problems(tree) == []
    return tree.root_node


def of_type(node, kind: str) -> list:
    return [n for n in walk(node) if n.type == kind]


def functions(root) -> dict:
    return {f.named_children[0].text.decode(): f for f in of_type(root, "function_statement")}


def name_of(command) -> str | None:
    names = [c for c in command.named_children if c.type == "command_name"]
    return names[0].text.decode() if names else None


def commands(node, name: str) -> list:
    return [c for c in of_type(node, "command") if (name_of(c) or "").lower() == name.lower()]


def elements(command) -> list[str]:
    """The parameters and arguments of a command, as written."""
    parts = [c for c in command.named_children if c.type == "command_elements"]
    if not parts:
        return []
    return [e.text.decode() for e in parts[0].named_children if e.type != "command_argument_sep"]


def exe_calls(text: str) -> list[str]:
    """The programs that `& PROGRAM` calls in text, decoded."""
    calls = []
    for command in of_type(parse(text), "command"):
        if command.named_children and command.named_children[0].type == "command_invokation_operator":
            target = command.named_children[1].text.decode()
            calls.append(ps_decode(target))
    return calls


def ancestors(node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


def in_try_block(node) -> bool:
    """Inside the guarded block of a try (not its catch or finally)."""
    return any(a.type == "statement_block" and a.parent is not None and a.parent.type == "try_statement"
               for a in ancestors(node))


def in_finally(node) -> bool:
    return any(a.type == "finally_clause" for a in ancestors(node))


def statements(function) -> list:
    body = of_type(function, "script_block_body") or of_type(function, "script_block")
    return body[0].named_children[0].named_children


@pytest.fixture
def init(world):
    def make(*flags: str):
        return parse(world.ok("init", "pwsh", *flags).stdout)
    return make


@pytest.mark.parametrize("flags", ([], ["--no-prompt", "--no-refresh"], ["--cmd", "aws-env"]))
def test_everything_is_defined_in_the_global_scope(init, flags):
    """Item 11: init inside a function must not leave the helpers in its scope."""
    root = init(*flags)
    names = set(functions(root))
    cmd = flags[1] if flags[:1] == ["--cmd"] else "awsenv"
    wanted = {f"global:{n}" for n in (cmd, "awsenv_prompt", "prompt", "__awsenv_original_prompt",
                                      "__awsenv_run", "__awsenv_eval", "__awsenv_due", "__awsenv_now")}
    assert wanted <= names
    assert all(name.startswith("global:") for name in names), names


def test_prompt_is_wrapped_again_when_it_is_not_ours(init):
    """Item 11: a theme that redefines `prompt` after init is wrapped by the next init."""
    root = init()
    prompt = functions(root)["global:prompt"]
    guard = next(a for a in ancestors(prompt) if a.type == "if_statement")
    condition = guard.named_children[0].text.decode()
    assert condition == "-not $__awsenv_ours"
    (decision,) = [a for a in of_type(root, "assignment_expression") if a.text.startswith(b"$__awsenv_ours =")]
    tests = commands(decision, "Test-Path")
    assert tests and all(elements(t) == ["-LiteralPath", "'function:global:prompt'"] for t in tests)
    assert b".ScriptBlock.ToString().Contains('__awsenv_original_prompt')" in decision.text
    saves = commands(root, "Set-Item")
    assert [elements(s)[:2] for s in saves] == [["-Path", "'function:global:__awsenv_original_prompt'"]]


def test_prompt_keeps_status_and_exit_code_under_strict_mode(init):
    """Items 10 and 13: restoring $? is the prompt's last statement; LASTEXITCODE is
    read only once Test-Path found it."""
    prompt = functions(init())["global:prompt"]
    last = statements(prompt)[-1]
    assert last.type == "if_statement" and last.named_children[0].text == b"-not $lastSuccess"
    (write,) = commands(last, "Write-Error")
    assert elements(write) == ["''", "-ErrorAction", "Ignore"]
    assert [elements(t) for t in commands(prompt, "Test-Path")] == [["-LiteralPath", "'variable:global:LASTEXITCODE'"]]
    for variable in of_type(prompt, "variable"):
        if variable.text == b"$global:LASTEXITCODE":
            conditions = [a.named_children[0].text for a in ancestors(variable) if a.type == "if_statement"]
            assert b"$hadExit" in conditions, variable.start_point


def test_a_failed_command_is_an_error_for_the_caller(init):
    """Item 6: `awsenv use dev && terraform apply` must stop when use failed. Only an
    advanced function's $PSCmdlet.WriteError sets the caller's $? to false."""
    wrapper = functions(init())["global:awsenv"]
    attributes = [a.text for a in of_type(wrapper.named_children[1].named_children[0], "type_identifier")]
    assert b"CmdletBinding" in attributes
    writes = [n for n in of_type(wrapper, "invokation_expression") if n.text.startswith(b"$PSCmdlet.WriteError(")]
    writes = writes or [n for n in walk(wrapper) if n.child_count and n.text.startswith(b"$PSCmdlet.WriteError(")]
    assert writes
    guard = next(a for a in ancestors(writes[0]) if a.type == "if_statement")
    assert guard.named_children[0].text == b"$rc -ne 0"


def test_no_args_and_no_silently_continue(init, world):
    """Item 13: `$args[0]` fails under strict mode for a bare `awsenv`. Item 14:
    SilentlyContinue still adds to $Error, which starship reads."""
    world.add_keys()
    use = world.ok("use", "dev", "--mfa-code", "123456", "--shell", "pwsh").stdout
    unset = world.ok("unset", "--shell", "pwsh", env={"AWSENV_NEXT_CHECK": "1"}).stdout
    for root in (init(), init("--no-prompt"), parse(use), parse(unset)):
        assert [v for v in of_type(root, "variable") if v.text.lower() == b"$args"] == []
        for command in of_type(root, "command"):
            parts = [p.lower() for p in elements(command)]
            for i, part in enumerate(parts[:-1]):
                if "-erroraction".startswith(part) and part.startswith("-e") or part == "-ea":
                    assert parts[i + 1] == "ignore", command.text
    assert commands(parse(unset), "Remove-Item") == []  # `$env:NAME = $null`: $? stays true


def test_completion_reaches_the_function_and_cleans_up(init):
    """Item 8: a parameter completer (a -Native one never runs for a function), the
    line of this command only, and the _ARGCOMPLETE variables removed in a finally."""
    root = init()
    (register,) = commands(root, "Register-ArgumentCompleter")
    parts = elements(register)
    assert "-Native" not in parts
    assert parts[:4] == ["-CommandName", "awsenv", "-ParameterName", "Arguments"]
    block = [n for n in walk(register) if n.type == "script_block_expression"][0]  # the outermost
    (trial,) = of_type(block, "try_statement")
    settings = [a for a in of_type(block, "assignment_expression") if a.text.startswith(b"$env:")]
    assert {a.text.split(b" ")[0] for a in settings} >= {b"$env:_ARGCOMPLETE", b"$env:COMP_LINE", b"$env:COMP_POINT"}
    assert all(in_try_block(a) for a in settings)
    (cleanup,) = commands(trial, "Remove-Item")[:1]
    assert in_finally(cleanup) and elements(cleanup)[:2] == ["-LiteralPath", '"env:/$name"']
    (names,) = [a for a in of_type(block, "assignment_expression") if a.text.startswith(b"$names =")]
    listed = {s.text.decode().strip("'") for s in of_type(names, "string_literal")}
    assert listed == {a.named_children[0].text.decode().removeprefix("$env:") for a in settings}
    (line,) = [a for a in of_type(block, "assignment_expression") if a.text.startswith(b"$line =")]
    assert line.text == b"$line = $commandAst.Extent.Text"


def test_ctrl_c_at_the_refresh_question(init):
    """Item 9: AWSENV_NEXT_CHECK is set before the program runs, never in a finally;
    TreatControlCAsInput is read only inside a try."""
    root = init()
    evaluate = functions(root)["global:__awsenv_eval"]
    marks = [a for a in of_type(evaluate, "assignment_expression") if a.text.startswith(b"$env:AWSENV_NEXT_CHECK")]
    (run,) = [c for c in of_type(evaluate, "command") if name_of(c) == "__awsenv_run"]
    assert marks and all(m.end_byte < run.start_byte and not in_finally(m) for m in marks)
    reads = [n for n in walk(root) if n.child_count and n.text == b"[Console]::TreatControlCAsInput"]
    assert reads and all(in_try_block(r) or in_finally(r) for r in reads)
    assert any(in_try_block(r) for r in reads)
    assert not any(in_finally(m) for m in of_type(root, "assignment_expression")
                   if m.text.startswith(b"$env:AWSENV_NEXT_CHECK"))


def test_arguments_travel_in_the_environment(init, world):
    """Item 12: PowerShell 5.1 drops '' and embedded " on a native command line."""
    root = init()
    run = functions(root)["global:__awsenv_run"]
    calls = [c for c in of_type(run, "command") if c.named_children[0].type == "command_invokation_operator"]
    assert [elements(c) for c in calls] == [["--argv-env"]]
    (argv,) = [a for a in of_type(run, "assignment_expression") if a.text.startswith(b"$env:AWSENV_ARGV =")]
    assert [name_of(c) for c in of_type(argv, "command")] == ["ConvertTo-Json"]
    world.add_keys()
    argv = json.dumps(["use", WEIRD, "--mfa-code", "123456", "--shell", "pwsh"])
    done = world.run("--argv-env", env={"AWSENV_ARGV": argv})
    assert done.returncode == 0, done.stderr
    assert dict(ps_assignments(done.stdout))["AWSENV_PROFILE"] == WEIRD
    for bad in ("", "{}", '["use", 1]', "not json"):
        done = world.run("--argv-env", env={"AWSENV_ARGV": bad})
        assert (done.returncode, done.stdout) == (2, "") and done.stderr.startswith("awsenv: "), bad


def test_non_ascii_profile_names_survive_any_code_page(world):
    """Item 7: Python writes a pipe in the ANSI code page (cp1252 stands for it here),
    PowerShell reads with the OEM one. Statements are ASCII; the wrapper's channel
    (--argv-env) is UTF-8."""
    name = "дев-Jürgen"
    with open(world.home / ".aws" / "config", "a", encoding="utf-8") as config:
        config.write(f"\n[profile {name}]\nrole_arn = arn:aws:iam::123456789012:role/dev\nsource_profile = jump\n"
                     f"mfa_serial = {world.alice.mfa_serial}\n")
    world.add_keys()
    ansi = {"PYTHONIOENCODING": "cp1252"}
    done = world.run("use", name, "--mfa-code", "123456", "--shell", "pwsh", env=ansi)
    assert done.returncode == 0, done.stderr
    assert done.stdout.isascii()
    assert dict(ps_assignments(done.stdout))["AWSENV_PROFILE"] == name
    done = world.run("--argv-env", env={**ansi, "AWSENV_ARGV": json.dumps(["list"])})
    assert done.returncode == 0, done.stderr
    assert name in done.stdout


@pytest.mark.parametrize("name", ["prompt", "Prompt", "INVOKE-EXPRESSION", "Register-ArgumentCompleter",
                                  "__AWSENV_x", "awsenv_prompt"])
def test_cmd_may_not_replace_what_powershell_calls(home, name):
    """Item 15: PowerShell finds functions case-insensitively, before cmdlets."""
    done = home.run("init", "pwsh", "--cmd", name)
    assert done.returncode == 2 and done.stdout == "" and "--cmd" in done.stderr
    assert home.run("init", "bash", "--cmd", "prompt").returncode == 0  # bash has no prompt function


def test_use_output_works_line_by_line_in_a_pipeline(world):
    """Issue 8: `awsenv use dev | Invoke-Expression` runs each line on its own, so
    each line is a whole statement."""
    world.add_keys()
    done = world.ok("use", "dev", "--mfa-code", "123456", "--shell", "pwsh", env={"AWS_PROFILE": "x"})
    lines = done.stdout.splitlines()
    assert [ps_assignments(line + "\n") for line in lines] == [[pair] for pair in ps_assignments(done.stdout)]
    assert ("AWS_PROFILE", None) in ps_assignments(done.stdout)
    assert not [line for line in lines if PS_BASE64.search(line)]  # ASCII values stay verbatim


@pytest.mark.parametrize("line, wanted", [("awsenv use d", {"dev", "deploy"}), ("awsenv use --sh", {"--shell"}),
                                          ("awsenv use ", {"dev", "jump"})])
def test_the_completer_environment_completes(world, tmp_path, line, wanted):
    """What the completer sets (COMP_LINE is this command's text, COMP_POINT its end)
    makes the program complete profiles and flags, into a UTF-8 file."""
    out = tmp_path / "completions"
    env = {"ARGCOMPLETE_USE_TEMPFILES": "1", "_ARGCOMPLETE_STDOUT_FILENAME": str(out), "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SUPPRESS_SPACE": "0",
           "_ARGCOMPLETE_IFS": "\n", "_ARGCOMPLETE_SHELL": "powershell"}
    done = world.run(env=env)
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert wanted <= {word.rstrip(" ") for word in out.read_bytes().decode("utf-8").split("\n")}


def test_use_alone_reaches_the_program_with_the_console_as_its_input(init):
    """The picker (`awsenv use` with no profile) reads keys and draws on the terminal:
    the program must be the only command of its pipeline (nothing piped into it), with
    no redirection, while its output is captured for Invoke-Expression; and the
    wrapper's no-Python shortcut must need a profile."""
    fns = functions(init())
    calls = [c for c in of_type(fns["global:__awsenv_run"], "command")
             if c.named_children and c.named_children[0].type == "command_invokation_operator"]
    assert len(calls) == 1
    call = calls[0]
    pipeline = call.parent.parent
    assert pipeline.type == "pipeline" and of_type(pipeline, "command") == [call]
    assert not [n for n in walk(call) if "redirect" in n.type]
    assert elements(call) == ["--argv-env"]

    captured = [a for a in of_type(fns["global:__awsenv_eval"], "assignment_expression")
                if a.named_children[0].text.decode() == "$out"]
    assert len(captured) == 1 and "__awsenv_run" in captured[0].text.decode()
    wrapper = fns["global:awsenv"]
    shortcut = [c for c in of_type(wrapper, "if_statement") if "AWSENV_PROFILE" in c.text.decode()]
    assert shortcut and "$Arguments.Count -eq 2" in shortcut[0].text.decode()
    assert commands(wrapper, "__awsenv_eval")


def test_the_hook_counts_an_agent_with_a_leaving_signal_pending_as_gone(init):
    """`kill $AWSENV_SERVED`: the agent blocks SIGTERM, SIGHUP and SIGINT until its
    endpoint is closed, and the hook reads them from /proc/PID/status, as in the other
    shells (the mask comes from core/settings.py)."""
    from awsenv.core.settings import LEAVING_MASK

    fns = functions(init())
    leaving = fns["global:__awsenv_leaving"]
    text = leaving.text.decode()
    assert "/proc/$agent/status" in text and "(SigPnd|ShdPnd)" in text
    assert f"-band {LEAVING_MASK}" in text and LEAVING_MASK == 0x4103
    assert commands(fns["global:__awsenv_due"], "__awsenv_leaving")
