from __future__ import annotations

from .base import Shell


class Fish(Shell):
    name = "fish"
    template = "awsenv.fish"

    def quote(self, value: str) -> str:
        # fish single quotes treat \\ and \' as escapes, so shlex.quote is wrong here.
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def export(self, name: str, value: str) -> str:
        return f"set -gx {name} {self.quote(value)};"

    def unset(self, name: str) -> str:
        return f"set -e {name};"
