#!/usr/bin/env bash
# Runs a sharded tenantsim sweep on Kubernetes: the shared results volume, the Indexed Job of
# shards, then (once every index has completed) the merge Job; prints the merge's log (the
# sweep's summary with the failing seeds' repro commands) and exits with the merge's status:
# 0 pass, 1 a seed failed, 4 inconclusive, 2 the shards do not make one sweep; 3 when the
# sweep Job itself failed (a shard that could not run; see `kubectl logs`).
#
#   deploy/kubernetes/run.sh [TIMEOUT_SECONDS]     # default 3600; uses kubectl's context
#
# Edit SCENARIO, SEEDS, SHARDS (= completions) in sweep-job.yaml and SHARDS in merge-job.yaml
# first. The results stay on the volume: /results/merged/ holds sweep.json, summary.md and
# junit.xml.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
timeout=${1:-3600}

# Waits until the Job's Complete or Failed condition is true; prints which.
wait_job() {
    local job=$1 waited=0 state
    while [ "$waited" -lt "$timeout" ]; do
        state=$(kubectl get job "$job" \
            -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{"\n"}{end}' |
            grep -xE 'Complete|Failed' | head -n 1 || true)
        if [ -n "$state" ]; then
            echo "$state"
            return
        fi
        sleep 5
        waited=$((waited + 5))
    done
    echo "Timeout"
}

kubectl apply -f "$here/results-pvc.yaml"
kubectl delete job tenantsim-sweep tenantsim-merge --ignore-not-found --wait=true
kubectl apply -f "$here/sweep-job.yaml"
state=$(wait_job tenantsim-sweep)
echo "sweep job: $state"
if [ "$state" != Complete ]; then
    kubectl logs job/tenantsim-sweep --all-containers --tail=20 || true
    exit 3
fi
kubectl apply -f "$here/merge-job.yaml"
state=$(wait_job tenantsim-merge)
echo "merge job: $state"
kubectl logs job/tenantsim-merge || true
code=$(kubectl get pods -l job-name=tenantsim-merge \
    -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}')
exit "${code:-3}"
