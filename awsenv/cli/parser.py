"""The argparse definition of the CLI, and its argcomplete completers.

Only the standard library is imported here; boto3 and keyring are imported by the
command that needs them, so `--help`, `init` and completion stay fast.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..core.errors import AwsenvError, UsageError
from ..shells import NAMES as SHELL_NAMES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Formatter(argparse.HelpFormatter):
    """argparse finds the terminal width through `shutil`, whose imports cost the
    cached switch milliseconds; os.get_terminal_size is all it needs."""

    def __init__(self, prog: str, **kwargs) -> None:
        try:
            width = os.get_terminal_size(sys.stderr.fileno()).columns
        except (OSError, ValueError):
            width = 80
        super().__init__(prog, width=max(width - 2, 40), **kwargs)


class Parser(argparse.ArgumentParser):
    commands: dict[str, Parser]  # the top-level parser's sub-commands, set by build_parser

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line, not usage + error
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def _check_value(self, action: argparse.Action, value) -> None:
        # A mistyped choice (`sso lgoin`, `--format jsno`) names the closest one, as a
        # mistyped command does.
        choices = action.choices
        if choices is None or value in choices:
            return super()._check_value(action, value)
        names = [str(choice) for choice in choices]
        close = closest(str(value), names)
        hint = f"; did you mean {close}?" if close else ""
        raise argparse.ArgumentError(action, f"invalid choice {value!r} (choose from {', '.join(names)}){hint}")


def _completes(action: argparse.Action, completer: Callable[..., list[str]]) -> None:
    # argcomplete reads an action's `completer` attribute, which argparse's types don't declare
    setattr(action, "completer", completer)


def _mfa_code(value: str) -> str:
    from ..session.mfa import CODE

    if not CODE.fullmatch(value):
        raise argparse.ArgumentTypeError("an MFA code is 6 digits")
    return value


def _duration(value: str) -> int:
    from ..core.settings import MAX_DURATION, MIN_DURATION, parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {value!r} (e.g. 3600, 90m, 1h, 1h30m)") from None
    if not MIN_DURATION <= seconds <= MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{seconds} is out of range: {MIN_DURATION} to {MAX_DURATION} seconds")
    return seconds


def _command_words(prefix: str = "", parsed_args=None, **_kwargs) -> list[str]:
    """Completer for what `exec` runs: nothing while the profile is being typed, so that
    the profiles are offered alone (not mixed with file names, as zsh showed them), then
    file names, such as a script to run."""
    if getattr(parsed_args, "profile", None) is None:
        return []
    from argcomplete.completers import FilesCompleter

    return list(FilesCompleter()(prefix))


def _profiles(prefix: str = "", **_kwargs) -> list[str]:
    """Completer for profile names, sorted: reads the AWS config files only, never the
    keyring. A file that does not parse still gives the names it has, and its error is
    shown on the terminal, so the shell doesn't fall back to file names in silence."""
    from ..core.config import AwsConfig, readable_names

    try:
        names = AwsConfig().names()
    except AwsenvError as err:
        _warn(err)
        names = readable_names()
    return sorted(name for name in names if name.startswith(prefix))


def _sessions(prefix: str = "", **_kwargs) -> list[str]:
    """Completer for sso-session names, then the profile names."""
    from ..core.config import AwsConfig

    try:
        config = AwsConfig()
        names = [*sorted(config.sso_sessions), *sorted(config.names())]
    except AwsenvError as err:
        _warn(err)
        return _profiles(prefix)
    return [name for name in names if name.startswith(prefix)]


def _warn(err: AwsenvError) -> None:
    """The error on the terminal (argcomplete's fd 9: the shell sends the completer's
    stderr to /dev/null), once for each state of the files: bash runs the completer
    again for the second Tab, and every Tab until the file is fixed."""
    from ..core.config import config_path, credentials_path
    from ..host.runtime import runtime_dir

    message = f"awsenv: {err}"
    stamps = []
    for path in (config_path(), credentials_path()):
        try:
            stamps.append(str(os.stat(path).st_mtime_ns))
        except OSError:
            stamps.append("-")
    seen = f"{message}\n{' '.join(stamps)}\n"
    directory = runtime_dir()
    marker = os.path.join(directory, "completion-warned") if directory else None
    if marker is not None:
        try:
            with open(marker, encoding="utf-8") as stream:
                if stream.read() == seen:
                    return
        except OSError:
            pass
        try:
            with open(marker, "w", encoding="utf-8") as stream:
                stream.write(seen)
        except OSError:
            pass
    import argcomplete

    argcomplete.warn(message)


def build_parser() -> Parser:
    parser = Parser(prog="awsenv", description="Short-lived AWS credentials in the current shell.")
    parser.add_argument("--version", action="version", version=f"awsenv {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def command(name: str, help: str) -> Parser:
        return sub.add_parser(name, help=help, description=help)

    def profile(p: Parser, nargs=None) -> None:
        _completes(p.add_argument("profile", metavar="PROFILE", nargs=nargs), _profiles)

    p = command("add", "store the long-term access key of a base profile in the key store")
    profile(p)
    p.add_argument("--env", action="store_true", help="take AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the environment")

    p = command("import", "move keys from the shared credentials file into the key store")
    profile(p, nargs="*")
    p.add_argument("--delete-plaintext", action="store_true", help="then remove them from the credentials file")

    p = command("remove", "forget the stored key and cached sessions of a profile")
    profile(p)
    p.add_argument("--sessions-only", action="store_true", help="keep the key, drop the sessions")

    p = command("list", "list profiles, keys and cached sessions")
    p.add_argument("--json", action="store_true")

    for name, help in (
        ("use", "print statements that put a profile's temporary credentials into the shell"),
        ("export", "print a profile's temporary credentials"),
        ("exec", "run one command with a profile's temporary credentials"),
    ):
        p = command(name, help)
        profile(p, nargs="?")
        p.add_argument("--mfa-code", type=_mfa_code, metavar="CODE", help="the 6-digit MFA code")
        p.add_argument("--role-arn", metavar="ARN", help="assume this role instead of a named profile")
        _completes(p.add_argument("--from", dest="source", metavar="PROFILE", help="with --role-arn: the profile to assume it from (default: default)"), _profiles)
        p.add_argument("--session-name", metavar="NAME", help="with --role-arn: the role session name")
        p.add_argument("--duration", type=_duration, metavar="DURATION", help="lifetime of the credentials: 3600, 90m, 1h, 1h30m")
        p.add_argument("--refresh", action="store_true", help="renew the profile's own credentials from the cached session under them")
        if name in ("use", "exec"):
            p.add_argument("--server", dest="server", action="store_const", const=True, default=None,
                           help="a credential endpoint on 127.0.0.1 instead of static keys (default with AWSENV_SERVER=1)")
            p.add_argument("--no-server", dest="server", action="store_const", const=False, help="static keys")
        if name == "use":
            p.add_argument("--shell", choices=SHELL_NAMES + ("powershell",), help="default: the calling shell")
            p.add_argument("--region", help="set AWS_REGION and AWS_DEFAULT_REGION")
        if name == "export":
            p.add_argument("--format", choices=("env", "fish", "powershell", "json"), default="env")
            p.add_argument("--region", help="include AWS_REGION and AWS_DEFAULT_REGION")
        if name == "exec":
            p.add_argument("--region", help="set AWS_REGION and AWS_DEFAULT_REGION")
            _completes(p.add_argument("cmd", nargs="*", metavar="-- CMD [ARG...]"), _command_words)

    p = command("unset", "print statements that remove everything `use` set")
    p.add_argument("--shell", choices=SHELL_NAMES + ("powershell",))

    p = command("refresh", "what the prompt hook runs: renew the active credentials before they expire")
    p.add_argument("--shell", choices=SHELL_NAMES + ("powershell",))

    p = command("status", "the awsenv credentials active in this environment")
    p.add_argument("--json", action="store_true")

    command("whoami", "GetCallerIdentity with the active credentials")

    p = command("clear", "drop cached sessions")
    profile(p, nargs="?")

    p = command("rotate", "replace a base profile's access key: create, verify, store, delete the old one")
    profile(p)
    p.add_argument("--mfa-code", type=_mfa_code, metavar="CODE")

    p = command("doctor", "audit keys, MFA and the key store; exit 1 when anything is found")
    p.add_argument("--json", action="store_true")
    p.add_argument("--mfa-code", type=_mfa_code, metavar="CODE", help="for the IAM checks when no MFA session is cached")

    p = command("login", "open the AWS console signed in as a profile")
    profile(p, nargs="?")
    p.add_argument("--print", action="store_true", help="print the sign-in URL instead of opening a browser")
    p.add_argument("--duration", type=_duration, metavar="DURATION", help="3600, 90m, 1h, 1h30m")
    p.add_argument("--mfa-code", type=_mfa_code, metavar="CODE")
    p.add_argument("--region", help="the console's region")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--service", "-s", metavar="NAME", help="open this service's console page: s3, ec2, iam, lambda, ...")
    where.add_argument("--destination", "-d", metavar="URL", help="open this page of the console (https, the profile's partition)")
    p.add_argument("--role-arn", metavar="ARN")
    _completes(p.add_argument("--from", dest="source", metavar="PROFILE"), _profiles)
    p.add_argument("--session-name", metavar="NAME")

    p = command("mfa", "keep a TOTP secret in the key store, so codes need no prompt")
    p.add_argument("action", metavar="ACTION", choices=("set", "remove"))
    profile(p)

    p = command("signin", "sign in to AWS in the browser, as `aws login` does; the sign-in goes to the key store")
    _completes(p.add_argument("profile", metavar="PROFILE", help="the login_session profile (written when missing)"),
               _profiles)
    p.add_argument("--remote", action="store_true", help="no browser here: open the URL anywhere, paste the code back")
    p.add_argument("--no-browser", action="store_true", help="only show the URL (the redirect still comes back here)")
    p.add_argument("--region", metavar="REGION", help="the region to sign in to (default: the profile's)")

    p = command("help", "show the help, of awsenv or of one command")
    p.add_argument("topic", nargs="?", metavar="COMMAND")

    p = command("sso", "IAM Identity Center: sign in, sign out, list the roles a sign-in reaches")
    sso = p.add_subparsers(dest="sso_command", metavar="ACTION", parser_class=Parser)
    sso.required = True
    p.commands = sso.choices
    session_help = "an sso-session, or a profile in the legacy form (default: the only one configured)"
    q = sso.add_parser("login", help="sign in through the browser (authorization code with PKCE); tokens go to the key store")
    _completes(q.add_argument("name", metavar="SESSION|PROFILE", nargs="?", help=session_help), _sessions)
    q.add_argument("--no-browser", action="store_true", help="only show the URL (and the device flow's code)")
    q.add_argument("--use-device-code", action="store_true",
                   help="the OIDC device flow, for a machine without a browser (SSH, WSL)")
    q = sso.add_parser("logout", help="end the portal session and drop every credential cached from it")
    _completes(q.add_argument("name", metavar="SESSION|PROFILE", nargs="?", help="default: every sign-in"), _sessions)
    q = sso.add_parser("profiles", help="list the accounts and roles a sign-in reaches")
    _completes(q.add_argument("name", metavar="SESSION|PROFILE", help=session_help), _sessions)
    q.add_argument("--write", action="store_true", help="append the missing profiles to the config file")

    p = command("agent", "the session agent: what it holds (never a secret), or stop it")
    p.add_argument("action", metavar="ACTION", choices=("status", "stop"))
    p.add_argument("--json", action="store_true")

    p = command("init", "print the shell integration")
    p.add_argument("shell", nargs="?", choices=SHELL_NAMES + ("powershell",), help="default: the calling shell")
    p.add_argument("--cmd", default="awsenv", help="name of the wrapper function")
    p.add_argument("--no-prompt", action="store_true", help="do not add the segment to the prompt")
    p.add_argument("--no-refresh", action="store_true", help="do not install the refresh hook")
    parser.commands = sub.choices
    return parser


def check_command(parser: Parser, argv: list[str]) -> None:
    """A mistyped command gets the close match, as an unknown profile does, instead of
    argparse's list of every choice."""
    if argv and not argv[0].startswith("-") and argv[0] not in parser.commands:
        raise unknown_command(argv[0], parser.commands)
    if argv and argv[0].startswith("-") and argv[0].partition("=")[0] not in ("-h", "--help", "--version"):
        # `awsenv -v`: no command to point at, so the help itself, on stderr.
        sys.stderr.write(f"awsenv: {argv[0]} is not an option{_close_flag(argv[0], parser)} (the help follows)\n")
        parser.print_help(sys.stderr)
        parser.exit(2)


def parse(parser: Parser, argv: list[str]) -> argparse.Namespace:
    """parse_args, with a mistyped flag named and its close match suggested
    (`--durration` → `--duration`), as a mistyped command is."""
    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    command = parser.commands[args.command]
    if getattr(args, "sso_command", None):
        command = command.commands[args.sso_command]
    flags = [word for word in extra if word.startswith("-") and word != "-"]
    if not flags:
        command.error(f"unexpected argument{'s' if len(extra) > 1 else ''}: {' '.join(extra)}")
    flag = flags[0].partition("=")[0]
    if args.command == "exec" and args.cmd:  # `exec dev aws s3 ls --recursive`: the command's own flag
        command.error(f"unknown option {flag}; a command with options goes after `--`: "
                      f"awsenv exec {args.profile or 'PROFILE'} -- {' '.join(args.cmd)} ...")
    command.error(f"unknown option {flag}{_close_flag(flag, command)}")
    raise AssertionError  # error() exits


def _close_flag(flag: str, *parsers: argparse.ArgumentParser) -> str:
    import difflib

    options = sorted({o for p in parsers for a in p._actions for o in a.option_strings})
    if len(flag) == 2:  # `-v`: the long option it abbreviates, if one does
        close = [o for o in options if o.startswith("--" + flag[1:]) and o != "--help"][:1]
    else:
        close = difflib.get_close_matches(flag, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def show_help(parser: Parser, topic: str | None) -> int:
    """`awsenv`, `awsenv help` and `awsenv help COMMAND` print the help on stdout."""
    if topic is None:
        parser.print_help()
    elif topic in parser.commands:
        parser.commands[topic].print_help()
    else:
        raise unknown_command(topic, parser.commands)
    return 0


def closest(word: str, names) -> str | None:
    """The name `word` is likely a typo of: close in spelling and in length. `ues` is
    `use`, but `bogus` is not `use` nor `frobnicate` `rotate`, though half their letters match."""
    import difflib

    close = [name for name in difflib.get_close_matches(word, list(names), n=3, cutoff=0.6)
             if abs(len(name) - len(word)) <= 2]
    return close[0] if close else None


def unknown_command(word: str, names) -> UsageError:
    close = closest(word, names)
    hint = f"did you mean {close}?" if close else "`awsenv help` lists the commands"
    return UsageError(f"unknown command {word!r}; {hint}")


def _version() -> str:
    from .. import __version__

    return __version__
