# bash completion for forklift(1). Installed as
# $datadir/bash-completion/completions/forklift (bash-completion loads it on first use);
# or `source completions/forklift.bash` by hand.
#
# Commands and options come from the installed binary's own --help (so they are never out
# of date), task names for `run --only` from `forklift __complete tasks FLOW`, run ids for
# `run --resume`, `report` and `dlq` from `forklift runs --json`.

# The commands `forklift --help` lists.
_forklift_commands() {
  "$1" --help 2>/dev/null | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }'
}

# "NAME<tab>TAKES<tab>DESCRIPTION" per option of `forklift CMD... --help`: TAKES is "-" for a flag, "FILE" for
# an option taking a file, "VALUE" for one taking something else (a number, a duration),
# or the choices CLI11 prints as {a,b,c}.
_forklift_option_table() {
  local prog=$1
  shift
  "$prog" "$@" --help 2>/dev/null | awk '
    /^  ?( )?( )?[-:]/ {
      line = $0; sub(/^ +/, "", line)
      term = line; i = index(line, "  "); if (i) term = substr(line, 1, i - 1)
      n = split(term, w, " "); names = ""; takes = "-"; choices = ""
      for (k = 1; k <= n; k++) {
        if (w[k] ~ /^--?[A-Za-z0-9]/) {
          m = split(w[k], parts, ",")
          for (j = 1; j <= m; j++) if (parts[j] ~ /^--?[A-Za-z0-9]/) names = names " " parts[j]
        } else if (names != "" && takes == "-" && w[k] != "REQUIRED") {
          # The first word after the names is the value: a file for TEXT (CLI11) and
          # FILE, PATH, DIR (map); nothing to offer for a number or a duration.
          takes = (w[k] ~ /^(TEXT|FILE|PATH|DIR)/) ? "FILE" : "VALUE"
          if (match(w[k], /\{[^}]*\}/)) choices = substr(w[k], RSTART + 1, RLENGTH - 2)
        }
      }
      if (choices != "") { gsub(/,/, " ", choices); takes = choices }
      desc = i ? substr(line, i) : ""; sub(/^ +/, "", desc)
      n = split(names, nm, " ")
      for (k = 1; k <= n; k++) print nm[k] "\t" takes "\t" desc
    }'
}

# Run ids in the journal `forklift runs` finds from the words typed so far.
_forklift_run_ids() {
  local prog=$1 kind=$2
  shift 2
  "$prog" runs --kind "$kind" --limit 50 --json "$@" 2>/dev/null |
    sed -n 's/^{"run_id":"\([^"]*\)".*/\1/p; t; s/.*"run_id":"\([^"]*\)".*/\1/p'
}

_forklift() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion -n = || return
  else
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
  local prog=${words[0]}
  if [[ $cword -eq 1 ]]; then
    COMPREPLY=($(compgen -W "$(_forklift_commands "$prog") help" -- "$cur"))
    return
  fi
  local cmd=${words[1]} sub=""
  case $cmd in
    help)
      [[ $cword -eq 2 ]] && COMPREPLY=($(compgen -W "$(_forklift_commands "$prog")" -- "$cur"))
      return ;;
    dlq)
      if [[ $cword -eq 2 ]]; then
        COMPREPLY=($(compgen -W "list show retry discard" -- "$cur"))
        return
      fi
      sub=${words[2]} ;;
  esac

  # The flow file, --flow and --journal typed so far: they say which runs and tasks exist.
  local flow="" journal_args=() i
  for ((i = 2; i < cword; i++)); do
    case ${words[i]} in
      --flow) flow=${words[i + 1]}; journal_args+=(--flow "$flow") ;;
      --journal) journal_args+=(--journal "${words[i + 1]}") ;;
      *.toml) [[ $cmd == run && -z $flow ]] && flow=${words[i]} ;;
    esac
  done
  if [[ $cmd == run && -n $flow ]]; then
    journal_args=(--flow "$flow" "${journal_args[@]}")
  fi

  case $cmd:$prev in
    run:--only)
      [[ -n $flow ]] && COMPREPLY=($(compgen -W "$("$prog" __complete tasks "$flow" 2>/dev/null)" -- "$cur"))
      return ;;
    run:--resume)
      COMPREPLY=($(compgen -W "last $(_forklift_run_ids "$prog" flow "${journal_args[@]}")" -- "$cur"))
      return ;;
  esac

  local table
  table=$(_forklift_option_table "$prog" "$cmd" ${sub:+"$sub"})
  local takes
  takes=$(awk -F '\t' -v o="$prev" '$1 == o { print $2; exit }' <<<"$table")
  if [[ -n $takes && $takes != "-" ]]; then
    if [[ $takes == FILE ]]; then
      COMPREPLY=($(compgen -f -- "$cur"))
      compopt -o filenames 2>/dev/null
    elif [[ $takes == VALUE ]]; then
      COMPREPLY=()
    else
      COMPREPLY=($(compgen -W "$takes" -- "$cur"))
    fi
    return
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(cut -f1 <<<"$table")" -- "$cur"))
    return
  fi
  # Positional arguments.
  case $cmd:$sub in
    report:|dlq:show|dlq:retry|dlq:discard|dlq:list)
      local kind=flow
      [[ $cmd == dlq ]] && kind=load
      COMPREPLY=($(compgen -W "$(_forklift_run_ids "$prog" "$kind" "${journal_args[@]}")" -- "$cur"))
      ;;
    run:)
      COMPREPLY=($(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur"))
      compopt -o filenames 2>/dev/null
      ;;
    *)
      COMPREPLY=($(compgen -f -- "$cur"))
      compopt -o filenames 2>/dev/null
      ;;
  esac
}
complete -F _forklift forklift
