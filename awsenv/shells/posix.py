"""bash and zsh: POSIX single quotes, export/unset, and their init scripts."""
from __future__ import annotations

from .base import Shell


class Bash(Shell):
    name = "bash"
    template = "awsenv.bash"

    def quote(self, value: str) -> str:
        # Inside '...' nothing is special but the quote itself: close, escape, reopen.
        return "'" + value.replace("'", "'\\''") + "'"

    def export(self, name: str, value: str) -> str:
        return f"export {name}={self.quote(value)};"

    def unset(self, name: str) -> str:
        return f"unset -v {name};"


class Zsh(Bash):
    name = "zsh"
    template = "awsenv.zsh"
