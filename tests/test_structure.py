"""Structural properties the speed budgets of `make bench` rely on (issue 4).

Not timings: what a command imports. Each run is the installed `awsenv` program, started
as a user starts it, with PYTHONPROFILEIMPORTTIME=1 (the environment form of
`python -X importtime`): every module the process imports is listed on stderr.
"""
from __future__ import annotations

import json
import re
import time

import pytest

HEAVY = ("boto3", "botocore", "keyring")
STARTUP = HEAVY + ("argcomplete", "shellingham")
IMPORT_LINE = re.compile(r"^import time:\s+\d+\s+\|\s+\d+\s+\|\s*([\w.]+)\s*$")


def imported(stderr: str) -> set[str]:
    """Module names from -X importtime output on stderr (submodules included)."""
    names = set()
    for line in stderr.splitlines():
        m = IMPORT_LINE.match(line)
        if m:
            names.add(m.group(1))
    assert names, f"no -X importtime output on stderr:\n{stderr[:2000]}"
    return names


def heavy(names: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n.split(".")[0] in forbidden)


def profiled(world, *args: str, env: dict | None = None):
    return world.run(*args, env={"PYTHONPROFILEIMPORTTIME": "1", **(env or {})})


def wait_for_agent(world, timeout: float = 10.0) -> None:
    """The first switch starts the agent in the background; wait until it answers, as
    it does for a user by the time they type their next command."""
    from awsenv.store import agentclient as agent

    sock = world.keyring.runtime_dir / "awsenv" / "agent.sock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sock.exists() and agent._request({"op": "get"}, sock) is not None:
            return
        time.sleep(0.05)
    pytest.fail("the awsenv agent did not answer after the first switch")


def profiled_when_cached(world, *args: str):
    """`args` run with dev's credentials cached and the agent up, as all day long."""
    world.add_keys()
    world.ok("use", "dev", "--mfa-code", "123456", "--shell", "bash")
    wait_for_agent(world)
    world.moto.calls.clear()
    done = profiled(world, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_cached_use_imports_no_aws_sdk_nor_keyring_and_calls_no_sts(world):
    done = profiled_when_cached(world, "use", "dev", "--shell", "bash")

    assert "AWS_SESSION_TOKEN=" in done.stdout and "AWSENV_PROFILE=" in done.stdout
    names = imported(done.stderr)
    assert heavy(names, HEAVY) == []
    # The fast path decides before argparse, and the hot modules avoid the costly ones
    # (typing too: ~5 ms where site has not imported it already).
    assert heavy(names, ("argparse", "dataclasses", "pathlib", "shutil", "shellingham", "typing")) == []
    assert heavy(names, ("prompt_toolkit",)) == [], "only the picker (use with no profile) draws"
    assert world.moto.actions() == [], "a cached switch must not call STS"


@pytest.mark.parametrize("argv", [
    ["use", "dev"], ["use", "dev", "--shell", "zsh"], ["use", "--shell=fish", "dev"],
    ["export", "dev"], ["export", "dev", "--format", "json"], ["export", "--format=powershell", "dev"],
    ["refresh", "--shell", "bash"],
    ["init"], ["init", "fish", "--cmd", "aws-env", "--no-prompt"], ["init", "--no-refresh", "pwsh"],
])
def test_the_fast_path_reads_a_command_line_as_argparse_does(argv):
    """What the everyday command lines skip argparse for, they must not read otherwise."""
    from awsenv.cli.main import fast_args
    from awsenv.cli.parser import build_parser, parse

    fast = fast_args(list(argv))
    assert fast is not None, f"{argv} no longer takes the fast path"
    assert vars(fast) == vars(parse(build_parser(), list(argv)))


@pytest.mark.parametrize("argv", [
    ["use", "dev", "--region", "eu-west-1"], ["use", "-"], ["export", "dev", "--format", "yaml"],
    ["export", "dev", "--mfa-code", "123456"], ["export", "--role-arn", "arn:aws:iam::1:role/x"],
    ["export", "dev", "prod"], ["refresh"], ["init", "tcsh"],
])
def test_anything_else_goes_to_argparse(argv):
    from awsenv.cli.main import fast_args

    assert fast_args(list(argv)) is None


def test_a_credential_process_call_parses_nothing_heavy(world):
    """`export PROFILE --format json` is what every SDK client runs as it starts."""
    done = profiled_when_cached(world, "export", "dev", "--format", "json")

    assert json.loads(done.stdout)["AccessKeyId"].startswith("ASIA")
    names = imported(done.stderr)
    assert heavy(names, HEAVY) == [] and heavy(names, ("argparse", "typing")) == []
    assert world.moto.actions() == []


def test_version_builds_no_parser(world):
    done = profiled(world, "--version")
    from awsenv import __version__

    assert (done.returncode, done.stdout) == (0, f"awsenv {__version__}\n")
    assert heavy(imported(done.stderr), ("argparse",)) == []


def test_without_the_agent_keyring_discovery_runs_once(world):
    world.add_keys()  # the first runs discover the backend and remember it
    (world.keyring.runtime_dir / "awsenv" / "keyring-backend").unlink()
    env = {"AWSENV_AGENT": "0"}
    discovery = {"importlib.metadata"}  # keyring's discovery scans every distribution's entry points
    first = profiled(world, "use", "ci", "--shell", "bash", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert discovery <= imported(first.stderr)
    hint = world.keyring.runtime_dir / "awsenv" / "keyring-backend"
    assert hint.read_text() == "keyring.backends.SecretService.Keyring"
    done = profiled(world, "use", "ci", "--shell", "bash", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    names = imported(done.stderr)
    assert "keyring.backends.SecretService" in names and not discovery & names
    assert world.moto.actions() == [("GetSessionToken", world.robot.key_id)]


def test_agent_socket_is_private_and_holds_no_file_secret(world):
    import stat

    from helpers import env_after, secrets_on_disk

    world.add_keys()
    env = env_after(world, world.ok("use", "dev", "--mfa-code", "123456", "--shell", "bash").stdout)
    wait_for_agent(world)
    folder = world.keyring.runtime_dir / "awsenv"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "agent.sock").stat().st_mode) == 0o600
    secrets = [world.alice.secret, env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]]
    found = [p for p in folder.rglob("*") if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets)]
    assert found == [] and secrets_on_disk(world, *secrets) == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "pwsh"])
def test_init_imports_no_sdk_keyring_completion_or_detection(world, shell):
    done = profiled(world, "init", shell)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
    assert heavy(imported(done.stderr), STARTUP) == []


def test_completion_imports_no_aws_sdk_nor_keyring(world, tmp_path):
    out = tmp_path / "completions"
    line = "awsenv use lo"
    done = profiled(world, env={
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_SHELL": "bash",
        "_ARGCOMPLETE_SUPPRESS_SPACE": "1",
        "_ARGCOMPLETE_COMP_WORDBREAKS": " \t\n\"'><=;|&(:",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "COMP_TYPE": "9",
        "IFS": "\013",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
    })

    assert done.returncode == 0, done.stderr[-2000:]
    offered = [word.strip() for word in out.read_text().split("\013")]
    assert "long" in offered
    assert heavy(imported(done.stderr), HEAVY) == []


def test_help_imports_none_of_the_heavy_modules(world):
    done = profiled(world, "--help")

    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
    assert heavy(imported(done.stderr), STARTUP) == []


LAYERS = ("core", "host", "store", "aws", "session", "agent", "shells", "cli")


def test_no_module_imports_a_layer_above_its_own_nor_one_of_its_own_in_a_cycle():
    """The folders of the installed package are its layers, lowest first (README, How it
    is built): a module imports from its own layer or lower ones, lazily or not, and
    the modules import no cycle."""
    import ast
    from pathlib import Path

    import awsenv

    root = Path(awsenv.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    assert {name.split(".")[1] for name in modules if name.count(".") >= 1} >= set(LAYERS)

    def imports(name: str) -> set[str]:
        path = modules[name]
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    found.add(full if full in modules else target)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        return {t for t in found if t in modules}

    def layer(name: str) -> int | None:
        parts = name.split(".")
        return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None

    graph = {name: imports(name) for name in modules}
    upward = [f"{m} -> {t}" for m, targets in graph.items() for t in targets
              if layer(m) is not None and layer(t) is not None and layer(t) > layer(m)]
    assert upward == [], upward
    cycles, state = [], {}

    def visit(name: str, stack: list[str]) -> None:
        state[name] = "open"
        for target in graph[name]:
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == [], cycles
