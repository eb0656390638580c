"""The Shell interface and what every shell shares: rendering a plan, filling the
init template, finding the real program, and the names a wrapper may not take."""
from __future__ import annotations

import os
import re
import sys

from ..core import settings
from ..core.errors import AwsenvError, UsageError

FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Shell:
    name = ""
    template = ""  # file name under templates/
    reserved = frozenset[str]()  # what this shell's script calls, beyond RESERVED
    case_sensitive = True  # whether the shell tells function names apart by case

    def quote(self, value: str) -> str:
        raise NotImplementedError

    def export(self, name: str, value: str) -> str:
        raise NotImplementedError

    def unset(self, name: str) -> str:
        raise NotImplementedError

    def render(self, plan) -> str:
        lines = []
        for name, value in plan:
            if not ENV_NAME.fullmatch(name):
                raise ValueError(f"not an environment variable name: {name!r}")
            lines.append(self.unset(name) if value is None else self.export(name, value))
        return "".join(line + "\n" for line in lines)

    def init(self, cmd: str, prompt: bool, refresh: bool) -> str:
        """The template in templates/ with each bare placeholder replaced by an
        already-quoted value. Template authors never write quotes around one."""
        placeholders = {
            "__AWSENV_CMD__": check_function_name(cmd, self),
            "__AWSENV_EXE__": self.quote(executable()),
            "__AWSENV_PROMPT__": "1" if prompt else "0",
            "__AWSENV_REFRESH__": "1" if refresh else "0",
            # What Python and the scripts share (core/settings.py): numbers, no quotes.
            "__AWSENV_WINDOW__": str(settings.REFRESH_WINDOW),
            "__AWSENV_DIGITS__": str(settings.NUMBER_DIGITS),
            "__AWSENV_NEVER__": str(settings.NEVER),
            "__AWSENV_LEAVING__": str(settings.LEAVING_MASK),
        }
        with open(os.path.join(template_dir(), self.template), encoding="utf-8") as stream:
            text = stream.read()
        for key, value in placeholders.items():
            text = text.replace(key, value)
        return text


def template_dir() -> str:
    """The init scripts ship beside their renderers, as package data."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def executable() -> str:
    """The real awsenv program, by absolute path, so the wrapper never finds itself."""
    argv0 = sys.argv[0] if sys.argv else ""
    # pip's Windows launcher, awsenv.exe, hands Python its own path without the .exe.
    for path in (argv0, argv0 + ".exe"):
        if os.path.basename(path).lower() in ("awsenv", "awsenv.exe") and os.path.isfile(path):
            return os.path.abspath(path)
    import shutil

    found = shutil.which("awsenv")  # awsenv.exe on Windows, through PATHEXT
    if found is None:
        # A bare `awsenv` would name the wrapper function itself in PowerShell.
        raise AwsenvError("cannot find the awsenv program on PATH; the shell integration calls it by its full path")
    return os.path.abspath(found)


# Names the scripts themselves call, which a wrapper of that name would hijack.
RESERVED = frozenset(
    "builtin command test set printf print source eval trap local return emulate typeset "
    "functions function string math contains status read echo exit unset export cd".split()
)


def check_function_name(name: str, shell: Shell | None = None) -> str:
    if not FUNCTION_NAME.fullmatch(name):
        raise UsageError(f"--cmd {name!r} is not a valid function name (letters, digits, _ and -)")
    reserved = RESERVED | (shell.reserved if shell else frozenset())
    key = name
    if shell is not None and not shell.case_sensitive:
        key, reserved = name.lower(), frozenset(word.lower() for word in reserved)
    if key in reserved or key.startswith("__awsenv"):
        raise UsageError(f"--cmd {name!r} would replace a command the shell integration relies on")
    return name
