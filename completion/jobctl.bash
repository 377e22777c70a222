# bash completion for jobctl, the jobd command-line client.
#
# Installed as /usr/share/bash-completion/completions/jobctl (loaded on
# demand by bash-completion). Completes commands, each command's options,
# the values of --executor and --state, task names (from `jobctl tasks
# --json`) and job IDs (from `jobctl list --json`) when jobd is reachable
# at the --url given on the line (with its --cacert), else $JOBD_URL, else
# the default, with the --token given on the line, else $JOBD_TOKEN or
# $JOBD_TOKEN_FILE.

# Ask jobd, quickly: print nothing when it cannot be reached.
_jobctl_query()
{
    local -a url=()
    [[ -n $_jobctl_url ]] && url=(--url "$_jobctl_url")
    [[ -n $_jobctl_token ]] && url+=(--token "$_jobctl_token")
    [[ -n $_jobctl_cacert ]] && url+=(--cacert "$_jobctl_cacert")
    if type -P timeout >/dev/null; then
        timeout 2 "$_jobctl_bin" "${url[@]}" --json "$@" 2>/dev/null
    else
        "$_jobctl_bin" "${url[@]}" --json "$@" 2>/dev/null
    fi
}

_jobctl_tasks()
{
    local json
    json=$(_jobctl_query tasks) || return
    [[ -n $json ]] || return
    if type -P python3 >/dev/null; then
        printf '%s\n' "$json" | python3 -c '
import json, sys
try:
    for t in json.load(sys.stdin).get("tasks", []):
        print(t["name"])
except Exception:
    pass' 2>/dev/null
    else
        # A task object is {"name":..., "summary":..., ...}; a parameter
        # has no summary.
        printf '%s\n' "$json" | grep -o '"name":"[^"]*","summary"' |
            sed 's/^"name":"\([^"]*\)".*/\1/'
    fi
}

_jobctl_ids()
{
    _jobctl_query list --limit 100 | grep -o '"id":"[0-9a-fA-F-]*"' |
        sed 's/^"id":"\(.*\)"$/\1/'
}

_jobctl()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        # Keep URLs (http://host:port) in one word.
        _init_completion -n =: || return
    else
        # Without bash-completion: split the line on blanks only, for the
        # same reason.
        local line=${COMP_LINE:0:COMP_POINT}
        read -ra words <<<"$line"
        [[ $line == *[[:blank:]] || ${#words[@]} -eq 0 ]] && words+=("")
        cword=$((${#words[@]} - 1))
        cur=${words[cword]}
        prev=${words[cword - 1]}
    fi

    local commands="submit run status wait result output watch cancel list executors tasks health token"
    commands+=" help"
    local global="--url --cacert --token --json --help --version"
    local _jobctl_bin=${words[0]} _jobctl_url="" _jobctl_token="" _jobctl_cacert="" cmd="" cmd_at=0 i dashdash=0

    # Find the command, the --url given so far, and a `--` after `run`.
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --url)
            _jobctl_url=${words[i + 1]}
            ((i++))
            ;;
        --url=*) _jobctl_url=${words[i]#--url=} ;;
        --token)
            _jobctl_token=${words[i + 1]}
            ((i++))
            ;;
        --token=*) _jobctl_token=${words[i]#--token=} ;;
        --cacert)
            _jobctl_cacert=${words[i + 1]}
            ((i++))
            ;;
        --cacert=*) _jobctl_cacert=${words[i]#--cacert=} ;;
        --)
            [[ $cmd == run ]] && dashdash=$i && break
            ;;
        -*) ;;
        *)
            if [[ -z $cmd ]]; then
                cmd=${words[i]}
                cmd_at=$i
            elif [[ $cmd == run ]]; then
                # `jobctl run ls -l`: the command starts at the first
                # argument that is not an option (or an option's value).
                case ${words[i - 1]} in
                --timeout | --env | --cwd | --stdin-file | --priority | --label | --url | --token) ;;
                --timeout | --env | --cwd | --stdin-file | --priority | --label | --url | --cacert) ;;
                *) dashdash=$((i - 1)) && break ;;
                esac
            fi
            ;;
        esac
    done

    # After `run ... --`: complete the command to run, as `sudo` does.
    if ((dashdash > 0)); then
        if declare -F _command_offset >/dev/null; then
            _command_offset $((dashdash + 1))
        else
            COMPREPLY=($(compgen -c -- "$cur"))
        fi
        return
    fi

    # Values of options.
    case $prev in
    --cacert)
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
        return
        ;;
    --url)
        COMPREPLY=($(compgen -W "http://127.0.0.1:7070 https:// unix:/run/jobd/api.sock" -- "$cur"))
        # bash replaces only what follows the last ':' of the word.
        if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
            local pre=${cur%"${cur##*:}"} k
            for k in "${!COMPREPLY[@]}"; do
                COMPREPLY[k]=${COMPREPLY[k]#"$pre"}
            done
        fi
        return
        ;;
    --executor)
        COMPREPLY=($(compgen -W "thread process opencl auto" -- "$cur"))
        return
        ;;
    --state)
        local states="queued running succeeded failed timed_out cancelled"
        local done_part="" last=$cur
        if [[ $cur == *,* ]]; then
            done_part=${cur%,*},
            last=${cur##*,}
        fi
        COMPREPLY=($(compgen -P "$done_part" -W "$states" -- "$last"))
        compopt -o nospace 2>/dev/null
        return
        ;;
    --params)
        if [[ $cur == @* ]]; then
            COMPREPLY=($(compgen -P @ -f -- "${cur#@}"))
            compopt -o filenames 2>/dev/null
        else
            COMPREPLY=($(compgen -W "@ - @-" -- "$cur"))
            compopt -o nospace 2>/dev/null
        fi
        return
        ;;
    --stdin-file | --batch | --file)
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
        return
        ;;
    --cwd)
        COMPREPLY=($(compgen -d -- "$cur"))
        compopt -o filenames 2>/dev/null
        return
        ;;
    --task)
        COMPREPLY=($(compgen -W "$(_jobctl_tasks)" -- "$cur"))
        return
        ;;
    --after)
        COMPREPLY=($(compgen -W "$(_jobctl_ids)" -- "$cur"))
        return
        ;;
    --param | --label | --env | --priority | --timeout | --wait-timeout | --limit | \
        --not-before | --retries | --idempotency-key | --token)
        return
        ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$global" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    local opts=""
    case $cmd in
    submit)
        opts="--executor --param --params --priority --timeout --label --after --not-before"
        opts+=" --retries --batch --wait --wait-timeout --idempotency-key"
        ;;
    run) opts="--timeout --env --cwd --stdin-file --priority --label --print-id --idempotency-key --" ;;
    wait) opts="--all --any --first-failure --timeout" ;;
    result) opts="--timeout" ;;
    output) opts="--stderr --follow" ;;
    list) opts="--state --task --label --limit" ;;
    token) opts="--file" ;;
    watch) opts="--label" ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts --url --json --help" -- "$cur"))
        return
    fi

    case $cmd in
    help)
        ((cword == cmd_at + 1)) &&
            COMPREPLY=($(compgen -W "${commands% help}" -- "$cur"))
        ;;
    submit)
        # The task is the first argument after `submit`; --batch FILE
        # takes its place.
        local have_task=0
        for ((i = cmd_at + 1; i < cword; i++)); do
            case ${words[i]} in
            --wait | --json) ;;
            --batch | --batch=*) have_task=1 ;;
            -*) ((i++)) ;;
            *) have_task=1 ;;
            esac
        done
        ((have_task)) || COMPREPLY=($(compgen -W "$(_jobctl_tasks)" -- "$cur"))
        ;;
    status | wait | watch | cancel)
        COMPREPLY=($(compgen -W "$(_jobctl_ids)" -- "$cur"))
        ;;
    result | output)
        local have_id=0
        for ((i = cmd_at + 1; i < cword; i++)); do
            case ${words[i]} in
            --timeout) ((i++)) ;;
            -*) ;;
            *) have_id=1 ;;
            esac
        done
        ((have_id)) || COMPREPLY=($(compgen -W "$(_jobctl_ids)" -- "$cur"))
        ;;
    run)
        # The command itself.
        COMPREPLY=($(compgen -c -- "$cur"))
        ;;
    token)
        # token new NAME ROLE
        local n=0
        for ((i = cmd_at + 1; i < cword; i++)); do
            case ${words[i]} in
            --file) ((i++)) ;;
            -*) ;;
            *) ((n++)) ;;
            esac
        done
        case $n in
        0) COMPREPLY=($(compgen -W "new" -- "$cur")) ;;
        2) COMPREPLY=($(compgen -W "read submit admin" -- "$cur")) ;;
        esac
        ;;
    esac
} &&
    complete -F _jobctl jobctl
