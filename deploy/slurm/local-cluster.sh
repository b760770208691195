#!/usr/bin/env bash
# A one-host Slurm cluster to try the recipes on (and the cluster of the opt-in engine test):
# munged, slurmctld and slurmd run as the current user (root), without systemd, with every
# file (key, sockets, state, spool, logs, slurm.conf) under DIR and on free ports, so nothing
# under /etc or /var is touched and an existing cluster on the machine is left alone.
#
#   deploy/slurm/local-cluster.sh start DIR   # prints `export SLURM_CONF=DIR/slurm.conf`
#   deploy/slurm/local-cluster.sh stop DIR    # cancels its jobs, stops exactly its daemons
#
# Needs Debian's `slurmctld slurmd slurm-client munge` packages (Slurm 22.05 on bookworm).
# `stop` also ends any process left over from the cluster's jobs (found by the SLURM_CONF in
# its environment), so the machine is left as it was found.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
action=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
conf=$dir/slurm.conf
node=tenantsim-node

# A TCP port nothing listens on (bash's /dev/tcp: a refused connection means free).
free_port() {
    local port
    for port in $(seq "$1" "$(($1 + 200))"); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "no free port from $1" >&2
    exit 1
}

# Processes started for this cluster: the daemons and their children carry SLURM_CONF=$conf.
cluster_pids() {
    local entry pid
    for entry in /proc/[0-9]*; do
        pid=${entry#/proc/}
        [ "$pid" != "$$" ] || continue
        if { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$conf"; then
            echo "$pid"
        fi
    done
}

stop_pidfile() {
    local file=$1 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

start() {
    for tool in munged mungekey slurmctld slurmd sbatch; do
        command -v "$tool" >/dev/null || {
            echo "$tool not found: apt-get install slurmctld slurmd slurm-client munge" >&2
            exit 1
        }
    done
    mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
    chmod 700 "$dir/munge"
    export SLURM_CONF=$conf
    [ -f "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key"
    chmod 600 "$dir/munge/munge.key"
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed"
    local ctld_port slurmd_port cpus memory
    ctld_port=$(free_port 26817)
    slurmd_port=$(free_port $((ctld_port + 1)))
    cpus=$(nproc)
    memory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
    cat >"$conf" <<EOF
# A one-host cluster written by deploy/slurm/local-cluster.sh; everything lives in $dir.
ClusterName=tenantsim
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$node NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    slurmctld -f "$conf" -c
    slurmd -f "$conf" -N "$node"
    for _ in $(seq 150); do
        if sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; then
            echo "export SLURM_CONF=$conf"
            return
        fi
        sleep 0.2
    done
    echo "the cluster did not come up within 30 s; logs in $dir/log" >&2
    sinfo -N >&2 || true
    exit 1
}

stop() {
    export SLURM_CONF=$conf
    if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
        scancel --full --user "$(id -un)" 2>/dev/null || true
        for _ in $(seq 50); do
            [ -z "$(squeue -h 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    stop_pidfile "$dir/munge/munged.pid"
    local pids
    pids=$(cluster_pids)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086 # one pid per word
        kill -KILL $pids 2>/dev/null || true
    fi
}

case $action in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
