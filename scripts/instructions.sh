#!/usr/bin/env bash
# Instructions per operation, stockroom against the per-SKU mutex baseline,
# counted by callgrind (deterministic, unlike time on a shared machine).
#
#   scripts/instructions.sh            quick scenarios (< 5 min)
#   scripts/instructions.sh --full     also the 1M-SKU and 100k-lot rows
#   scripts/instructions.sh take_1 hold_commit   only these scenarios
#   scripts/instructions.sh receive_10k:500      one scenario at another n
#                                                (a growth scenario's window
#                                                moves with n: see --list)
#   STOCKROOM_FEATURES=journal scripts/instructions.sh hold_commit_batched
#                                                a journaled scenario
#
# Every scenario of benches/instructions.rs runs under
# `valgrind --tool=callgrind` twice, with n and 2n measured iterations after
# the same setup and warm-up; instructions per operation is
# (I(2n) - I(n)) / n, so whatever is done once cancels out. Only the
# measured loop is counted (--toggle-collect on `measured`; on x86_64 the
# bench also switches instrumentation on and off around it). Allocations
# per operation come from the bench's counting allocator in a native run.
# The table is markdown, on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

full=0
only=()
for arg in "$@"; do
    case "$arg" in
        --full) full=1 ;;
        -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
        -*) echo "unknown option $arg" >&2; exit 2 ;;
        *) only+=("$arg") ;;
    esac
done

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind is missing: installing it (Debian package)" >&2
    apt-get update >&2 && apt-get install -y valgrind >&2
fi

# Features to build with: `STOCKROOM_FEATURES=journal` adds the journaled
# scenarios (`hold_commit_batched`, `hold_release_batched`).
features=(${STOCKROOM_FEATURES:+--features "$STOCKROOM_FEATURES"})
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
echo "building benches/instructions.rs (release${STOCKROOM_FEATURES:+, features $STOCKROOM_FEATURES})" >&2
cargo bench -p stockroom --no-run --bench instructions "${features[@]}" --message-format=json 2>/dev/null >"$target_dir/instructions-build.json" \
    || { cargo bench -p stockroom --no-run --bench instructions "${features[@]}"; exit 1; }
bench=$(sed -n 's/.*"executable":"\([^"]*instructions-[^"]*\)".*/\1/p' "$target_dir/instructions-build.json" | tail -1)
[ -x "$bench" ] || { echo "could not find the instructions bench binary" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

instr_flags=(--instr-atstart=yes)
[ "$(uname -m)" = x86_64 ] && instr_flags=(--instr-atstart=no)

# Instructions counted in one run of `$1` (engine/scenario) with `$2` iterations.
count() {
    local file="$out/$(echo "$1" | tr / _).$2"
    valgrind --tool=callgrind "${instr_flags[@]}" --collect-atstart=no --toggle-collect='*measured*' \
        --callgrind-out-file="$file" "$bench" "$1" "$2" >/dev/null 2>"$file.log" \
        || { echo "valgrind failed on $1 $2:" >&2; cat "$file.log" >&2; exit 1; }
    local total
    total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$file" | tail -1)
    [ -n "$total" ] || { echo "no instruction total in $file" >&2; exit 1; }
    echo "$total"
}

per_op() { # engine/scenario n -> instructions per op
    local one two
    one=$(count "$1" "$2")
    two=$(count "$1" $(($2 * 2)))
    awk -v a="$one" -v b="$two" -v n="$2" 'BEGIN { printf "%.0f", (b - a) / n }'
}

allocs() { # engine/scenario n -> "allocs reallocs bytes" per op
    "$bench" --allocs "$1" "$2" | awk -F'\t' '{ split($2, a, " "); split($3, r, " "); split($4, b, " "); print a[2], r[2], b[2] }'
}

started=$SECONDS
echo "| scenario | n | stockroom instr/op | mutex instr/op | stockroom ÷ mutex | stockroom allocs/op (reallocs) | stockroom bytes/op | mutex allocs/op | mutex bytes/op |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
while IFS=$'\t' read -r name n tier about; do
    if [ ${#only[@]} -gt 0 ]; then
        keep=0
        for o in "${only[@]}"; do
            [ "${o%%:*}" = "$name" ] || continue
            keep=1
            [ "$o" = "${o#*:}" ] || n="${o#*:}"
        done
        [ $keep = 1 ] || continue
    elif [ "$tier" = full ] && [ $full = 0 ]; then
        continue
    fi
    echo "  $name ($about) at $((SECONDS - started))s" >&2
    ours=$(per_op "stockroom/$name" "$n")
    theirs=$(per_op "mutex/$name" "$n")
    read -r oa or ob <<<"$(allocs "stockroom/$name" "$n")"
    read -r ta tr tb <<<"$(allocs "mutex/$name" "$n")"
    ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    echo "| $name | $n | $ours | $theirs | $ratio | $oa ($or) | $ob | $ta ($tr) | $tb |"
done < <("$bench" --list)
echo >&2
echo "done in $((SECONDS - started))s; valgrind $(valgrind --version | sed 's/valgrind-//'), $(rustc --version)" >&2
