# awsenv shell integration for PowerShell. Put in $PROFILE:
#     awsenv init pwsh | Out-String | Invoke-Expression
#
# Same logic as the bash, zsh and fish scripts, kept thin because it is only parsed
# in the tests. Nothing here starts a process while nothing is due.
# Prompt segment: `dev 42m`, `prod 3h05m`; a trailing `!` marks less than
# AWSENV_REFRESH_WINDOW seconds left (urgent); `dev expired` after expiry.

function __awsenv_now {
    [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
}

function __awsenv_number($value) {
    if ("$value" -match '^[0-9]{1,12}$') {
        return [long]$value
    }
    return $null
}

function __awsenv_window {
    $window = __awsenv_number $env:AWSENV_REFRESH_WINDOW
    if ($null -eq $window) {
        return 600
    }
    return $window
}

function __awsenv_expires {
    if (-not $env:AWSENV_PROFILE) {
        return $null
    }
    return __awsenv_number $env:AWSENV_EXPIRES
}

function awsenv_prompt {
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

# Due: AWSENV_NEXT_CHECK has come (set after a declined or capped refresh), or else
# fewer than AWSENV_REFRESH_WINDOW seconds are left.
function __awsenv_due {
    $expires = __awsenv_expires
    if ($null -eq $expires -or $env:AWSENV_REFRESH -ceq 'off') {
        return $false
    }
    $now = __awsenv_now
    if ($env:AWSENV_NEXT_CHECK) {
        $next = __awsenv_number $env:AWSENV_NEXT_CHECK
        return ($null -ne $next -and $now -ge $next)
    }
    # Server mode: a dead agent took the endpoint with it; a refresh repairs it.
    $agent = __awsenv_number $env:AWSENV_SERVED
    if ($null -ne $agent -and -not (Get-Process -Id $agent -ErrorAction SilentlyContinue)) {
        return $true
    }
    return (($expires - $now) -lt (__awsenv_window))
}

# Runs the real program and evaluates its statements only when it succeeded. If
# Ctrl-C stops the pipeline, nothing is evaluated, and a refresh is not asked for
# again before expiry (what the program itself prints in that case).
function __awsenv_eval {
    $done = $false
    try {
        $out = & '/opt/awsenv/bin/awsenv' @args --shell pwsh
        $rc = $LASTEXITCODE
        if ($rc -eq 0 -and $out) {
            # Ctrl-C can't stop the statements halfway (direnv's trap '' INT).
            $treatCtrlC = [Console]::TreatControlCAsInput
            try {
                [Console]::TreatControlCAsInput = $true
                Invoke-Expression ($out -join "`n")
            }
            finally {
                [Console]::TreatControlCAsInput = $treatCtrlC
            }
        }
        $done = $true
    }
    finally {
        if (-not $done -and $args[0] -ceq 'refresh') {
            $expires = __awsenv_expires
            if ($null -ne $expires -and $expires -gt (__awsenv_now)) {
                $env:AWSENV_NEXT_CHECK = "$expires"
            }
            else {
                $env:AWSENV_NEXT_CHECK = '9999999999'
            }
        }
    }
    $global:LASTEXITCODE = $rc
}

function awsenv {
    $sub = $args[0]
    # Case-sensitive comparisons throughout: profile names and subcommands are.
    if (@('use', 'unset', 'refresh') -ccontains $sub -and -not ($args -ccontains '-h' -or $args -ccontains '--help')) {
        # Already active with more than the window left: nothing to ask Python.
        $expires = __awsenv_expires
        if ($sub -ceq 'use' -and $args.Count -eq 2 -and $args[1] -ceq $env:AWSENV_PROFILE -and
            -not $env:AWSENV_NEXT_CHECK -and $null -ne $expires -and
            ($expires - (__awsenv_now)) -gt (__awsenv_window)) {
            $global:LASTEXITCODE = 0
            return
        }
        __awsenv_eval @args
        return
    }
    & '/opt/awsenv/bin/awsenv' @args
}

# Wrap the existing prompt once; it sees the $? and $LASTEXITCODE of the user's command.
if (-not (Test-Path function:__awsenv_original_prompt)) {
    if (Test-Path function:prompt) {
        $function:__awsenv_original_prompt = $function:prompt
    }
    else {
        function global:__awsenv_original_prompt {
            'PS ' + (Get-Location) + '> '
        }
    }
    function global:prompt {
        $lastSuccess = $?
        $lastExit = $global:LASTEXITCODE
        if (1 -and (__awsenv_due)) {
            __awsenv_eval refresh
        }
        $segment = ''
        if (1) {
            $text = awsenv_prompt
            if ($text) {
                $segment = "($text) "
            }
        }
        $global:LASTEXITCODE = $lastExit
        if (-not $lastSuccess) {
            # Puts $? back to $false for the original prompt.
            Write-Error '' -ErrorAction Ignore
        }
        $segment + (__awsenv_original_prompt)
    }
}

# Completion calls the real program, not the wrapper.
# >>> argcomplete shellcode, generated by `make completions`; do not edit >>>
Register-ArgumentCompleter -Native -CommandName awsenv -ScriptBlock {
    param($commandName, $wordToComplete, $cursorPosition)
    $completion_file = New-TemporaryFile
    $env:ARGCOMPLETE_USE_TEMPFILES = 1
    $env:_ARGCOMPLETE_STDOUT_FILENAME = $completion_file
    $env:COMP_LINE = $wordToComplete
    $env:COMP_POINT = $cursorPosition
    $env:_ARGCOMPLETE = 1
    $env:_ARGCOMPLETE_SUPPRESS_SPACE = 0
    $env:_ARGCOMPLETE_IFS = "`n"
    $env:_ARGCOMPLETE_SHELL = "powershell"
    & '/opt/awsenv/bin/awsenv' 2>&1 | Out-Null

    Get-Content $completion_file | ForEach-Object {
        [System.Management.Automation.CompletionResult]::new($_, $_, "ParameterValue", $_)
    }
    Remove-Item $completion_file, 'Env:\_ARGCOMPLETE_STDOUT_FILENAME', 'Env:\ARGCOMPLETE_USE_TEMPFILES', 'Env:\COMP_LINE', 'Env:\COMP_POINT', 'Env:\_ARGCOMPLETE', 'Env:\_ARGCOMPLETE_SUPPRESS_SPACE', 'Env:\_ARGCOMPLETE_IFS', 'Env:\_ARGCOMPLETE_SHELL'
}
# <<< argcomplete shellcode <<<
