# awsenv shell integration for bash. Put in ~/.bashrc, after PS1 is set:
#     eval "$(awsenv init bash)"
#
# Nothing here starts a process while nothing is due: time comes from EPOCHSECONDS
# (bash >= 5), state from environment variables that `awsenv use` sets.
# Prompt segment: `dev 42m`, `prod 3h05m`; a trailing `!` marks less than
# AWSENV_REFRESH_WINDOW seconds left (urgent); `dev expired` after expiry.

__awsenv_now() {
    if [[ -n "${EPOCHSECONDS-}" ]]; then
        __awsenv_time=$EPOCHSECONDS
    else
        __awsenv_time=$(\command date +%s)  # bash < 5 has no clock without a process
    fi
}

# Numbers from the environment are checked before arithmetic: bash evaluates a
# variable's value as an expression, and `a[$(cmd)]` would run cmd.
__awsenv_window() {
    __awsenv_win=600
    if [[ -n "${AWSENV_REFRESH_WINDOW-}" && "${AWSENV_REFRESH_WINDOW-}" != *[!0-9]* && ${#AWSENV_REFRESH_WINDOW} -le 12 ]]; then
        __awsenv_win=$((10#$AWSENV_REFRESH_WINDOW))
    fi
}

__awsenv_active() {
    [[ -n "${AWSENV_PROFILE-}" && -n "${AWSENV_EXPIRES-}" && "${AWSENV_EXPIRES-}" != *[!0-9]* && ${#AWSENV_EXPIRES} -le 12 ]]
}

# Sets __awsenv_segment; prints nothing, so the hook needs no command substitution.
__awsenv_segment_update() {
    __awsenv_segment=
    __awsenv_active || \builtin return 0
    \builtin local __awsenv_time __awsenv_win __awsenv_left __awsenv_min
    __awsenv_now
    __awsenv_window
    __awsenv_left=$((10#$AWSENV_EXPIRES - __awsenv_time))
    if ((__awsenv_left <= 0)); then
        __awsenv_segment="$AWSENV_PROFILE expired"
        \builtin return 0
    fi
    __awsenv_min=$((__awsenv_left / 60))
    if ((__awsenv_left < 60)); then
        __awsenv_segment="$AWSENV_PROFILE ${__awsenv_left}s"
    elif ((__awsenv_min < 60)); then
        __awsenv_segment="$AWSENV_PROFILE ${__awsenv_min}m"
    else
        \builtin printf -v __awsenv_segment '%s %dh%02dm' "$AWSENV_PROFILE" $((__awsenv_min / 60)) $((__awsenv_min % 60))
    fi
    if ((__awsenv_left < __awsenv_win)); then
        __awsenv_segment+='!'
    fi
    # Server mode: the agent renews the role; the time left is the MFA session's.
    if [[ -n "${AWSENV_SERVED-}" ]]; then
        __awsenv_segment="$AWSENV_PROFILE served${__awsenv_segment:${#AWSENV_PROFILE}}"
    fi
}

awsenv_prompt() {
    \builtin local __awsenv_segment
    __awsenv_segment_update
    if [[ -n "$__awsenv_segment" ]]; then
        \builtin printf '%s\n' "$__awsenv_segment"
    fi
}

# Whether the agent $1 is gone or going away: no such process, a zombie, or one with
# SIGTERM, SIGHUP, SIGINT or SIGKILL pending. The agent blocks the first three until it
# has closed its endpoint, so /proc/PID/status shows them from the moment `kill`
# returns. Builtin reads; without /proc, kill -0 tells only whether it is gone.
__awsenv_leaving() {
    if [[ ! -r /proc/self/status ]]; then
        ! \builtin kill -0 "$1" 2>/dev/null
        \builtin return
    fi
    \builtin local __awsenv_key __awsenv_value __awsenv_state=
    {
        while IFS=$' \t' \builtin read -r __awsenv_key __awsenv_value; do
            case "$__awsenv_key" in
            State:) __awsenv_state=$__awsenv_value ;;
            SigPnd: | ShdPnd:)
                if [[ ${#__awsenv_value} -eq 16 && "$__awsenv_value" != *[!0-9a-f]* ]] \
                    && ((16#${__awsenv_value:8} & 16643)); then
                    \builtin return 0
                fi
                ;;
            SigBlk:) \builtin break ;;
            esac
        done <"/proc/$1/status"
    } 2>/dev/null
    [[ -z "$__awsenv_state" || "$__awsenv_state" == [ZX]* ]]
}

# Due: AWSENV_NEXT_CHECK has come (set after a declined or capped refresh), or else
# fewer than AWSENV_REFRESH_WINDOW seconds are left.
__awsenv_due() {
    __awsenv_active || \builtin return 1
    [[ "${AWSENV_REFRESH-}" != off ]] || \builtin return 1
    \builtin local __awsenv_time __awsenv_win
    __awsenv_now
    if [[ -n "${AWSENV_NEXT_CHECK-}" ]]; then
        [[ "$AWSENV_NEXT_CHECK" != *[!0-9]* && ${#AWSENV_NEXT_CHECK} -le 12 ]] || \builtin return 1
        ((__awsenv_time >= 10#$AWSENV_NEXT_CHECK))
        \builtin return
    fi
    # Server mode: an agent that is gone or going took the endpoint with it; a refresh
    # repairs it.
    if [[ -n "${AWSENV_SERVED-}" && "$AWSENV_SERVED" != *[!0-9]* && ${#AWSENV_SERVED} -le 12 ]] \
        && __awsenv_leaving "$AWSENV_SERVED"; then
        \builtin return 0
    fi
    __awsenv_window
    ((10#$AWSENV_EXPIRES - __awsenv_time < __awsenv_win))
}

# The real program, told the refresh window and mode this shell uses, exported or not,
# so that it and the hook agree on when credentials are due.
__awsenv_run() {
    \builtin local __awsenv_win
    __awsenv_window
    AWSENV_REFRESH_WINDOW=$__awsenv_win AWSENV_REFRESH=${AWSENV_REFRESH-prompt} '/opt/awsenv/bin/awsenv' "$@" --shell bash
}

# A refresh that is killed or crashes must not be asked for again at every prompt: until
# its statements replace it, AWSENV_NEXT_CHECK holds the next try back to expiry (or for
# good after it), as the program itself does after a declined or failed refresh.
__awsenv_hold() {
    __awsenv_active || \builtin return 0
    \builtin local __awsenv_time
    __awsenv_now
    if ((10#$AWSENV_EXPIRES > __awsenv_time)); then
        \builtin export AWSENV_NEXT_CHECK=$AWSENV_EXPIRES
    else
        \builtin export AWSENV_NEXT_CHECK=9999999999
    fi
}

# Runs the real program and evaluates its statements with Ctrl-C ignored, so an
# interrupt can't leave half of them applied (direnv's trap). The program itself
# answers Ctrl-C at its MFA question. It prints nothing on failure.
__awsenv_eval() {
    \builtin local __awsenv_out __awsenv_rc __awsenv_trap
    if [[ "${1-}" == refresh ]]; then
        __awsenv_hold
    fi
    __awsenv_trap=$(\builtin trap -p INT)
    \builtin trap '' INT
    # Only this shell ignores Ctrl-C: the program gets the default back, so a slow
    # network call can still be interrupted.
    __awsenv_out=$(\builtin trap - INT; __awsenv_run "$@")
    __awsenv_rc=$?
    if ((__awsenv_rc == 0)); then
        \builtin eval "$__awsenv_out"
    fi
    if [[ -n "$__awsenv_trap" ]]; then
        \builtin eval "$__awsenv_trap"
    else
        \builtin trap - INT
    fi
    \builtin return "$__awsenv_rc"
}

awsenv() {
    case "${1-}" in
    use | unset | refresh)
        \builtin local __awsenv_arg __awsenv_time __awsenv_win
        for __awsenv_arg in "${@:2}"; do
            case "$__awsenv_arg" in
            -h | --help) '/opt/awsenv/bin/awsenv' "$@"; \builtin return ;;
            esac
        done
        # Already active with more than the window left: nothing to ask Python.
        if [[ "$1" == use && $# -eq 2 && "$2" == "${AWSENV_PROFILE-}" ]] && __awsenv_active \
            && [[ -z "${AWSENV_NEXT_CHECK-}" ]]; then
            __awsenv_now
            __awsenv_window
            if ((10#$AWSENV_EXPIRES - __awsenv_time > __awsenv_win)); then
                \builtin return 0
            fi
        fi
        # In a subshell writing to a pipe (eval "$(awsenv use dev)", awsenv use dev | cat)
        # someone reads the statements: print them, as the program alone would.
        if ((BASH_SUBSHELL)) && [[ -p /dev/stdout ]]; then
            __awsenv_run "$@"
        else
            __awsenv_eval "$@"
        fi
        ;;
    *)
        '/opt/awsenv/bin/awsenv' "$@"
        ;;
    esac
}

# The prompt hook keeps $? for whatever runs after it and for the prompt. It keeps
# __awsenv_segment current even with --no-prompt, for themes to show (README).
__awsenv_hook() {
    \builtin local __awsenv_status=$?
    if ((1)) && __awsenv_due; then
        __awsenv_eval refresh
    fi
    __awsenv_segment_update
    \builtin return "$__awsenv_status"
}

# PROMPT_COMMAND is a string, or an array since bash 5.1; handle both (direnv). The
# hook goes last, so what runs before it still sees the command's PIPESTATUS, but
# before bash-preexec's __bp_interactive_mode, which must stay last.
__awsenv_install_hook() {
    if [[ "${PROMPT_COMMAND[*]-}" == *__awsenv_hook* ]]; then
        \builtin return 0
    fi
    if ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) \
        && [[ -n "${PROMPT_COMMAND+set}" && "${PROMPT_COMMAND@a}" == *a* ]]; then
        \builtin local -a __awsenv_commands
        \builtin local __awsenv_command
        __awsenv_commands=()
        for __awsenv_command in "${PROMPT_COMMAND[@]}"; do
            if [[ "$__awsenv_command" == __bp_interactive_mode ]]; then
                __awsenv_commands+=(__awsenv_hook)
            fi
            __awsenv_commands+=("$__awsenv_command")
        done
        if [[ "${__awsenv_commands[*]}" != *__awsenv_hook* ]]; then
            __awsenv_commands+=(__awsenv_hook)
        fi
        PROMPT_COMMAND=("${__awsenv_commands[@]}")
    elif [[ "${PROMPT_COMMAND-}" == *__bp_interactive_mode* ]]; then
        PROMPT_COMMAND="${PROMPT_COMMAND/__bp_interactive_mode/__awsenv_hook$'\n'__bp_interactive_mode}"
    else
        # A newline, not `;`: a PROMPT_COMMAND that ends in `;` stays valid.
        PROMPT_COMMAND="${PROMPT_COMMAND:+$PROMPT_COMMAND$'\n'}__awsenv_hook"
    fi
}
__awsenv_install_hook

# The segment is a variable in PS1 (expanded by promptvars), not a command
# substitution, so drawing the prompt starts nothing. A profile name in it is data.
if ((1)) && [[ "${PS1-}" != *__awsenv_segment* ]]; then
    PS1='${__awsenv_segment:+(${__awsenv_segment}) }'"${PS1-}"
fi

# Completion calls the real program, not the wrapper.
# >>> argcomplete shellcode, generated by `make completions`; do not edit >>>
# Run something, muting output or redirecting it to the debug stream
# depending on the value of _ARC_DEBUG.
# If ARGCOMPLETE_USE_TEMPFILES is set, use tempfiles for IPC.
__awsenv_argcomplete_run() {
    if [[ -z "${ARGCOMPLETE_USE_TEMPFILES-}" ]]; then
        __awsenv_argcomplete_run_inner "$@"
        return
    fi
    local tmpfile="$(mktemp)"
    _ARGCOMPLETE_STDOUT_FILENAME="$tmpfile" __awsenv_argcomplete_run_inner "$@"
    local code=$?
    cat "$tmpfile"
    rm "$tmpfile"
    return $code
}

__awsenv_argcomplete_run_inner() {
    if [[ -z "${_ARC_DEBUG-}" ]]; then
        "$@" 8>&1 9>&2 1>/dev/null 2>&1 </dev/null
    else
        "$@" 8>&1 9>&2 1>&9 2>&1 </dev/null
    fi
}

__awsenv_argcomplete() {
    local IFS=$'\013'
    local script='/opt/awsenv/bin/awsenv'
    if [[ -n "${ZSH_VERSION-}" ]]; then
        local completions
        completions=($(IFS="$IFS" \
            COMP_LINE="$BUFFER" \
            COMP_POINT="$CURSOR" \
            _ARGCOMPLETE=1 \
            _ARGCOMPLETE_SHELL="zsh" \
            _ARGCOMPLETE_SUPPRESS_SPACE=1 \
            __awsenv_argcomplete_run ${script:-${words[1]}}))
        completions=("${completions[@]%:}")
        local nosort=()
        local nospace=()
        if is-at-least 5.8; then
            nosort=(-o nosort)
        fi
        if [[ "${completions-}" =~ ([^\\\\]): && "${match[1]}" =~ [=/:] ]]; then
            nospace=(-S '')
        fi
        _describe "${words[1]}" completions "${nosort[@]}" "${nospace[@]}"
    else
        local SUPPRESS_SPACE=0
        if compopt +o nospace 2> /dev/null; then
            SUPPRESS_SPACE=1
        fi
        COMPREPLY=($(IFS="$IFS" \
            COMP_LINE="$COMP_LINE" \
            COMP_POINT="$COMP_POINT" \
            COMP_TYPE="$COMP_TYPE" \
            _ARGCOMPLETE_COMP_WORDBREAKS="$COMP_WORDBREAKS" \
            _ARGCOMPLETE=1 \
            _ARGCOMPLETE_SHELL="bash" \
            _ARGCOMPLETE_SUPPRESS_SPACE=$SUPPRESS_SPACE \
            __awsenv_argcomplete_run ${script:-$1}))
        if [[ $? != 0 ]]; then
            unset COMPREPLY
        elif [[ $SUPPRESS_SPACE == 1 ]] && [[ "${COMPREPLY-}" =~ [=/:]$ ]]; then
            compopt -o nospace
        fi
    fi
}
# <<< argcomplete shellcode <<<
\builtin complete -o nospace -o default -o bashdefault -F __awsenv_argcomplete awsenv
