"""PowerShell: its quoting, $env: statements, and its init script."""
from __future__ import annotations

import base64

from .base import Shell


class Pwsh(Shell):
    name = "pwsh"
    template = "awsenv.ps1"
    # PowerShell finds functions case-insensitively, before cmdlets: a wrapper named
    # like one of these (in any case) would replace what the script calls.
    case_sensitive = False
    reserved = frozenset(
        "prompt awsenv_prompt ConvertTo-Json ForEach-Object Get-Content Get-Item Get-Location Get-Process "
        "Invoke-Expression New-TemporaryFile Out-Null Register-ArgumentCompleter Remove-Item "
        "Remove-Variable Set-Item Set-StrictMode Test-Path Write-Error Out-String".split()
    )

    def quote(self, value: str) -> str:
        """A verbatim string, or for a value that is not ASCII, an expression that
        decodes it from base64: PowerShell decodes a native program's output with the
        console's code page, and `awsenv init pwsh | Invoke-Expression` or
        `awsenv use dev | Invoke-Expression` run before anything can set it to UTF-8.
        This also keeps out the typographic quotes, which PowerShell takes as quotes."""
        if not value.isascii():
            encoded = base64.b64encode(value.encode("utf-8", "surrogateescape")).decode("ascii")
            return f"([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String('{encoded}')))"
        return "'" + value.replace("'", "''") + "'"

    def export(self, name: str, value: str) -> str:
        return f"$env:{name} = {self.quote(value)}"

    def unset(self, name: str) -> str:
        # Assigning $null removes the variable, and unlike Remove-Item it neither fails
        # (status false) nor adds to $Error when the variable is not there.
        return f"$env:{name} = $null"
