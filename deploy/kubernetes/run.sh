#!/usr/bin/env bash
# Runs one ssebench run as SHARDS pods of a Kubernetes Indexed Job (job.yaml beside this script), then merges the
# shards' reports into the one run's report:
#
#   run.sh [options] SHARDS IMAGE URL [--] [RUN_FLAGS...]
#
#   run.sh 4 registry.example/ssebench:1 http://sse.example/events -c 80000 -d 5m --connect-rate 4000
#
# RUN_FLAGS are `ssebench run` flags for the whole run (they are split over the shards by --shard): -c, -n,
# --stages, --arrival-rate and the rest, but not --threads (--cpus sets it) nor --shard, --start-at or --json
# (set here). Options:
#
#   --start-delay S   every shard starts its clock S seconds after the Job is applied, so that pods scheduled and
#                     pulled apart start together (default 60; a shard that comes later starts at once, and its
#                     report's start_at.late_us says by how much)
#   --cpus N          whole CPUs per pod, requested and limited, and ssebench's --threads (default 2)
#   --memory Q        memory per pod, requested and limited (default 512Mi; job.yaml has the arithmetic)
#   --name NAME       the Job's name (default ssebench-YYYYMMDD-HHMMSS, UTC)
#   --namespace NS    where to run it (default: kubectl's current namespace)
#   --out DIR         where the shards' logs and reports and the merged report go (default ./NAME)
#   --timeout S       give up waiting this many seconds after the start (default 3600)
#   --dry-run         print the filled manifest and stop: nothing is applied
#
# Needs kubectl, and ssebench on PATH (or $SSEBENCH) for the merge. Exits with the merge's code: 0, or 1 when an
# --slo failed over the merged run; 2 for bad usage or a Job that failed.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}
die() {
    echo "run.sh: $*" >&2
    exit 2
}

start_delay_s=60 cpus=2 memory=512Mi name="" namespace="" out="" timeout_s=3600 dry_run=0
while [ $# -gt 0 ]; do
    case "$1" in
        --start-delay) start_delay_s=${2:?--start-delay needs seconds}; shift 2 ;;
        --cpus) cpus=${2:?--cpus needs a number}; shift 2 ;;
        --memory) memory=${2:?--memory needs a quantity}; shift 2 ;;
        --name) name=${2:?--name needs a name}; shift 2 ;;
        --namespace) namespace=${2:?--namespace needs a namespace}; shift 2 ;;
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h | --help) usage ;;
        --) shift; break ;;
        -*) die "unknown option $1 (before SHARDS; --help lists them)" ;;
        *) break ;;
    esac
done
[ $# -ge 3 ] || usage
shards=$1 image=$2 url=$3
shift 3
[ "${1:-}" = "--" ] && shift
run_flags=("$@")

[[ $shards =~ ^[1-9][0-9]*$ ]] || die "SHARDS must be a positive whole number, not '$shards'"
[[ $start_delay_s =~ ^[0-9]+$ ]] || die "--start-delay must be whole seconds, not '$start_delay_s'"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "--timeout must be whole seconds, not '$timeout_s'"
# Whole CPUs: the static CPU manager policy gives exclusive cores only to whole-CPU Guaranteed pods, and
# --threads takes a count.
[[ $cpus =~ ^[1-9][0-9]*$ ]] || die "--cpus must be a whole number of CPUs, not '$cpus'"
[[ $memory =~ ^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$ ]] || die "--memory must be a quantity such as 512Mi, not '$memory'"
name=${name:-ssebench-$(date -u +%Y%m%d-%H%M%S)}
# Pods are named NAME-INDEX-xxxxx and their hostnames NAME-INDEX, which must stay a DNS label (63 characters).
[[ $name =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ && ${#name} -le 50 ]] ||
    die "--name must be lower-case letters, digits and '-', at most 50 characters, not '$name'"
for flag in "${run_flags[@]}"; do
    case "$flag" in
        -t | --threads | --threads=* | --shard | --shard=* | --shards | --shards=* | --start-at | --start-at=* | --json | --json=*)
            die "$flag is set by run.sh (--cpus sets --threads); leave it out of RUN_FLAGS" ;;
    esac
done

# A YAML double-quoted scalar of $1. In container args and env, Kubernetes expands $(VAR) and turns $$ into $, so
# a value from the user has each $ doubled: it reaches ssebench as typed.
quote_arg() {
    local v=$1
    [[ $v != *[[:cntrl:]]* ]] || die "a control character (newline, tab) in '$v' cannot be passed"
    v=${v//\\/\\\\}
    v=${v//\"/\\\"}
    v=${v//\$/\$\$}
    printf '"%s"' "$v"
}

# Refused here, in the main shell: `quote_arg` runs inside command substitutions, where its `die` would only end the
# subshell and leave an empty argument in the manifest.
for value in "$url" "$image" "${run_flags[@]}"; do
    [[ $value != *[[:cntrl:]]* ]] || die "a control character (newline, tab) in '$value' cannot be passed"
done

start_at=$(date -u -d "+$start_delay_s seconds" +%Y-%m-%dT%H:%M:%SZ)

# Fills the placeholders in bash, not sed: a URL or flag holding '&', '|' or '\' would be read by sed as part of
# its own syntax. Each value is quoted here, and the template's quotes around a placeholder are dropped with it.
fill() {
    local line flag indent
    # Bash 5.2 reads an unquoted '&' in a substitution's replacement as the match; the replacements below are
    # quoted, and this keeps an older or newer default from mattering.
    shopt -u patsub_replacement 2>/dev/null || true
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line =~ ^([[:space:]]*)\$\{RUN_FLAGS\}$ ]]; then
            indent=${BASH_REMATCH[1]}
            for flag in "${run_flags[@]}"; do
                printf '%s- %s\n' "$indent" "$(quote_arg "$flag")"
            done
            continue
        fi
        line=${line//'"${NAME}"'/"\"$name\""}
        line=${line//'"${IMAGE}"'/"$(quote_arg "$image")"}
        line=${line//'"${URL}"'/"$(quote_arg "$url")"}
        line=${line//'"${START_AT}"'/"\"$start_at\""}
        line=${line//'"${SHARDS}"'/"\"$shards\""}
        line=${line//'${SHARDS}'/"$shards"}
        line=${line//'"${CPUS}"'/"\"$cpus\""}
        line=${line//'"${MEMORY}"'/"\"$memory\""}
        printf '%s\n' "$line"
    done <"$(dirname "$0")/job.yaml"
}
manifest=$(fill)
if [[ $manifest =~ \$\{[A-Z_]+\} ]]; then
    die "job.yaml has a placeholder run.sh does not fill: ${BASH_REMATCH[0]}"
fi
if [ "$dry_run" = 1 ]; then
    printf '%s\n' "$manifest"
    exit 0
fi

command -v kubectl >/dev/null || die "kubectl is not on PATH"
ssebench=${SSEBENCH:-ssebench}
command -v "$ssebench" >/dev/null || die "no ssebench to merge with: put it on PATH or set SSEBENCH"
kubectl=(kubectl)
[ -n "$namespace" ] && kubectl+=(--namespace "$namespace")
out=${out:-./$name}
mkdir -p "$out"

printf '%s\n' "$manifest" >"$out/job.yaml"
"${kubectl[@]}" apply -f "$out/job.yaml"
echo "run.sh: $shards shards start at $start_at; waiting for job/$name" >&2

# Polls the Job's conditions rather than `kubectl wait --for=condition=complete`, which waits out its whole
# timeout when the Job fails instead.
deadline_s=$(($(date +%s) + start_delay_s + timeout_s))
while :; do
    state=$("${kubectl[@]}" get job "$name" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')
    case " $state " in
        *" Complete "*) break ;;
        *" Failed "*)
            "${kubectl[@]}" get pods -l "ssebench/run=$name" >&2 || true
            die "job/$name failed (a shard did not finish: \`kubectl logs\` on the pod above says why); nothing merged"
            ;;
    esac
    if [ "$(date +%s)" -ge "$deadline_s" ]; then
        die "job/$name has not finished ${timeout_s}s after its start; it is still running (--timeout)"
    fi
    sleep 5
done

# Each shard's report, cut out of its pod's log (job.yaml prints it there between two marker lines). The index
# comes from the pod's annotation, which every Kubernetes version with Indexed Jobs sets.
pods=$("${kubectl[@]}" get pods -l "ssebench/run=$name" --field-selector=status.phase=Succeeded \
    -o jsonpath='{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{" "}{.metadata.name}{"\n"}{end}')
files=()
while read -r index pod; do
    [ -n "$pod" ] || continue
    "${kubectl[@]}" logs "$pod" >"$out/shard-$index.log"
    sed -n '/^--- ssebench shard json.gz.base64 begin ---$/,/^--- ssebench shard json.gz.base64 end ---$/{//!p}' \
        "$out/shard-$index.log" | base64 -d | gunzip >"$out/shard-$index.json" ||
        die "pod $pod's log ($out/shard-$index.log) holds no complete report"
    files+=("$out/shard-$index.json")
done <<<"$pods"
# merge itself refuses a missing or doubled shard and names it.
echo "run.sh: merging ${#files[@]} shard reports into $out/merged.json" >&2
exec "$ssebench" merge "${files[@]}" --json "$out/merged.json"
