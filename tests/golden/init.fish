# awsenv shell integration for fish. Put in ~/.config/fish/config.fish:
#     awsenv init fish | source
#
# While no awsenv credentials are active nothing here starts a process; while they
# are, each prompt runs one `date +%s` (fish has no clock variable): the hook reads
# the clock and hands it to the segment.
# Prompt segment: `dev 42m`, `prod 3h05m`; a trailing `!` marks less than
# AWSENV_REFRESH_WINDOW seconds left (urgent); `dev expired` after expiry.

function __awsenv_active
    set -q AWSENV_PROFILE[1]; and test -n "$AWSENV_PROFILE"
    and string match -qr '^[0-9]{1,12}$' -- "$AWSENV_EXPIRES"
end

function __awsenv_window
    if string match -qr '^[0-9]{1,12}$' -- "$AWSENV_REFRESH_WINDOW"
        echo $AWSENV_REFRESH_WINDOW
    else
        echo 600
    end
end

# awsenv_prompt [NOW]: NOW is the Unix time when the caller already has it.
function awsenv_prompt
    __awsenv_active; or return 0
    set -l now $argv[1]
    string match -qr '^[0-9]{1,12}$' -- "$now"; or set now (command date +%s)
    set -l left (math $AWSENV_EXPIRES - $now)
    if test $left -le 0
        printf '%s expired\n' $AWSENV_PROFILE
        return 0
    end
    set -l min (math --scale=0 $left / 60)
    set -l text
    if test $left -lt 60
        set text (printf '%s %ds' $AWSENV_PROFILE $left)
    else if test $min -lt 60
        set text (printf '%s %dm' $AWSENV_PROFILE $min)
    else
        set text (printf '%s %dh%02dm' $AWSENV_PROFILE (math --scale=0 $min / 60) (math $min % 60))
    end
    if test $left -lt (__awsenv_window)
        set text "$text!"
    end
    # Server mode: the agent renews the role; the time left is the MFA session's.
    if test -n "$AWSENV_SERVED"
        set text "$AWSENV_PROFILE served"(string sub -s (math (string length -- "$AWSENV_PROFILE") + 1) -- "$text")
    end
    printf '%s\n' $text
end

# Whether the agent is gone or going away: no such process, a zombie, or one with
# SIGTERM, SIGHUP, SIGINT or SIGKILL pending. The agent blocks the first three until it
# has closed its endpoint, so /proc/PID/status shows them from the moment `kill`
# returns. Builtin reads; without /proc, kill -0 tells only whether it is gone.
function __awsenv_leaving -a pid
    if not test -r /proc/self/status
        not command kill -0 $pid 2>/dev/null
        return
    end
    set -l state
    while read -l key value
        switch $key
            case State:
                set state $value
            case SigPnd: ShdPnd:
                if string match -qr '^[0-9a-f]{16}$' -- $value
                    and test (math "bitand(0x"(string sub -s 9 -- $value)", 16643)") -ne 0
                    return 0
                end
            case SigBlk:
                break
        end
    end </proc/$pid/status 2>/dev/null
    test -z "$state"; or string match -qr '^[ZX]' -- $state
end

# Due: AWSENV_NEXT_CHECK has come (set after a declined or capped refresh), or else
# fewer than AWSENV_REFRESH_WINDOW seconds are left.
function __awsenv_due
    set -e __awsenv_now
    __awsenv_active; or return 1
    set -g __awsenv_now (command date +%s)
    set -l now $__awsenv_now
    test "$AWSENV_REFRESH" != off; or return 1
    if set -q AWSENV_NEXT_CHECK
        string match -qr '^[0-9]{1,12}$' -- "$AWSENV_NEXT_CHECK"; or return 1
        test $now -ge $AWSENV_NEXT_CHECK
        return
    end
    # Server mode: an agent that is gone or going took the endpoint with it; a refresh
    # repairs it.
    if string match -qr '^[0-9]{1,12}$' -- "$AWSENV_SERVED"
        and __awsenv_leaving $AWSENV_SERVED
        return 0
    end
    test (math $AWSENV_EXPIRES - $now) -lt (__awsenv_window)
end

# The real program, told the refresh window and mode this shell uses, exported or not,
# so that it and the hook agree on when credentials are due.
function __awsenv_run
    set -lx AWSENV_REFRESH_WINDOW (__awsenv_window)
    set -q AWSENV_REFRESH; or set -l AWSENV_REFRESH prompt
    set -lx AWSENV_REFRESH $AWSENV_REFRESH
    '/opt/awsenv/bin/awsenv' $argv --shell fish
end

# Runs the real program and sources its statements. An INT handler keeps fish from
# cancelling this function when Ctrl-C answers the MFA question, so what the program
# prints then (it remembers that it asked) is applied. It prints nothing on failure.
# A refresh that is killed or crashes must not be asked for again at every prompt: until
# its statements replace it, AWSENV_NEXT_CHECK holds the next try back to expiry (or for
# good after it), as the program itself does after a declined or failed refresh.
function __awsenv_hold
    __awsenv_active; or return 0
    if test $AWSENV_EXPIRES -gt (command date +%s)
        set -gx AWSENV_NEXT_CHECK $AWSENV_EXPIRES
    else
        set -gx AWSENV_NEXT_CHECK 9999999999
    end
end

function __awsenv_eval
    if test "$argv[1]" = refresh
        __awsenv_hold
    end
    function __awsenv_ignore_int --on-signal INT
    end
    set -l out (__awsenv_run $argv | string collect)
    set -l rc $pipestatus[1]
    if test $rc -eq 0
        printf '%s' $out | source
    end
    functions -e __awsenv_ignore_int
    return $rc
end

function awsenv
    switch "$argv[1]"
        case use unset refresh
            if contains -- -h $argv[2..-1]; or contains -- --help $argv[2..-1]
                '/opt/awsenv/bin/awsenv' $argv
                return
            end
            # Already active with more than the window left: nothing to ask Python.
            if test "$argv[1]" = use -a (count $argv) -eq 2 -a "$argv[2]" = "$AWSENV_PROFILE"
                and not set -q AWSENV_NEXT_CHECK
                and __awsenv_active
                if test (math $AWSENV_EXPIRES - (command date +%s)) -gt (__awsenv_window)
                    return 0
                end
            end
            # Someone reads the statements (eval (awsenv use dev), awsenv use dev | source):
            # print them, as the program alone would. A file is not a reader: it applies,
            # and so does a script whose own output goes to a pipe (fish x.fish | tee log):
            # only a pipe inside this shell, not fish's own stdout, reads the statements.
            if status is-command-substitution
                or begin
                    not isatty stdout
                    and command test -p /dev/stdout
                    and not command test /dev/stdout -ef /proc/$fish_pid/fd/1
                end
                __awsenv_run $argv
            else
                __awsenv_eval $argv
            end
        case '*'
            '/opt/awsenv/bin/awsenv' $argv
    end
end

if test 1 = 1
    # fish keeps $status across event handlers.
    function __awsenv_hook --on-event fish_prompt
        if __awsenv_due
            __awsenv_eval refresh
            set -e __awsenv_now  # the refresh took time: the segment reads the clock again
        end
    end
end

function __awsenv_return
    return $argv[1]
end

# Wrap fish_prompt once; the original sees the $status of the user's command.
if test 1 = 1; and not functions -q __awsenv_original_fish_prompt
    if functions -q fish_prompt
        functions -c fish_prompt __awsenv_original_fish_prompt
    else
        function __awsenv_original_fish_prompt
            printf '> '
        end
    end
    function fish_prompt
        set -l last $status $pipestatus
        # The hook's clock reading serves this drawing only, not later repaints.
        set -l now $__awsenv_now
        set -e __awsenv_now
        set -l segment (awsenv_prompt $now)
        if test -n "$segment"
            printf '(%s) ' $segment
        end
        # Give the original prompt the user's $status and $pipestatus back. This
        # has to happen here: a function's return resets $pipestatus.
        set -l p $last[2..-1]
        if test (count $p) -ge 2 -a (count $p) -le 4 -a "$p[-1]" = "$last[1]"
            switch (count $p)
                case 2
                    __awsenv_return $p[1] | __awsenv_return $p[2]
                case 3
                    __awsenv_return $p[1] | __awsenv_return $p[2] | __awsenv_return $p[3]
                case 4
                    __awsenv_return $p[1] | __awsenv_return $p[2] | __awsenv_return $p[3] | __awsenv_return $p[4]
            end
        else
            __awsenv_return $last[1]
        end
        __awsenv_original_fish_prompt
    end
end

# Completion calls the real program, not the wrapper.
complete -e -c awsenv
# >>> argcomplete shellcode, generated by `make completions`; do not edit >>>
function __awsenv_argcomplete
    set -lx _ARGCOMPLETE 1
    set -lx _ARGCOMPLETE_DFS \t
    set -lx _ARGCOMPLETE_IFS \n
    set -lx _ARGCOMPLETE_SUPPRESS_SPACE 1
    set -lx _ARGCOMPLETE_SHELL fish
    set -lx COMP_LINE (commandline -p)
    set -lx COMP_POINT (string length (commandline -cp))
    set -lx COMP_TYPE
    if set -q _ARC_DEBUG
        '/opt/awsenv/bin/awsenv' 8>&1 9>&2 1>&9 2>&1
    else
        '/opt/awsenv/bin/awsenv' 8>&1 9>&2 1>/dev/null 2>&1
    end
end
complete --command awsenv -f -a '(__awsenv_argcomplete)'
# <<< argcomplete shellcode <<<
