"""The wheel as a user gets it (issue 3, Layout): the shell scripts ship inside it and
`awsenv init` works from the installed copy alone; and the path of the awsenv program
is quoted once, for real, when it holds a space, a quote and a command substitution."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from awsenv.shells import get
from conftest import AWSENV, require

ROOT = Path(__file__).resolve().parent.parent
SHELLS = ("bash", "zsh", "fish", "pwsh")
TEMPLATES = {"bash": "awsenv.bash", "zsh": "awsenv.zsh", "fish": "awsenv.fish", "pwsh": "awsenv.ps1"}
# No awsenv on it: the wrapper must call the program by the path init embedded.
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
INIT_FROM_SITE = (
    "import sys; sys.argv = ['awsenv', 'init', {shell!r}]\n"
    "import awsenv, awsenv.shells.base\n"
    "sys.stderr.write(awsenv.__file__ + '\\n' + awsenv.shells.base.__file__ + '\\n')\n"
    "from awsenv.cli import main\n"
    "sys.exit(main())\n"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from the repository, installed into a directory of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp / "dist").glob("awsenv-*.whl")
    site = tmp / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return site


def test_installed_wheel_holds_the_shell_scripts(installed):
    for shell, name in TEMPLATES.items():
        shipped = installed / "awsenv" / "shell" / name
        assert shipped.is_file(), f"{name} is missing from the installed wheel"
        assert shipped.read_bytes() == (ROOT / "shell" / name).read_bytes(), name


@pytest.mark.parametrize("shell", SHELLS)
def test_init_from_the_installed_wheel(installed, tmp_path, shell):
    """`awsenv init` run from the installed copy alone (not the repository's) prints what
    the repository's prints, apart from the program's path."""
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir()
    stub = stub_dir / "awsenv"  # what shutil.which finds: argv[0] is a bare "awsenv"
    stub.write_text("#!/bin/sh\nexit 99\n")
    stub.chmod(0o755)
    env = {
        "PATH": f"{stub_dir}:{BARE_PATH}", "HOME": str(tmp_path), "LANG": "C.UTF-8",
        "PYTHONPATH": str(installed), "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-s", "-c", INIT_FROM_SITE.format(shell=shell)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    where = done.stderr.splitlines()
    assert len(where) == 2, done.stderr
    for module in where:
        assert Path(module).is_relative_to(installed), f"imported {module}, not the installed wheel"
    from_wheel = done.stdout

    repo = subprocess.run([AWSENV, "init", shell], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**env, "PYTHONPATH": ""})
    assert repo.returncode == 0, repo.stderr
    quote = get(shell).quote
    assert quote(str(stub)) in from_wheel, "init did not embed the program it found on PATH"
    assert quote(AWSENV) in repo.stdout
    assert "__AWSENV_" not in from_wheel
    assert from_wheel.replace(quote(str(stub)), "@EXE@") == repo.stdout.replace(quote(AWSENV), "@EXE@")


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
    """The Makefile's own install into a new virtualenv (with build isolation, so the newest
    pip and setuptools run): one line saying what it does, no pip or setuptools warning (pip
    shows a local project's build-backend warnings), and a plain .pth entry for the checkout,
    so starting Python imports nothing more. PIP_NO_DEPS=1 keeps the dependencies out; the
    demo's need for the demo extra alone is test_demo's."""
    require("make")
    venv = tmp_path / "venv"
    # Run by `make test`, this make would be a sub-make that says "Entering directory".
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    env = {**{k: v for k, v in os.environ.items() if k not in outer}, "PIP_NO_DEPS": "1"}
    done = subprocess.run(["make", f"VENV={venv}", f"{venv}/.demo"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("make demo: installing awsenv") and done.stdout.count("\n") == 1, done.stdout
    noise = [line for line in done.stderr.splitlines() if re.search(r"setuptools|editable|backend|deprecat", line, re.I)]
    assert noise == [], done.stderr
    (pth,) = venv.glob("lib/python*/site-packages/__editable__*awsenv*.pth")
    assert pth.read_text().split() == [str(ROOT)], "not a plain path entry: a finder would load in every process"
    assert not list(venv.glob("lib/python*/site-packages/__editable__*finder*"))
