"""The entry point: parse, then dispatch to awsenv.cli.commands, and turn every failure into
one line and an exit code.

The commands run all day are recognised before argparse is even imported: `use PROFILE
--shell S` from the wrapper function, and `export PROFILE --format json` from a
credential_process line, which every SDK client runs as it starts. argparse and building
the parser cost about 20 ms, a third of a cached switch. Anything unusual goes through
argparse.
"""
from __future__ import annotations

import os
import sys

from ..core.errors import AwsenvError
from ..shells import NAMES as SHELL_NAMES

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the cached switch ~5 ms at run time
    from typing import Any


class Args:
    """What argparse would give for the fast path's commands."""

    def __init__(self, **values) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # typed as argparse.Namespace is
        raise AttributeError(name)


def fast_args(argv: list[str]) -> Args | None:
    """`use PROFILE [--shell S]`, `export PROFILE [--format F]`, `refresh --shell S` or
    `init [SHELL] [--cmd NAME] [--no-prompt] [--no-refresh]` exactly, or None to let
    argparse decide. What each gives is what argparse would (tests/test_structure.py)."""
    if not argv or "_ARGCOMPLETE" in os.environ:
        return None
    if argv[0] == "init":
        return _fast_init(argv[1:])
    if argv[0] == "export":
        return _fast_export(argv[1:])
    if argv[0] == "refresh":
        # The prompt hook's call when credentials are due: with the agent renewing
        # ahead, building the parser would be most of its time.
        if len(argv) == 3 and argv[1] == "--shell" and argv[2] in SHELL_NAMES:
            return Args(command="refresh", shell=argv[2])
        return None
    if argv[0] != "use":
        return None
    found = _profile_and(argv[1:], "--shell", SHELL_NAMES)
    if found is None:
        return None
    return Args(command="use", profile=found[0], shell=found[1], mfa_code=None, duration=None,
                refresh=False, region=None, role_arn=None, source=None, session_name=None, server=None)


# `export --format`'s choices (parser.py): a value outside them is argparse's to refuse.
EXPORT_FORMATS = ("env", "fish", "powershell", "json")


def _fast_export(rest: list[str]) -> Args | None:
    found = _profile_and(rest, "--format", EXPORT_FORMATS)
    if found is None:
        return None
    return Args(command="export", profile=found[0], format=found[1] or "env", mfa_code=None, role_arn=None,
                source=None, session_name=None, duration=None, refresh=False, region=None)


def _profile_and(rest: list[str], flag: str, choices: tuple[str, ...]) -> tuple[str, str | None] | None:
    """A PROFILE and at most one `FLAG VALUE` (or `FLAG=VALUE`) with VALUE among
    `choices`, in either order, and nothing else; None otherwise."""
    profile = value = None
    rest = list(rest)
    while rest:
        token = rest.pop(0)
        if token == flag and rest and rest[0] in choices and value is None:
            value = rest.pop(0)
        elif token.startswith(flag + "=") and token[len(flag) + 1:] in choices and value is None:
            value = token[len(flag) + 1:]
        elif not token.startswith("-") and profile is None:
            profile = token
        else:
            return None
    return None if profile is None else (profile, value)


def _fast_init(rest: list[str]) -> Args | None:
    args: Any = Args(command="init", shell=None, cmd="awsenv", no_prompt=False, no_refresh=False)
    while rest:
        token = rest.pop(0)
        if token in ("--no-prompt", "--no-refresh"):
            setattr(args, token[2:].replace("-", "_"), True)
        elif token == "--cmd" and rest:
            args.cmd = rest.pop(0)
        elif token in SHELL_NAMES and args.shell is None:
            args.shell = token
        else:
            return None
    return args


def init(args: Args) -> int:
    """`awsenv init` runs in every new shell: it needs the shell modules and nothing else
    (shellingham too when no shell is named)."""
    from ..shells import detect, get

    shell = get(args.shell) if args.shell else detect(remedy=f"name it: awsenv init {'|'.join(SHELL_NAMES)}")
    sys.stdout.write(shell.init(args.cmd, prompt=not args.no_prompt, refresh=not args.no_refresh))
    return 0


def wrapper_argv() -> list[str]:
    """The arguments of the PowerShell wrapper, which passes them as a JSON list in
    AWSENV_ARGV: Windows PowerShell mangles quotes on a native command line. It reads
    our output as UTF-8, so that is what it gets. The variable is taken out of the
    environment, so no child of `exec` inherits it."""
    import io
    import json

    from ..core.errors import UsageError

    try:
        value = json.loads(os.environ.pop("AWSENV_ARGV", ""))
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError("--argv-env needs AWSENV_ARGV to hold a JSON list of strings")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8")
    return value


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    try:
        if argv == ["--argv-env"]:
            argv = wrapper_argv()
        if argv == ["--version"]:  # what a script checks: no parser for one line
            from .. import __version__

            sys.stdout.write(f"awsenv {__version__}\n")
            return 0
        args: Any = fast_args(argv)
        if args is None:
            from .parser import build_parser, check_command, parse, show_help

            parser = build_parser()
            if "_ARGCOMPLETE" in os.environ:
                import argcomplete

                # PowerShell's completer reads the file as UTF-8; argcomplete would
                # write it in the locale's encoding (the ANSI code page on Windows).
                target = os.environ.get("_ARGCOMPLETE_STDOUT_FILENAME")
                stream = open(target, "w", encoding="utf-8") if target else None
                # `awsenv use <Tab>` offers profiles; flags only once a `-` is typed.
                argcomplete.autocomplete(parser, output_stream=stream, always_complete_options=False)
            if not argv:  # `awsenv` alone: the help, as aws-vault prints it, exit 0
                return show_help(parser, None)
            check_command(parser, argv)
            command = None
            if argv[0] == "exec" and "--" in argv:
                # Flags between PROFILE and `--` are ours (`exec dev --server -- cmd`);
                # argparse's REMAINDER would hand them to the command.
                cut = argv.index("--")
                argv, command = argv[:cut], argv[cut:]
            args = parse(parser, argv)
            if command is not None:
                args.cmd = command
            if args.command == "help":
                return show_help(parser, args.topic)
        if args.command == "init":
            return init(args)
        from . import commands

        return commands.run(args) or 0
    except AwsenvError as err:
        print(f"awsenv: {err}", file=sys.stderr)
        if err.hint:
            print(err.hint, file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("awsenv: cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as err:  # noqa: BLE001 - a bug is still one line, not a traceback
        if os.environ.get("AWSENV_DEBUG"):
            raise
        print(f"awsenv: internal error ({type(err).__name__}); AWSENV_DEBUG=1 shows where", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
