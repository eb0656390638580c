# awsenv shell integration for PowerShell (7.x and Windows PowerShell 5.1). Put in $PROFILE:
#     awsenv init pwsh | Out-String | Invoke-Expression
#
# Same logic as the bash, zsh and fish scripts. Everything is defined in the global
# scope, so init may run inside a function. It works under Set-StrictMode -Version
# Latest and $ErrorActionPreference = 'Stop'. Nothing here starts a process while
# nothing is due.
# Prompt segment: `dev 42m`, `prod 3h05m`; a trailing `!` marks less than
# AWSENV_REFRESH_WINDOW seconds left (urgent); `dev expired` after expiry.

function global:__awsenv_now {
    [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
}

function global:__awsenv_number($value) {
    if ("$value" -match '^[0-9]{1,12}$') {
        return [long]$value
    }
    return $null
}

function global:__awsenv_window {
    $window = __awsenv_number $env:AWSENV_REFRESH_WINDOW
    if ($null -eq $window) {
        return 600
    }
    return $window
}

function global:__awsenv_expires {
    if (-not $env:AWSENV_PROFILE) {
        return $null
    }
    return __awsenv_number $env:AWSENV_EXPIRES
}

function global:awsenv_prompt {
    $expires = __awsenv_expires
    if ($null -eq $expires) {
        return
    }
    $left = $expires - (__awsenv_now)
    if ($left -le 0) {
        return "$env:AWSENV_PROFILE expired"
    }
    $min = [math]::Floor($left / 60)
    if ($left -lt 60) {
        $text = "$env:AWSENV_PROFILE ${left}s"
    }
    elseif ($min -lt 60) {
        $text = "$env:AWSENV_PROFILE ${min}m"
    }
    else {
        $text = '{0} {1}h{2:00}m' -f $env:AWSENV_PROFILE, [math]::Floor($min / 60), ($min % 60)
    }
    if ($left -lt (__awsenv_window)) {
        $text += '!'
    }
    # Server mode: the agent renews the role; the time left is the MFA session's.
    if ($env:AWSENV_SERVED) {
        $text = "$env:AWSENV_PROFILE served" + $text.Substring($env:AWSENV_PROFILE.Length)
    }
    return $text
}

# Whether the agent is gone or going away: no such process, a zombie, or one with
# SIGTERM, SIGHUP, SIGINT or SIGKILL pending, as in the other shells. The agent blocks
# the first three until it has closed its endpoint, so /proc/PID/status shows them from
# the moment `kill` returns. Without /proc, only whether it is gone.
function global:__awsenv_leaving([long] $agent) {
    if (-not (Test-Path -LiteralPath '/proc/self/status')) {
        return (-not (Get-Process -Id $agent -ErrorAction Ignore))
    }
    $status = Get-Content -LiteralPath "/proc/$agent/status" -ErrorAction Ignore
    if (-not $status) {
        return $true
    }
    foreach ($line in $status) {
        if ($line -cmatch '^State:\s+[ZX]') {
            return $true
        }
        if ($line -cmatch '^(SigPnd|ShdPnd):\s+([0-9a-f]{16})$' -and
            ([Convert]::ToInt64($Matches[2].Substring(8), 16) -band 16643)) {
            return $true
        }
    }
    return $false
}

# Due: AWSENV_NEXT_CHECK has come (set after a declined or capped refresh), or else
# fewer than AWSENV_REFRESH_WINDOW seconds are left.
function global:__awsenv_due {
    $expires = __awsenv_expires
    if ($null -eq $expires -or $env:AWSENV_REFRESH -ceq 'off') {
        return $false
    }
    $now = __awsenv_now
    if ($env:AWSENV_NEXT_CHECK) {
        $next = __awsenv_number $env:AWSENV_NEXT_CHECK
        return ($null -ne $next -and $now -ge $next)
    }
    # Server mode: an agent that is gone or going took the endpoint with it; a refresh
    # repairs it.
    $agent = __awsenv_number $env:AWSENV_SERVED
    if ($null -ne $agent -and (__awsenv_leaving $agent)) {
        return $true
    }
    return (($expires - $now) -lt (__awsenv_window))
}

# Runs the real program. The arguments travel as JSON in AWSENV_ARGV: Windows
# PowerShell 5.1 and 7.0-7.2 (and any version through a .cmd shim) drop '' and
# embedded " on a native command line. Its output is UTF-8, and is read as UTF-8.
function global:__awsenv_run([string[]] $argv) {
    $env:AWSENV_ARGV = ConvertTo-Json -Compress -InputObject @($argv)
    $encoding = $null
    try {
        $encoding = [Console]::OutputEncoding
        [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false)
    }
    catch {
        $encoding = $null  # no console to set (a service, redirected output)
    }
    try {
        & '/opt/awsenv/bin/awsenv' --argv-env
    }
    finally {
        if ($null -ne $encoding) {
            [Console]::OutputEncoding = $encoding
        }
        Remove-Item -LiteralPath 'env:/AWSENV_ARGV' -ErrorAction Ignore
    }
}

# Runs the real program and evaluates its statements only when it succeeded; returns
# its exit code. A refresh that Ctrl-C stops must not be asked for again before
# expiry: AWSENV_NEXT_CHECK is set before it starts (statements from a successful
# refresh replace it), because a `finally` may not run after Ctrl-C.
function global:__awsenv_eval([string[]] $argv) {
    if ($argv[0] -ceq 'refresh') {
        $expires = __awsenv_expires
        if ($null -ne $expires -and $expires -gt (__awsenv_now)) {
            $env:AWSENV_NEXT_CHECK = "$expires"
        }
        else {
            $env:AWSENV_NEXT_CHECK = '9999999999'
        }
    }
    $out = __awsenv_run ($argv + @('--shell', 'pwsh'))
    $rc = $LASTEXITCODE
    if ($rc -eq 0 -and $out) {
        # Ctrl-C can't stop the statements halfway (direnv's trap '' INT). Reading
        # TreatControlCAsInput throws where input is redirected (pwsh -c, CI, ISE).
        $treatCtrlC = $null
        try {
            $treatCtrlC = [Console]::TreatControlCAsInput
            [Console]::TreatControlCAsInput = $true
        }
        catch {
            $treatCtrlC = $null
        }
        try {
            Invoke-Expression (@($out) -join "`n")
        }
        finally {
            if ($null -ne $treatCtrlC) {
                [Console]::TreatControlCAsInput = $treatCtrlC
            }
        }
    }
    return $rc
}

# An advanced function, so that a failure reaches the caller as $? = $false
# ($PSCmdlet.WriteError): `awsenv use dev && terraform apply` stops, as in bash.
function global:awsenv {
    [CmdletBinding(PositionalBinding = $false)]
    param([Parameter(ValueFromRemainingArguments = $true)] [string[]] $Arguments = @())
    $sub = ''
    if ($Arguments.Count -gt 0) {
        $sub = $Arguments[0]
    }
    # Case-sensitive comparisons throughout: profile names and subcommands are.
    if (@('use', 'unset', 'refresh') -ccontains $sub -and -not ($Arguments -ccontains '-h' -or $Arguments -ccontains '--help')) {
        # Already active with more than the window left: nothing to ask Python.
        $expires = __awsenv_expires
        if ($sub -ceq 'use' -and $Arguments.Count -eq 2 -and $Arguments[1] -ceq $env:AWSENV_PROFILE -and
            -not $env:AWSENV_NEXT_CHECK -and $null -ne $expires -and
            ($expires - (__awsenv_now)) -gt (__awsenv_window)) {
            $global:LASTEXITCODE = 0
            return
        }
        $rc = __awsenv_eval $Arguments
    }
    else {
        __awsenv_run $Arguments
        $rc = $LASTEXITCODE
    }
    $global:LASTEXITCODE = $rc
    if ($rc -ne 0) {
        $failure = [System.Exception]::new("awsenv $sub failed (exit code $rc)")
        $PSCmdlet.WriteError([System.Management.Automation.ErrorRecord]::new($failure, 'AwsenvFailed', 'NotSpecified', $null))
    }
}

# Wrap `prompt` unless it is ours: a theme or `. $PROFILE` that redefined it after an
# earlier init gets wrapped again, so the hook and the segment come back.
$__awsenv_ours = (Test-Path -LiteralPath 'function:global:prompt') -and
    (Get-Item -LiteralPath 'function:global:prompt').ScriptBlock.ToString().Contains('__awsenv_original_prompt')
if (-not $__awsenv_ours) {
    if (Test-Path -LiteralPath 'function:global:prompt') {
        Set-Item -Path 'function:global:__awsenv_original_prompt' -Value (Get-Item -LiteralPath 'function:global:prompt').ScriptBlock
    }
    else {
        function global:__awsenv_original_prompt {
            'PS ' + (Get-Location) + '> '
        }
    }
    # The original prompt sees the $? and $LASTEXITCODE of the user's command, and so
    # does the next command line: restoring $? is the last statement.
    function global:prompt {
        $lastSuccess = $?
        $hadExit = Test-Path -LiteralPath 'variable:global:LASTEXITCODE'
        $lastExit = 0
        if ($hadExit) {
            $lastExit = $global:LASTEXITCODE
        }
        if (1 -and (__awsenv_due)) {
            $null = __awsenv_eval @('refresh')
        }
        $segment = ''
        if (1) {
            $text = awsenv_prompt
            if ($text) {
                $segment = "($text) "
            }
        }
        if ($hadExit) {
            $global:LASTEXITCODE = $lastExit
        }
        if (-not $lastSuccess) {
            Write-Error '' -ErrorAction Ignore
        }
        $original = __awsenv_original_prompt
        if ($hadExit) {
            $global:LASTEXITCODE = $lastExit
        }
        $segment + $original
        if (-not $lastSuccess) {
            Write-Error '' -ErrorAction Ignore
        }
    }
}
Remove-Variable -Name '__awsenv_ours' -ErrorAction Ignore

# Completion calls the real program through argcomplete. A parameter completer, as a
# function's arguments never reach a -Native one; flags (--shell) are arguments here.
# COMP_LINE is this command alone (not `cd x; ...` before it), up to the cursor.
Register-ArgumentCompleter -CommandName awsenv -ParameterName Arguments -ScriptBlock {
    param($commandName, $parameterName, $wordToComplete, $commandAst, $fakeBoundParameters)
    $line = $commandAst.Extent.Text
    if ($wordToComplete -eq '' -and -not $line.EndsWith(' ')) {
        $line += ' '
    }
    $names = @('ARGCOMPLETE_USE_TEMPFILES', '_ARGCOMPLETE_STDOUT_FILENAME', 'COMP_LINE', 'COMP_POINT',
        '_ARGCOMPLETE', '_ARGCOMPLETE_SUPPRESS_SPACE', '_ARGCOMPLETE_IFS', '_ARGCOMPLETE_SHELL')
    $completionFile = New-TemporaryFile
    try {
        $env:ARGCOMPLETE_USE_TEMPFILES = 1
        $env:_ARGCOMPLETE_STDOUT_FILENAME = $completionFile.FullName
        $env:COMP_LINE = $line
        $env:COMP_POINT = $line.Length
        $env:_ARGCOMPLETE = 1
        $env:_ARGCOMPLETE_SUPPRESS_SPACE = 0
        $env:_ARGCOMPLETE_IFS = "`n"
        $env:_ARGCOMPLETE_SHELL = 'powershell'
        & '/opt/awsenv/bin/awsenv' 2>&1 | Out-Null
        Get-Content -LiteralPath $completionFile.FullName -Encoding UTF8 | ForEach-Object {
            [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
        }
    }
    finally {
        # The next `awsenv use` must not run in completion mode after an interrupted one.
        foreach ($name in $names) {
            Remove-Item -LiteralPath "env:/$name" -ErrorAction Ignore
        }
        Remove-Item -LiteralPath $completionFile.FullName -ErrorAction Ignore
    }
}
