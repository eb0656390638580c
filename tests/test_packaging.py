"""What a user installs: the suite runs the wheel `make dist` builds, installed as pip
installs it; that wheel holds every module and template and no development tool; `pip
install .` ships the same; every command's help works from it. Then the path of the
awsenv program, quoted once, for real, when it holds a space, a quote and a command
substitution."""
from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import AWSENV, require

from awsenv.shells import get

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "awsenv-shell"
# No awsenv on it: the wrapper must call the program by the path init embedded.
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
WHERE = "import awsenv, awsenv.cli.commands, sys; sys.stdout.write(awsenv.__file__)"
# The static completion scripts, and where the wheel installs each under its prefix.
COMPLETIONS = {
    "awsenv.bash": "share/bash-completion/completions/awsenv.bash",
    "_awsenv": "share/zsh/site-functions/_awsenv",
    "awsenv.fish": "share/fish/vendor_completions.d/awsenv.fish",
    "awsenv.ps1": "share/awsenv/completions/awsenv.ps1",
}


def sources() -> set[str]:
    """The files under awsenv/ in the checkout that git tracks or would (not ignored)."""
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard", "awsenv"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {name for name in done.stdout.splitlines() if (ROOT / name).is_file()}


def installed_files() -> dict[str, Path]:
    """The installed distribution's files (its RECORD), by their path in the wheel."""
    dist = importlib.metadata.distribution(DISTRIBUTION)
    files = {}
    for file in dist.files or []:
        name = file.as_posix()
        if name.endswith(".pyc") or ".dist-info/" in name:
            continue
        name = re.sub(r"^(\.\./)+", "", name)  # data files are recorded relative to site-packages
        files[name] = Path(file.locate()).resolve()
    return files


def test_the_tests_and_the_program_import_the_same_installed_awsenv(tmp_path):
    import awsenv

    mine = Path(awsenv.__file__).resolve()
    shebang = Path(AWSENV).read_text().splitlines()[0]
    assert Path(shebang[2:]).resolve() == Path(sys.executable).resolve(), shebang
    theirs = subprocess.run([sys.executable, "-c", WHERE], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={"PATH": BARE_PATH, "HOME": str(tmp_path)})
    assert theirs.returncode == 0, theirs.stderr
    assert Path(theirs.stdout).resolve() == mine, "the tests and the awsenv program import different copies"
    if os.environ.get("CI"):
        assert os.environ.get("AWSENV_TESTS_INSTALLED") == "wheel", "CI runs the suite with `make test`"
    if os.environ.get("AWSENV_TESTS_INSTALLED") == "wheel":
        assert not mine.is_relative_to(ROOT / "awsenv"), f"the tests import the checkout ({mine}), not the wheel"
        assert mine.parent.parent.name == "site-packages", mine
        direct = importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json") or ""
        assert '"editable": true' not in direct, "an editable install, not the wheel"


def test_the_wheel_holds_every_module_and_template_and_no_development_tool():
    import awsenv

    files = installed_files()
    shipped = {name for name in files if name.startswith("awsenv/")}
    assert shipped == sources(), (
        f"missing from the wheel: {sorted(sources() - shipped)}; not in the checkout: {sorted(shipped - sources())}")
    for name in ("awsenv/cli/commands/__init__.py", "awsenv/shells/templates/awsenv.bash",
                 "awsenv/shells/templates/awsenv.zsh", "awsenv/shells/templates/awsenv.fish",
                 "awsenv/shells/templates/awsenv.ps1"):
        assert name in shipped, name
    # The same bytes as the checkout: the suite tests what is there now, not an old build.
    stale = [name for name in shipped if files[name].read_bytes() != (ROOT / name).read_bytes()]
    assert stale == [], f"the installed wheel is older than the checkout (run `make test`): {stale}"
    assert not any("completions.py" in name or name.startswith("tools/") for name in files), sorted(files)
    for script, where in COMPLETIONS.items():
        assert where in files, f"{where} is not in the wheel"
        assert files[where].read_bytes() == (ROOT / "completions" / script).read_bytes(), where
    assert importlib.metadata.version(DISTRIBUTION) == awsenv.__version__


def test_pip_install_dot_ships_what_the_wheel_ships(tmp_path):
    """What the README's `pip install .` (and `pipx install .`) builds from the checkout,
    without the sdist step `make dist` takes."""
    # A copy of what git has, as a fresh clone has it: pip builds in the source tree, and
    # would leave build/ and an egg-info in the checkout (and reuse a stale build/lib).
    clone = tmp_path / "clone"
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    for name in listed.stdout.splitlines():
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).write_bytes((ROOT / name).read_bytes())
    target = tmp_path / "target"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet", "--target", str(target),
         str(clone)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    built = {str(path.relative_to(target)) for path in (target / "awsenv").rglob("*")
             if path.is_file() and "__pycache__" not in path.parts}
    assert built == sources()


def subcommands() -> list[list[str]]:
    import argparse

    from awsenv.cli.parser import build_parser

    def walk(parser: argparse.ArgumentParser, prefix: list[str]):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield [*prefix, name]
                    yield from walk(sub, [*prefix, name])

    return list(walk(build_parser(), []))


def test_every_command_has_help_in_the_installed_program(tmp_path):
    commands = subcommands()
    assert {"use", "add", "list", "sso", "agent", "login"} <= {c[0] for c in commands}, commands
    env = {"PATH": BARE_PATH, "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    for command in commands:
        done = subprocess.run([AWSENV, *command, "--help"], capture_output=True, text=True, timeout=60, env=env,
                              cwd=tmp_path)
        assert done.returncode == 0 and done.stdout.startswith("usage: awsenv"), (command, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, (command, done.stderr)


def test_version_is_the_distributions():
    done = subprocess.run([AWSENV, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"awsenv {importlib.metadata.version(DISTRIBUTION)}\n"


# The program's path, quoted once ------------------------------------------------------
ODD_DIR = "a b'c$(touch PWNED)`touch PWNED2`\"d"
RUN_WRAPPER = {
    "bash": (
        ["bash", "--noprofile", "--norc", "-c"],
        'set -euo pipefail\neval "$(<init.out)"\n'
        "awsenv --version > version.out\n"
        "awsenv unset\n"
        'printf %s "${AWSENV_PROFILE-gone}|${AWS_ACCESS_KEY_ID-gone}" > after.out\n',
    ),
    "zsh": (
        ["zsh", "-f", "-c"],
        'set -eu\neval "$(<init.out)"\n'
        "awsenv --version > version.out\n"
        "awsenv unset\n"
        'printf %s "${AWSENV_PROFILE-gone}|${AWS_ACCESS_KEY_ID-gone}" > after.out\n',
    ),
    "fish": (
        ["fish", "--no-config", "-c"],
        "source init.out\n"
        "awsenv --version > version.out; or exit 5\n"
        "awsenv unset; or exit 6\n"
        "set -q AWSENV_PROFILE; and set p $AWSENV_PROFILE; or set p gone\n"
        "set -q AWS_ACCESS_KEY_ID; and set k $AWS_ACCESS_KEY_ID; or set k gone\n"
        'printf %s "$p|$k" > after.out\n',
    ),
}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_exe_path_with_quotes_and_a_command_substitution_runs(tmp_path, shell):
    require(shell)
    odd = tmp_path / ODD_DIR
    odd.mkdir()
    program = odd / "awsenv"
    program.symlink_to(AWSENV)  # its shebang is absolute, so it runs from anywhere
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": BARE_PATH, "HOME": str(home), "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    # sys.argv[0] is the odd path, and init embeds it
    init = subprocess.run([str(program), "init", shell], cwd=work, env=env, capture_output=True, timeout=60)
    assert init.returncode == 0, init.stderr.decode(errors="replace")
    quoted = get(shell).quote(str(program))
    assert quoted.encode() in init.stdout, "init did not embed the path it was run by"
    (work / "init.out").write_bytes(init.stdout)

    version = subprocess.run([AWSENV, "--version"], capture_output=True, text=True, timeout=60).stdout
    assert version.startswith("awsenv ")
    argv, script = RUN_WRAPPER[shell]
    done = subprocess.run(
        [*argv, script], cwd=work, capture_output=True, timeout=60, start_new_session=True,
        env={**env, "AWSENV_PROFILE": "dev", "AWS_ACCESS_KEY_ID": "ASIAOLD", "AWSENV_EXPIRES": "1"},
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr
    assert stderr == ""
    assert (work / "version.out").read_text() == version, "the wrapper did not run the program"
    assert (work / "after.out").read_text() == "gone|gone", "`awsenv unset` was not evaluated"
    canaries = [p for name in ("PWNED", "PWNED2") for p in tmp_path.rglob(name)]
    assert canaries == [], f"the program's path was executed: {canaries}"


def test_exe_path_with_quotes_in_pwsh_init(tmp_path):
    """PowerShell cannot run here: the init parses, and every call of the program is
    `& 'PATH'` with the path decoded back exactly."""
    from test_quoting import PS_BASE64, ps_decode, ps_parser, ps_problems, walk

    odd = tmp_path / (ODD_DIR + "\u2019")
    odd.mkdir()
    program = odd / "awsenv"
    program.symlink_to(AWSENV)
    init = subprocess.run([str(program), "init", "pwsh"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={"PATH": BARE_PATH, "HOME": str(tmp_path), "LANG": "C.UTF-8"})
    assert init.returncode == 0, init.stderr
    tree = ps_parser().parse(init.stdout.encode())
    assert ps_problems(tree) == []
    # The path is not ASCII, so it is written as the base64 expression.
    paths = [
        ps_decode(node.text.decode()) for node in walk(tree.root_node)
        if PS_BASE64.fullmatch(node.text.decode())
    ]
    assert paths and set(paths) == {str(program)}, paths
    assert init.stdout.isascii()
    assert not list(tmp_path.rglob("PWNED"))


# `make demo` on a fresh machine -----------------------------------------------------------
def test_make_demo_in_a_fresh_virtualenv_says_what_it_installs_and_nothing_else(tmp_path):
    """The Makefile's own install into a new virtualenv: one line saying what it does, no
    pip or setuptools warning, and the wheel installed as a user gets it (no editable
    hook pointing at the checkout). PIP_NO_DEPS=1 keeps the dependencies out; the demo's
    need for the demo extra alone is test_demo's."""
    require("make")
    venv = tmp_path / "venv"
    # Run by `make test`, this make would be a sub-make that says "Entering directory".
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    env = {**{k: v for k, v in os.environ.items() if k not in outer}, "PIP_NO_DEPS": "1", "TMPDIR": str(tmp_path)}
    done = subprocess.run(["make", f"VENV={venv}", f"{venv}/.demo"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("make demo: installing awsenv") and done.stdout.count("\n") == 1, done.stdout
    noise = [line for line in done.stderr.splitlines() if re.search(r"setuptools|editable|backend|deprecat", line, re.I)]
    assert noise == [], done.stderr
    (site,) = venv.glob("lib/python*/site-packages")
    assert (site / "awsenv" / "cli" / "commands" / "__init__.py").is_file()
    assert not list(site.glob("__editable__*")), "an editable install, not the wheel"
    assert (venv / "bin" / "awsenv").is_file()
