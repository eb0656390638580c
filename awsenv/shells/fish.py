"""fish: its quoting, its set/set -e statements, and its init script."""
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
        # `set -e` of a variable that is not set returns 4, which would fail the whole
        # `awsenv use dev | source; and cmd`; an `if` that runs nothing returns 0.
        return f"if set -q {name}; set -e {name}; end;"

    def render(self, plan) -> str:
        # fish's `set` passes the $status it finds through: start from 0, so the status
        # after `source` tells whether these statements applied, not what ran before.
        text = super().render(plan)
        return "builtin true;\n" + text if text else text
