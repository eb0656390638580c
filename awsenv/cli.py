"""The entry point: parse, then dispatch to awsenv.commands, and turn every failure into
one line and an exit code.

The commands a shell runs all day (`use PROFILE --shell S` from the wrapper function)
are recognised before argparse is even imported: argparse and building the parser cost
about 20 ms, a third of a cached switch. Anything unusual goes through argparse.
"""
from __future__ import annotations

import os
import sys

from .errors import AwsenvError
from .shells import NAMES as SHELL_NAMES


class Args:
    """What argparse would give for the fast path's commands."""

    def __init__(self, **values) -> None:
        self.__dict__.update(values)


def fast_args(argv: list[str]) -> Args | None:
    """`use PROFILE [--shell S]`, `refresh --shell S` or
    `init SHELL [--cmd NAME] [--no-prompt] [--no-refresh]` exactly, or None to let
    argparse decide."""
    if len(argv) < 2 or "_ARGCOMPLETE" in os.environ:
        return None
    if argv[0] == "init":
        return _fast_init(argv[1:])
    if argv[0] == "refresh":
        # The prompt hook's call when credentials are due: with the agent renewing
        # ahead, building the parser would be most of its time.
        if len(argv) == 3 and argv[1] == "--shell" and argv[2] in SHELL_NAMES:
            return Args(command="refresh", shell=argv[2])
        return None
    if argv[0] != "use":
        return None
    profile = None
    shell = None
    rest = argv[1:]
    while rest:
        token = rest.pop(0)
        if token == "--shell" and rest and rest[0] in SHELL_NAMES and shell is None:
            shell = rest.pop(0)
        elif token.startswith("--shell=") and token[8:] in SHELL_NAMES and shell is None:
            shell = token[8:]
        elif not token.startswith("-") and profile is None:
            profile = token
        else:
            return None
    if profile is None:
        return None
    return Args(command="use", profile=profile, shell=shell, mfa_code=None, duration=None,
                refresh=False, region=None, role_arn=None, server=None)


def _fast_init(rest: list[str]) -> Args | None:
    args = Args(command="init", shell=None, cmd="awsenv", no_prompt=False, no_refresh=False)
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
    return args if args.shell else None


def init(args: Args) -> int:
    """`awsenv init` runs in every new shell: it needs the shell modules and nothing else."""
    from .shells import get

    sys.stdout.write(get(args.shell).init(args.cmd, prompt=not args.no_prompt, refresh=not args.no_refresh))
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    try:
        args = fast_args(argv)
        if args is None:
            from .parser import build_parser

            parser = build_parser()
            if "_ARGCOMPLETE" in os.environ:
                import argcomplete

                argcomplete.autocomplete(parser)
            args = parser.parse_args(argv)
        if args.command == "init":
            return init(args)
        from . import commands

        return commands.run(args) or 0
    except AwsenvError as err:
        print(f"awsenv: {err}", file=sys.stderr)
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
