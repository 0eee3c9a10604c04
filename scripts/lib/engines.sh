# Helpers for the scripts that run Docker engines of their own in network namespaces (scripts/cluster.sh,
# scripts/node2.sh). Sourced, not run. The sourcing script defines DIR (its state directory), die and
# sock_of NODE (the node's engine socket) first.

dk() { local node=$1; shift; docker -H "unix://$(sock_of "$node")" "$@"; }
pid_of() { cat "$DIR/$1/docker.pid" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
answers() { dk "$1" info --format '{{.ServerVersion}}' >/dev/null 2>&1; }
swarm_state() { dk "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }

wait_until() {  # seconds, description, command...
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || die "timed out after ${seconds}s waiting for $what"
        sleep 0.25
    done
}

pids_under() {  # pids whose command line names our directory (our engines' containerd and shims, and the like)
    local pid
    for pid in /proc/[0-9]*; do
        pid=${pid#/proc/}
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/" && echo "$pid"
    done
    return 0
}

running() {  # alive and not a zombie (an engine whose starting script has exited has no parent to reap it)
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

end_pids() {  # grace seconds, pids...: TERM, wait until they have exited, KILL what is left at the deadline
    local deadline=$((SECONDS + $1)) pid; shift
    kill "$@" 2>/dev/null || true
    for pid in "$@"; do
        while running "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
        if running "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    done
    return 0
}
