#!/usr/bin/env bash
# Submits a sharded tenantsim sweep to Slurm: a job array of N shards and a merge job that
# runs when every shard has succeeded (--dependency=afterok) and fails on a failing verdict.
#
#   deploy/slurm/submit.sh [--wait] OUT N SCENARIO.toml A..B [--set PATH=VALUE]...
#
# Prints the two job ids. Logs go to OUT/logs/ (shard-I.out, merge.out), results to
# OUT/shard-I/ and OUT/merged/. With --wait, it returns when the merge job ends, with its exit
# status (0 pass, 1 failing seeds, 2 the shards do not make one sweep, 4 inconclusive), or 3
# when the merge never ran (a shard failed, so afterok was never satisfied) or was killed.
# Extra sbatch options (partition, account, time limit) go in $SBATCH_ARRAY_OPTIONS and
# $SBATCH_MERGE_OPTIONS; `simulate` comes from $SIMULATE, else from PATH on the nodes.
set -euo pipefail

wait=false
if [ "${1:-}" = --wait ]; then
    wait=true
    shift
fi
if [ $# -lt 4 ]; then
    echo "usage: $0 [--wait] OUT N SCENARIO.toml A..B [simulate sweep options]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
out=$1
shards=$2
mkdir -p "$out/logs"

# shellcheck disable=SC2086 # the option variables hold several words on purpose
array=$(sbatch --parsable ${SBATCH_ARRAY_OPTIONS:-} --array="0-$((shards - 1))" \
    --output="$out/logs/shard-%a.out" "$here/sweep-array.sbatch" "$@")
array=${array%%;*}
echo "array job $array"
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_MERGE_OPTIONS:-} --dependency="afterok:$array" \
    --kill-on-invalid-dep=yes --output="$out/logs/merge.out" "$here/merge.sbatch" "$out" "$shards")
merge=${merge%%;*}
echo "merge job $merge"
$wait || exit 0

# Wait for the merge job's end by its state, not by `sbatch --wait`: a merge job cancelled
# because a shard failed never ran, and `sbatch --wait` reports that as exit 0.
while true; do
    job=$(scontrol show job --oneline "$merge")
    state=$(grep -o 'JobState=[A-Z_]*' <<<"$job" | cut -d= -f2)
    case $state in
        PENDING | CONFIGURING | RUNNING | COMPLETING | SUSPENDED | REQUEUED | RESIZING) sleep 5 ;;
        *) break ;;
    esac
done
code=$(grep -o ' ExitCode=[0-9]*' <<<"$job" | cut -d= -f2)
echo "merge job $merge: $state, exit code ${code:-?} (log: $out/logs/merge.out)"
case $state in
    COMPLETED | FAILED) exit "${code:-3}" ;;
    # Cancelled (a shard failed: DependencyNeverSatisfied), timed out, lost its node...
    *) grep -o 'Reason=[^ ]*' <<<"$job" >&2 || true; exit 3 ;;
esac
