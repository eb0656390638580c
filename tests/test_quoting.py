"""Quoting by round trip: each value goes through `render`, the real shell evaluates the
statements, and the value comes back byte for byte, both as the shell sees it and as a
child process inherits it. PowerShell cannot run here, so its statements are parsed
with tree-sitter-powershell and the literals decoded by PowerShell's own rules."""
from __future__ import annotations

import base64
import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from awsenv import shells
from conftest import WEIRD, module_available, require, require_module

POSIX_SHELLS = ("bash", "zsh", "fish")

HOSTILE = [
    "'\";&&e-$ èрт🚒♞中片-j",
    "\n",
    "a\nb\n",
    "\\\\",
    "`",
    "%",
    "{}",
    "$(touch PWNED)",
    "`touch PWNED2`",
    "'",
    "trailing\\",
    "\\'",
    "",
    "-",
    "-n",
    "--",
    "‘’",
    "‘typographic’ ‚quotes‛",
    "'; touch PWNED; '",
    "\\'; touch PWNED; echo \\'",
    "$HOME ${HOME} $((1+1)) ~ * ? [a] !! !$",
    "a\tb\rc\x01\x1b[31m\x7f\u0085\u2028",
    " leading and trailing spaces ",
    "%s %n %%",
    "\\n\\t\\x41\\u263a",
    "^ \\c \\e",
    WEIRD,
]

# Characters that mean something to at least one shell, drawn more often than chance.
SPECIAL = list("'\"\\$`!{}()[]%*?~#;&|<>^=,@\n\r\t -\u2018\u2019\u201a\u201b\u201c\u201d\u00a0")
VALUES = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8", exclude_characters="\x00"), st.sampled_from(SPECIAL)),
    max_size=40,
)

ARGV = {
    "bash": ["bash", "--noprofile", "--norc", "-euo", "pipefail", "-c"],
    "zsh": ["zsh", "-f", "-eu", "-c"],
    "fish": ["fish", "--no-config", "-c"],
}


def run_shell(shell: str, script: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    return subprocess.run(
        [*ARGV[shell], script], cwd=cwd, env={**base, **(env or {})},
        capture_output=True, timeout=60, start_new_session=True,
    )


def read_env(path: Path) -> dict[bytes, bytes]:
    """The environment a child process inherited, from `env -0`."""
    entries = path.read_bytes().split(b"\0")
    return dict(entry.partition(b"=")[::2] for entry in entries if entry)


def round_trip(shell: str, values: list[str]) -> None:
    """Sets AWSENV_T0..N in one shell run, then checks each came back exactly."""
    require(shell)
    render = shells.get(shell).render
    names = [f"AWSENV_T{i}" for i in range(len(values))]
    script = render(list(zip(names, values)))
    for i, name in enumerate(names):
        script += f'printf %s "${name}" > out{i}\n'
    script += "env -0 > env.out\n"
    with tempfile.TemporaryDirectory(prefix="awsenv-quote-") as tmp:
        cwd = Path(tmp)
        done = run_shell(shell, script, cwd)
        assert done.returncode == 0, (shell, done.stderr.decode(errors="replace"), script)
        assert done.stderr == b"", (shell, done.stderr.decode(errors="replace"), script)
        exported = read_env(cwd / "env.out")
        for i, (name, value) in enumerate(zip(names, values)):
            assert (cwd / f"out{i}").read_bytes() == value.encode(), (shell, value, script)
            assert exported.get(name.encode()) == value.encode(), (shell, value, "not exported")
        expected = {"home", "env.out", *(f"out{i}" for i in range(len(values)))}
        assert set(os.listdir(cwd)) == expected, "the shell ran something it was only meant to store"


@pytest.mark.parametrize("shell", POSIX_SHELLS)
def test_hostile_values_round_trip(shell):
    round_trip(shell, HOSTILE)


@pytest.mark.parametrize("shell", POSIX_SHELLS)
def test_each_hostile_value_alone(shell):
    """One statement per run, so a value that breaks the parser can't hide behind another."""
    require(shell)
    for value in HOSTILE:
        round_trip(shell, [value])


@pytest.mark.parametrize("shell", POSIX_SHELLS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(VALUES, min_size=1, max_size=30))
@example(values=HOSTILE)
def test_drawn_values_round_trip(shell, values):
    round_trip(shell, values)


@pytest.mark.parametrize("shell", POSIX_SHELLS)
def test_quote_is_one_word(shell):
    """`quote` alone, in argument position: one word, the same text."""
    require(shell)
    quote = shells.get(shell).quote
    script = "".join(f"printf %s {quote(v)} > out{i}\n" for i, v in enumerate(HOSTILE))
    with tempfile.TemporaryDirectory(prefix="awsenv-quote-") as tmp:
        cwd = Path(tmp)
        done = run_shell(shell, script, cwd)
        assert done.returncode == 0 and done.stderr == b"", done.stderr.decode(errors="replace")
        for i, value in enumerate(HOSTILE):
            assert (cwd / f"out{i}").read_bytes() == value.encode(), (shell, value)
        assert not (cwd / "PWNED").exists() and not (cwd / "PWNED2").exists()


CHECK_UNSET = {
    "bash": 'if [ -n "${{{0}+x}}" ]; then echo "{0} still set"; fi\n',
    "zsh": 'if [ -n "${{{0}+x}}" ]; then echo "{0} still set"; fi\n',
    "fish": "if set -q {0}; echo '{0} still set'; end\n",
}


@pytest.mark.parametrize("shell", POSIX_SHELLS)
def test_unset_removes_the_variable(shell):
    require(shell)
    render = shells.get(shell).render
    inherited = {f"AWSENV_U{i}": value for i, value in enumerate(HOSTILE[:5])}
    plan = [(name, None) for name in inherited]
    # set then unset in one plan, and unset of a variable that was never set
    plan += [("AWSENV_SETTHENGONE", "x'y"), ("AWSENV_SETTHENGONE", None), ("AWSENV_NEVER_SET", None)]
    plan += [("AWSENV_KEPT", "kept")]
    script = render(plan)
    for name in [*inherited, "AWSENV_SETTHENGONE", "AWSENV_NEVER_SET"]:
        script += CHECK_UNSET[shell].format(name)
    script += "env -0 > env.out\n"
    with tempfile.TemporaryDirectory(prefix="awsenv-unset-") as tmp:
        cwd = Path(tmp)
        done = run_shell(shell, script, cwd, env=inherited)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert done.stderr == b"", done.stderr.decode(errors="replace")
        assert done.stdout == b"", done.stdout.decode(errors="replace")
        exported = read_env(cwd / "env.out")
        for name in [*inherited, "AWSENV_SETTHENGONE", "AWSENV_NEVER_SET"]:
            assert name.encode() not in exported
        assert exported.get(b"AWSENV_KEPT") == b"kept"


DEFINE_FUNCTION = {
    "bash": "AWSENV_FN() { :; }\n",
    "zsh": "AWSENV_FN() { :; }\n",
    "fish": "function AWSENV_FN; end\n",
}
FUNCTION_STILL_THERE = {
    "bash": "declare -F AWSENV_FN > /dev/null && echo kept\n",
    "zsh": "(( $+functions[AWSENV_FN] )) && echo kept\n",
    "fish": "functions -q AWSENV_FN; and echo kept\n",
}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_unset_leaves_a_function_of_the_same_name(shell):
    require(shell)
    script = DEFINE_FUNCTION[shell] + shells.get(shell).render([("AWSENV_FN", None)]) + FUNCTION_STILL_THERE[shell]
    with tempfile.TemporaryDirectory(prefix="awsenv-unset-") as tmp:
        done = run_shell(shell, script, Path(tmp))
    assert done.stdout == b"kept\n", done.stderr.decode(errors="replace")


def test_render_refuses_a_name_that_is_not_a_variable():
    for shell in (*POSIX_SHELLS, "pwsh"):
        for name in ("A;touch PWNED", "A B", "1A", "", "A-B", "A\n"):
            with pytest.raises(ValueError):
                shells.get(shell).render([(name, "v")])
            with pytest.raises(ValueError):
                shells.get(shell).render([(name, None)])


# PowerShell ----------------------------------------------------------------------
# PowerShell takes any of these as a single quote, and a pair of them inside a
# verbatim string as one literal character (its tokenizer appends the second).
PS_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"


def ps_parser():
    tree_sitter = require_module("tree_sitter")
    grammar = require_module("tree_sitter_powershell")
    return tree_sitter.Parser(tree_sitter.Language(grammar.language()))


def ps_verbatim(text: str) -> str:
    """Decode one single-quoted PowerShell string as PowerShell's tokenizer would, and
    insist that the literal ends exactly at its last character."""
    assert len(text) >= 2 and text[0] in PS_SINGLE_QUOTES, text
    out, i = [], 1
    while True:
        assert i < len(text), f"unterminated string literal: {text!r}"
        c = text[i]
        if c in PS_SINGLE_QUOTES:
            if i + 1 < len(text) and text[i + 1] in PS_SINGLE_QUOTES:
                out.append(text[i + 1])
                i += 2
                continue
            assert i == len(text) - 1, f"string literal ends early, PowerShell would run the rest: {text!r}"
            return "".join(out)
        out.append(c)
        i += 1


def walk(node):
    yield node
    for child in node.children:
        yield from walk(child)


def ps_problems(tree) -> list[str]:
    return [
        f"{n.type} at {n.start_point}: {n.text!r}"
        for n in walk(tree.root_node)
        if n.type == "ERROR" or n.is_error or n.is_missing
    ]


def single_string_literal(node):
    """The one string literal a value expression consists of, or None."""
    while node.named_child_count == 1 and node.type != "string_literal":
        node = node.named_children[0]
    if node.type != "string_literal":
        return None
    if [c.type for c in node.named_children] != ["verbatim_string_characters"]:
        return None
    return node


# A value that is not ASCII is sent as this expression, so that no code page matters.
PS_BASE64 = re.compile(
    r"\(\[System\.Text\.Encoding\]::UTF8\.GetString\(\[System\.Convert\]::FromBase64String\('([A-Za-z0-9+/=]*)'\)\)\)"
)


def ps_decode(text: str) -> str:
    """The value of what Pwsh.quote wrote: one verbatim string, or exactly the base64
    expression around one, whose text is nothing but base64 characters."""
    match = PS_BASE64.fullmatch(text)
    if match:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8")
    return ps_verbatim(text)


def ps_assignments(source: str) -> list[tuple[str, str | None]]:
    """(name, decoded value) for each `$env:NAME = ...` statement in source, None for
    `$env:NAME = $null`; every statement must be such an assignment."""
    assert source.isascii(), "PowerShell statements must not depend on the code page"
    tree = ps_parser().parse(source.encode())
    assert ps_problems(tree) == [], source
    statements = tree.root_node.named_children
    assert [n.type for n in statements] == ["statement_list"], tree.root_node
    result: list[tuple[str, str | None]] = []
    for pipeline in statements[0].named_children:
        assert pipeline.type == "pipeline", pipeline
        (statement,) = pipeline.named_children
        assert statement.type == "assignment_expression", statement.text
        rhs = statement.child_by_field_name("value")
        target = statement.named_children[0]
        variables = [n for n in walk(target) if n.type == "variable"]
        assert len(variables) == 1 and variables[0].text == target.text, target.text
        name = variables[0].text.decode()
        assert name.startswith("$env:"), name
        if rhs.text == b"$null":
            result.append((name[len("$env:"):], None))
            continue
        literal = single_string_literal(rhs)
        if literal is None:  # the base64 form: one call on one verbatim string
            literals = [n for n in walk(rhs) if n.type == "string_literal"]
            assert len(literals) == 1 and single_string_literal(literals[0]) is not None, rhs.text
        else:
            assert literal.text == rhs.text
        result.append((name[len("$env:"):], ps_decode(rhs.text.decode())))
    return result


def test_pwsh_hostile_values_parse_and_decode():
    pwsh = shells.get("pwsh")
    plan = [(f"AWSENV_T{i}", value) for i, value in enumerate(HOSTILE)] + [("AWSENV_GONE", None)]
    source = pwsh.render(plan)
    assert ps_assignments(source) == plan


@pytest.mark.parametrize("value", HOSTILE + ["'", "‘", "’", "‚", "‛", "'‘’‚‛", "a'''b", "‛'"])
def test_pwsh_quote_alone(value):
    pwsh = shells.get("pwsh")
    assert ps_decode(pwsh.quote(value)) == value
    assert ps_assignments(pwsh.export("AWSENV_T", value) + "\n") == [("AWSENV_T", value)]


def test_pwsh_quote_doubles_only_quote_characters():
    """Each ASCII character but the quote is kept as it is in a verbatim string, the
    quote is doubled, and everything else (the typographic quotes PowerShell also takes
    as quotes among it) is the base64 expression that decodes to exactly that character
    (found by mutation testing: a quote set with extra characters went unnoticed)."""
    quote = shells.get("pwsh").quote
    for c in map(chr, range(32, 127)):
        assert quote(c) == ("'" + c * (2 if c == "'" else 1) + "'"), repr(c)
    for c in map(chr, range(128, 0x2100)):
        assert PS_BASE64.fullmatch(quote(c)) and ps_decode(quote(c)) == c, repr(c)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(VALUES, min_size=1, max_size=30))
def test_pwsh_drawn_values_parse_and_decode(values):
    plan = [(f"AWSENV_T{i}", value) for i, value in enumerate(values)]
    assert ps_assignments(shells.get("pwsh").render(plan)) == plan


def test_pwsh_decoder_rejects_broken_quoting():
    """The checks above can fail: naive quoting is caught."""
    with pytest.raises(AssertionError):
        ps_verbatim("'a‘b'")  # a lone typographic quote ends the string in PowerShell
    with pytest.raises(AssertionError):
        ps_verbatim("'a'b'")
    with pytest.raises(AssertionError):
        ps_assignments("$env:A = 'a'b\n")
    with pytest.raises(AssertionError):
        ps_assignments('$env:A = "$(touch PWNED)"\n')
    with pytest.raises(AssertionError):
        ps_assignments("$env:A = 'a' + 'b'\n")
    with pytest.raises(AssertionError):
        ps_assignments("$env:A = ([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String('YQ==')) + $(x))\n")
    with pytest.raises(AssertionError):
        ps_assignments("$env:A = 'è'\n")  # not ASCII: the code page would decide


# Profile names through the real command ---------------------------------------------
# A profile name goes into `[profile NAME]`, through awsenv's INI parser, out of
# `awsenv export` / `awsenv use`, and through each real shell: it comes back byte for
# byte as AWSENV_PROFILE, and nothing in it runs. The name reaches awsenv as one argv
# element, never through a shell string, so only awsenv's quoting is under test.

# Characters Python's str.splitlines breaks a line at, beyond \n and \r. The AWS CLI
# (configparser, universal newlines) keeps them inside a line, so they can be part of a
# section name; test_profile_name_with_a_unicode_line_break covers them on its own.
SPLITLINES_EXTRA = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
NAME_FRAGMENTS = [
    "'", '"', "$(touch PWNED)", "`touch PWNED2`", "\\", "\\'", "%", "%s", "{}", "${HOME}", "$HOME",
    "'; touch PWNED; '", "‘", "’", "‚", "‛", "“”", "è", "рт", "🚒", "中", " ", "\t", "#", ";", "[", "=",
    "-", "~", "*", "!", "&", "|", "(", ")", "<", ">", "^", "\x1b[31m", "\x7f", "\u00a0x",
]
NAME_CHARS = st.characters(codec="utf-8", exclude_characters="]\x00\n\r" + SPLITLINES_EXTRA)


def ini_name(name: str) -> bool:
    """A name `[profile NAME]` can hold as typed: awsenv takes everything between
    `[profile ` and the final `]`, stripped (Python's str.strip), except where shlex
    splits NAME into one word: the AWS CLI and awsenv take that word, so a name shlex
    would change (`"x"` is x, `a\\b` is ab) is left out, as is a leading `#`/`;`."""
    try:
        words = shlex.split(f"profile {name}")
    except ValueError:
        words = []
    return (
        name != ""
        and name == name.strip()
        and name[0] not in "#;"
        and not any(c in name for c in "]\x00\n\r" + SPLITLINES_EXTRA)
        and (len(words) != 2 or words[1] == name)
    )


PROFILE_NAMES = (
    st.lists(st.one_of(st.sampled_from(NAME_FRAGMENTS), NAME_CHARS), min_size=1, max_size=12)
    .map("".join)
    .map(str.strip)
    .filter(ini_name)
)
HOSTILE_NAMES = [
    WEIRD, "'", '"', "\\", "trailing\\", "%s %n %%", "{}", "-n", "--", "a b", "x\ty",
    "$(touch PWNED)", "`touch PWNED2`", "‘typographic’ ‚quotes‛", "èрт🚒♞中片", "a'''b",
    "\\'; touch PWNED; echo \\'", "$HOME ${HOME} $((1+1)) ~ * ? [a !! !$",
]
assert all(ini_name(n) for n in HOSTILE_NAMES)

# Each shell reads every output file the way a user would (`eval "$(...)"` or
# `... | source`), then writes what it holds and what a child inherits.
NAME_FORMATS = {
    # file stem: (awsenv arguments before `--`, shells that evaluate it)
    "env": (["export", "--format", "env"], ("bash", "zsh")),
    "fish": (["export", "--format", "fish"], ("fish",)),
    "use_bash": (["use", "--shell", "bash"], ("bash",)),
    "use_zsh": (["use", "--shell", "zsh"], ("zsh",)),
    "use_fish": (["use", "--shell", "fish"], ("fish",)),
    "ps": (["export", "--format", "powershell"], ()),
    "use_pwsh": (["use", "--shell", "pwsh"], ()),
}
READ_BACK = {
    "bash": 'unset -v AWSENV_PROFILE\neval "$(<{f})"\nprintf %s "$AWSENV_PROFILE" > {f}.{s}\n'
            "env -0 > {f}.{s}.env\n",
    "zsh": 'unset AWSENV_PROFILE\neval "$(<{f})"\nprintf %s "$AWSENV_PROFILE" > {f}.{s}\n'
           "env -0 > {f}.{s}.env\n",
    "fish": 'set -e AWSENV_PROFILE\nsource {f}\nprintf %s "$AWSENV_PROFILE" > {f}.{s}\n'
            "env -0 > {f}.{s}.env\n",
}
STATIC_KEY = "ASIASTATIC0000000000"


def static_credential_process(world) -> Path:
    """A credential_process that prints a session (with a token, so awsenv uses it as it
    is and calls no STS), expiring in three hours."""
    import datetime

    script = world.root / "static-creds"
    if not script.exists():
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=3)
        document = (
            f'{{"Version": 1, "AccessKeyId": "{STATIC_KEY}", "SecretAccessKey": "c3RhdGlj", '
            f'"SessionToken": "dG9rZW4=", "Expiration": "{expires.strftime("%Y-%m-%dT%H:%M:%SZ")}"}}'
        )
        script.write_text(f"#!/bin/sh\necho '{document}'\n")
        script.chmod(0o700)
    return script


def names_round_trip(world, names: list[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from test_hostile_profile import nothing_ran

    for shell in POSIX_SHELLS:
        require(shell)
    script = static_credential_process(world)
    world.write_config("".join(
        f"[profile {name}]\ncredential_process = {script}\nregion = us-east-1\n\n" for name in names
    ))
    jobs = [(i, stem) for i in range(len(names)) for stem in NAME_FORMATS]

    def awsenv(job):
        i, stem = job
        return world.run(*NAME_FORMATS[stem][0], "--", names[i])

    with ThreadPoolExecutor(max_workers=2) as pool:
        outputs = dict(zip(jobs, pool.map(awsenv, jobs)))
    for (i, stem), done in outputs.items():
        assert done.returncode == 0, (stem, names[i], done.stderr)
    assert world.moto.actions() == [], "a session from credential_process is used as it is"

    work = Path(tempfile.mkdtemp(prefix="names-", dir=world.root))
    for (i, stem), done in outputs.items():
        (work / f"{stem}{i}").write_text(done.stdout)
    for shell in POSIX_SHELLS:
        lines = ["set -euo pipefail\n"] if shell == "bash" else ["set -eu\n"] if shell == "zsh" else []
        for (i, stem) in outputs:
            if shell in NAME_FORMATS[stem][1]:
                lines.append(READ_BACK[shell].format(f=f"{stem}{i}", s=shell))
        done = run_shell(shell, "".join(lines), work, env=world.env)
        assert done.returncode == 0, (shell, done.stderr.decode(errors="replace"), names)
        assert done.stderr == b"", (shell, done.stderr.decode(errors="replace"), names)
        for (i, stem) in outputs:
            if shell not in NAME_FORMATS[stem][1]:
                continue
            got = work / f"{stem}{i}.{shell}"
            assert got.read_bytes() == names[i].encode(), (shell, stem, names[i])
            inherited = read_env(work / f"{stem}{i}.{shell}.env")
            assert inherited.get(b"AWSENV_PROFILE") == names[i].encode(), (shell, stem, "not exported")
            assert inherited.get(b"AWS_ACCESS_KEY_ID") == STATIC_KEY.encode(), (shell, stem)
    nothing_ran(world)
    import shutil

    shutil.rmtree(work)

    # PowerShell last, so that bash, zsh and fish run even where its parser is missing;
    # the tests above that only parse PowerShell skip then (and fail under CI).
    if os.environ.get("CI") or module_available("tree_sitter_powershell"):
        for i, name in enumerate(names):
            for stem in ("ps", "use_pwsh"):
                assigned = dict(ps_assignments(outputs[i, stem].stdout))
                assert assigned["AWSENV_PROFILE"] == name, (stem, name)
                assert assigned["AWS_ACCESS_KEY_ID"] == STATIC_KEY


# The examples share one `world` (a fresh one each would cost seconds of moto and
# keyring start-up per example). The sharing is harmless: each example writes its own
# config, works in its own directory, reads credentials from credential_process (so
# nothing is cached in the keyring and no STS call is made), and what it checks
# afterwards (no canary file, no AWS call) holds for every example, so one example's
# traces can only make a later one fail, never pass.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(PROFILE_NAMES, min_size=1, max_size=4, unique=True))
@example(names=HOSTILE_NAMES)
def test_drawn_profile_names_round_trip_through_awsenv(world, names):
    names_round_trip(world, names)


def test_profile_name_with_a_unicode_line_break(world):
    """The AWS CLI reads ~/.aws/config with universal newlines (only \\n, \\r, \\r\\n end
    a line), so these characters can sit inside a section name or a comment. A config
    that holds one must neither lose the profile nor be refused as a whole."""
    names = [f"a{c}b" for c in SPLITLINES_EXTRA]
    names_round_trip(world, names)
