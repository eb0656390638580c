# awsenv shell integration for zsh. Put in ~/.zshrc, after the prompt is set:
#     eval "$(awsenv init zsh)"
#
# Nothing here starts a process while nothing is due: time comes from EPOCHSECONDS
# (zsh/datetime), state from environment variables that `awsenv use` sets.
# Prompt segment: `dev 42m`, `prod 3h05m`; a trailing `!` marks less than
# AWSENV_REFRESH_WINDOW seconds left (urgent); `dev expired` after expiry.

\builtin zmodload zsh/datetime 2>/dev/null || \builtin true

__awsenv_now() {
    if (( ${+EPOCHSECONDS} )); then
        __awsenv_time=$EPOCHSECONDS
    else
        __awsenv_time=$(\command date +%s)
    fi
}

# Numbers from the environment are checked (<->: digits only) before arithmetic,
# where zsh would evaluate a value such as `a[$(cmd)]` as an expression.
__awsenv_window() {
    __awsenv_win=__AWSENV_WINDOW__
    if [[ "${AWSENV_REFRESH_WINDOW-}" == <-> && ${#AWSENV_REFRESH_WINDOW} -le __AWSENV_DIGITS__ ]]; then
        __awsenv_win=$(( 10#$AWSENV_REFRESH_WINDOW ))
    fi
}

__awsenv_active() {
    [[ -n "${AWSENV_PROFILE-}" && "${AWSENV_EXPIRES-}" == <-> && ${#AWSENV_EXPIRES} -le __AWSENV_DIGITS__ ]]
}

# Sets __awsenv_segment; prints nothing, so the hook needs no command substitution.
__awsenv_segment_update() {
    \builtin emulate -L zsh
    __awsenv_segment=
    __awsenv_active || \builtin return 0
    \builtin local __awsenv_time __awsenv_win __awsenv_left __awsenv_min
    __awsenv_now
    __awsenv_window
    __awsenv_left=$(( 10#$AWSENV_EXPIRES - __awsenv_time ))
    if (( __awsenv_left <= 0 )); then
        __awsenv_segment="$AWSENV_PROFILE expired"
        \builtin return 0
    fi
    __awsenv_min=$(( __awsenv_left / 60 ))
    if (( __awsenv_left < 60 )); then
        __awsenv_segment="$AWSENV_PROFILE ${__awsenv_left}s"
    elif (( __awsenv_min < 60 )); then
        __awsenv_segment="$AWSENV_PROFILE ${__awsenv_min}m"
    else
        \builtin printf -v __awsenv_segment '%s %dh%02dm' "$AWSENV_PROFILE" $(( __awsenv_min / 60 )) $(( __awsenv_min % 60 ))
    fi
    if (( __awsenv_left < __awsenv_win )); then
        __awsenv_segment+='!'
    fi
    # Server mode: the agent renews the role; the time left is the MFA session's.
    if [[ -n "${AWSENV_SERVED-}" ]]; then
        __awsenv_segment="$AWSENV_PROFILE served${__awsenv_segment:${#AWSENV_PROFILE}}"
    fi
}

awsenv_prompt() {
    \builtin emulate -L zsh
    \builtin local __awsenv_segment
    __awsenv_segment_update
    if [[ -n "$__awsenv_segment" ]]; then
        \builtin print -r -- "$__awsenv_segment"
    fi
}

# Whether the agent $1 is gone or going away: no such process, a zombie, or one with
# SIGTERM, SIGHUP, SIGINT or SIGKILL pending. The agent blocks the first three until it
# has closed its endpoint, so /proc/PID/status shows them from the moment `kill`
# returns. Builtin reads; without /proc, kill -0 tells only whether it is gone.
__awsenv_leaving() {
    \builtin emulate -L zsh
    if [[ ! -r /proc/self/status ]]; then
        ! \builtin kill -0 "$1" 2>/dev/null
        \builtin return
    fi
    \builtin local __awsenv_key __awsenv_value __awsenv_state=
    {
        while IFS=$' \t' \builtin read -r __awsenv_key __awsenv_value; do
            case "$__awsenv_key" in
            (State:) __awsenv_state=$__awsenv_value ;;
            (SigPnd:|ShdPnd:)
                if [[ ${#__awsenv_value} -eq 16 && "$__awsenv_value" != *[^0-9a-f]* ]] \
                    && (( 16#${__awsenv_value[9,16]} & __AWSENV_LEAVING__ )); then
                    \builtin return 0
                fi
                ;;
            (SigBlk:) \builtin break ;;
            esac
        done <"/proc/$1/status"
    } 2>/dev/null
    [[ -z "$__awsenv_state" || "$__awsenv_state" == [ZX]* ]]
}

# Due: AWSENV_NEXT_CHECK has come (set after a declined or capped refresh), or else
# fewer than AWSENV_REFRESH_WINDOW seconds are left.
__awsenv_due() {
    \builtin emulate -L zsh
    __awsenv_active || \builtin return 1
    [[ "${AWSENV_REFRESH-}" != off ]] || \builtin return 1
    \builtin local __awsenv_time __awsenv_win
    __awsenv_now
    if [[ -n "${AWSENV_NEXT_CHECK-}" ]]; then
        [[ "$AWSENV_NEXT_CHECK" == <-> && ${#AWSENV_NEXT_CHECK} -le __AWSENV_DIGITS__ ]] || \builtin return 1
        (( __awsenv_time >= 10#$AWSENV_NEXT_CHECK ))
        \builtin return
    fi
    # Server mode: an agent that is gone or going took the endpoint with it; a refresh
    # repairs it.
    if [[ "${AWSENV_SERVED-}" == <-> && ${#AWSENV_SERVED} -le __AWSENV_DIGITS__ ]] \
        && __awsenv_leaving "$AWSENV_SERVED"; then
        \builtin return 0
    fi
    __awsenv_window
    (( 10#$AWSENV_EXPIRES - __awsenv_time < __awsenv_win ))
}

# The real program, told the refresh window and mode this shell uses, exported or not,
# so that it and the hook agree on when credentials are due.
__awsenv_run() {
    \builtin local __awsenv_win
    __awsenv_window
    AWSENV_REFRESH_WINDOW=$__awsenv_win AWSENV_REFRESH=${AWSENV_REFRESH-prompt} __AWSENV_EXE__ "$@" --shell zsh
}

# Runs the real program and evaluates its statements with Ctrl-C ignored, so an
# interrupt can't leave half of them applied (direnv's trap). The program itself
# answers Ctrl-C at its MFA question. It prints nothing on failure.
# A refresh that is killed or crashes must not be asked for again at every prompt: until
# its statements replace it, AWSENV_NEXT_CHECK holds the next try back to expiry (or for
# good after it), as the program itself does after a declined or failed refresh.
__awsenv_hold() {
    __awsenv_active || \builtin return 0
    \builtin local __awsenv_time
    __awsenv_now
    if (( 10#$AWSENV_EXPIRES > __awsenv_time )); then
        \builtin export AWSENV_NEXT_CHECK=$AWSENV_EXPIRES
    else
        \builtin export AWSENV_NEXT_CHECK=__AWSENV_NEVER__
    fi
}

__awsenv_eval() {
    \builtin local __awsenv_out __awsenv_rc __awsenv_win
    if [[ "${1-}" == refresh ]]; then
        __awsenv_hold
    fi
    # A function-local trap (localtraps) puts the caller's INT trap back on return.
    \builtin setopt localoptions localtraps
    __awsenv_window
    \builtin trap '' INT
    # __awsenv_run's command, inline: as one simple command it runs in place of the
    # subshell, which would otherwise die of the Ctrl-C that answers the MFA question.
    __awsenv_out=$(AWSENV_REFRESH_WINDOW=$__awsenv_win AWSENV_REFRESH=${AWSENV_REFRESH-prompt} __AWSENV_EXE__ "$@" --shell zsh)
    __awsenv_rc=$?
    if (( __awsenv_rc == 0 )); then
        \builtin eval "$__awsenv_out"
    fi
    \builtin return $__awsenv_rc
}

__AWSENV_CMD__() {
    case "${1-}" in
    (use|unset|refresh)
        \builtin local __awsenv_arg __awsenv_time __awsenv_win
        for __awsenv_arg in "${@:2}"; do
            case "$__awsenv_arg" in
            (-h|--help) __AWSENV_EXE__ "$@"; \builtin return ;;
            esac
        done
        # Already active with more than the window left: nothing to ask Python.
        if [[ "$1" == use && $# -eq 2 && "$2" == "${AWSENV_PROFILE-}" && -z "${AWSENV_NEXT_CHECK-}" ]] \
            && __awsenv_active; then
            __awsenv_now
            __awsenv_window
            if (( 10#$AWSENV_EXPIRES - __awsenv_time > __awsenv_win )); then
                \builtin return 0
            fi
        fi
        # In a subshell writing to a pipe (eval "$(awsenv use dev)", awsenv use dev | cat)
        # someone reads the statements: print them, as the program alone would.
        if (( ZSH_SUBSHELL )) && [[ -p /dev/stdout ]]; then
            __awsenv_run "$@"
        else
            __awsenv_eval "$@"
        fi
        ;;
    (*)
        __AWSENV_EXE__ "$@"
        ;;
    esac
}

# Registers completion for the wrapper whenever it is missing: compdef exists only once
# compinit has run, which may be after this file, and a compinit run again (a framework,
# then the user) starts a fresh table. Checked at each prompt; it starts nothing.
__awsenv_complete() {
    if (( ${+functions[compdef]} )) && [[ "${_comps[__AWSENV_CMD__]-}" != __awsenv_argcomplete ]]; then
        \builtin autoload -Uz is-at-least
        compdef __awsenv_argcomplete __AWSENV_CMD__
    fi
}

# zsh keeps $? across precmd functions itself; returning it costs nothing.
__awsenv_precmd() {
    \builtin local __awsenv_status=$?
    if (( __AWSENV_REFRESH__ )) && __awsenv_due; then
        __awsenv_eval refresh
    fi
    # Kept current even with --no-prompt, for themes to show (README).
    __awsenv_segment_update
    # The prompt expands this with prompt_subst; % is doubled so a profile name is
    # shown as it is, never read as a prompt escape.
    __awsenv_ps=${__awsenv_segment:+(${__awsenv_segment//\%/%%}) }
    __awsenv_complete
    \builtin return $__awsenv_status
}

\builtin typeset -ga precmd_functions
if (( ! ${precmd_functions[(Ie)__awsenv_precmd]} )); then
    precmd_functions=(__awsenv_precmd $precmd_functions)
fi

if (( __AWSENV_PROMPT__ )) && [[ "${PROMPT-}" != *__awsenv_ps* ]]; then
    \builtin setopt prompt_subst
    PROMPT='${__awsenv_ps-}'"${PROMPT-}"
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
    local script=__AWSENV_EXE__
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
__awsenv_complete
