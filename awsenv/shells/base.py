from __future__ import annotations

import os
import re
import sys

from ..errors import UsageError

FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Shell:
    name = ""
    template = ""  # file name under shell/

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
        """The template in shell/ with each bare placeholder replaced by an
        already-quoted value. Template authors never write quotes around one."""
        placeholders = {
            "__AWSENV_CMD__": check_function_name(cmd),
            "__AWSENV_EXE__": self.quote(executable()),
            "__AWSENV_PROMPT__": "1" if prompt else "0",
            "__AWSENV_REFRESH__": "1" if refresh else "0",
        }
        with open(os.path.join(template_dir(), self.template), encoding="utf-8") as stream:
            text = stream.read()
        for key, value in placeholders.items():
            text = text.replace(key, value)
        return text


def template_dir() -> str:
    """awsenv/shell/ in an installed wheel (setuptools maps the top-level shell/ there);
    the repository's shell/ when running from a checkout or an editable install."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = os.path.join(package, "shell")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(package), "shell")


def executable() -> str:
    """The real awsenv program, by absolute path, so the wrapper never finds itself."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "awsenv" and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    import shutil

    return shutil.which("awsenv") or "awsenv"


# Names the scripts themselves call, which a wrapper of that name would hijack.
RESERVED = frozenset(
    "builtin command test set printf print source eval trap local return emulate typeset "
    "functions function string math contains status read echo exit unset export cd".split()
)


def check_function_name(name: str) -> str:
    if not FUNCTION_NAME.fullmatch(name):
        raise UsageError(f"--cmd {name!r} is not a valid function name (letters, digits, _ and -)")
    if name in RESERVED or name.startswith("__awsenv"):
        raise UsageError(f"--cmd {name!r} would replace a command the shell integration relies on")
    return name
