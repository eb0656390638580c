from __future__ import annotations

from .base import Shell

# PowerShell takes the typographic single quotes as quote characters too.
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"


class Pwsh(Shell):
    name = "pwsh"
    template = "awsenv.ps1"

    def quote(self, value: str) -> str:
        for quote in SINGLE_QUOTES:
            value = value.replace(quote, quote * 2)
        return "'" + value + "'"

    def export(self, name: str, value: str) -> str:
        return f"$env:{name} = {self.quote(value)}"

    def unset(self, name: str) -> str:
        return f"Remove-Item -LiteralPath {self.quote('env:/' + name)} -ErrorAction SilentlyContinue"
