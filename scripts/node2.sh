#!/usr/bin/env bash
# An isolated two-node Docker swarm on this machine, for the multi-node tests (tests/node2/).
#
# Two extra engines, each in its own network namespace, joined by one veth pair (no host interface, no host
# bridge, no route on the host): a manager at 10.99.0.2 and a worker at 10.99.0.3. Each engine has its own
# data root, exec root, socket, pidfile and cgroup parent. The machine's shared engine and its swarm are never
# touched.
#
# Usage: scripts/node2.sh up | down | stop mgr|wkr | status | env
#   up      start both engines, init the swarm on the manager, join the worker, label the nodes
#           (manager: xjh.node=manager, worker: xjh.node=worker), put a tiny image on both (docker save | load)
#   down    remove everything `up` made: engines, their containers and mounts, namespaces, cgroups, state
#   stop ROLE   stop one engine (mgr or wkr) without leaving the swarm, as a crashed or powered-off node;
#               `up` starts it again with the same state
#   status  what is running
#   env     print the variables the tests read (source it: eval "$(scripts/node2.sh env)")
#
# Override the state directory with XJH_NODE2_DIR (default /var/tmp/xjh-node2).
set -euo pipefail

NAME=xjh-n2
DIR=${XJH_NODE2_DIR:-/var/tmp/xjh-node2}
SUBNET_PREFIX=10.99.0
MGR_ADDR=$SUBNET_PREFIX.2
WKR_ADDR=$SUBNET_PREFIX.3
IMAGE=xjh-node2/tiny:1
ROLES=(mgr wkr)

say() { printf '  - %s\n' "$*"; }
die() { printf 'node2: %s\n' "$*" >&2; exit 1; }

netns_of() { echo "$NAME-$1"; }
addr_of() { if [ "$1" = mgr ]; then echo "$MGR_ADDR"; else echo "$WKR_ADDR"; fi; }
sock_of() { echo "$DIR/$1/docker.sock"; }
# shellcheck source=scripts/lib/engines.sh
source "$(dirname "$0")/lib/engines.sh"

make_namespaces() {
    for role in "${ROLES[@]}"; do
        ip netns list | grep -qw "$(netns_of "$role")" || ip netns add "$(netns_of "$role")"
        ip -n "$(netns_of "$role")" link set lo up
    done
    if ! ip -n "$(netns_of mgr)" link show xjhn2m >/dev/null 2>&1; then
        say "veth pair $(netns_of mgr)/xjhn2m ($MGR_ADDR) <-> $(netns_of wkr)/xjhn2w ($WKR_ADDR)"
        # created inside the manager's namespace, so no interface ever appears on the host
        ip -n "$(netns_of mgr)" link add xjhn2m type veth peer name xjhn2w netns "$(netns_of wkr)"
        ip -n "$(netns_of mgr)" addr add "$MGR_ADDR/24" dev xjhn2m
        ip -n "$(netns_of wkr)" addr add "$WKR_ADDR/24" dev xjhn2w
        ip -n "$(netns_of mgr)" link set xjhn2m up
        ip -n "$(netns_of wkr)" link set xjhn2w up
    fi
}

start_engine() {
    local role=$1 state=$DIR/$1
    mkdir -p "$state/data" "$state/exec"
    if alive "$role" && answers "$role"; then
        say "engine $role answers"
        return
    fi
    say "starting engine $role in netns $(netns_of "$role") (log: $state/dockerd.log)"
    # nsenter, not `ip netns exec`: the latter remounts /sys and dockerd then fails ("Devices cgroup isn't
    # mounted"). Only the network namespace is changed; the engine keeps the host's mounts and cgroups.
    setsid nsenter --net="/var/run/netns/$(netns_of "$role")" dockerd \
        --data-root "$state/data" --exec-root "$state/exec" \
        -H "unix://$(sock_of "$role")" --pidfile "$state/docker.pid" \
        --cgroup-parent "$NAME-$role" --storage-driver overlay2 \
        >"$state/dockerd.log" 2>&1 </dev/null &
    wait_until 60 "engine $role to answer (see $state/dockerd.log)" answers "$role"
}


form_swarm() {
    if [ "$(swarm_state mgr)" != active ]; then
        say "swarm init on the manager, advertising $MGR_ADDR"
        dk mgr swarm init --advertise-addr "$MGR_ADDR" --listen-addr "$MGR_ADDR:2377" >/dev/null
    fi
    if [ "$(swarm_state wkr)" != active ]; then
        say "worker joins $MGR_ADDR:2377"
        dk wkr swarm join --advertise-addr "$WKR_ADDR" --listen-addr "$WKR_ADDR:2377" \
            --token "$(dk mgr swarm join-token -q worker)" "$MGR_ADDR:2377" >/dev/null
    fi
    wait_until 60 "both nodes to be ready" both_ready
    local mgr_id wkr_id
    mgr_id=$(dk mgr info --format '{{.Swarm.NodeID}}')
    wkr_id=$(dk wkr info --format '{{.Swarm.NodeID}}')
    # both engines report this machine's hostname: place by label, never by node.hostname
    dk mgr node update --label-add xjh.node=manager "$mgr_id" >/dev/null
    dk mgr node update --label-add xjh.node=worker --availability active "$wkr_id" >/dev/null
    say "nodes labelled: $mgr_id xjh.node=manager, $wkr_id xjh.node=worker"
}

both_ready() {
    [ "$(dk mgr node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$')" = 2 ]
}

tiny_image() {
    if dk mgr image inspect "$IMAGE" >/dev/null 2>&1 && dk wkr image inspect "$IMAGE" >/dev/null 2>&1; then
        say "image $IMAGE present on both engines"
        return
    fi
    say "image $IMAGE (the host's dash and sleep, ~2 MB) imported on the manager, copied to the worker"
    local files=(/bin/dash /bin/sleep /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2)
    local resolved=() f
    for f in "${files[@]}"; do resolved+=("$(readlink -f "$f")"); done
    local stage
    stage=$(mktemp -d)
    for f in "${files[@]}"; do
        mkdir -p "$stage$(dirname "$f")"
        cp -L "$f" "$stage$f"
    done
    mkdir -p "$stage/bin" && ln -sf dash "$stage/bin/sh"
    tar -C "$stage" -c . | dk mgr import --change 'CMD ["/bin/sleep", "3600"]' - "$IMAGE" >/dev/null
    rm -rf "$stage"
    dk mgr save "$IMAGE" | dk wkr load >/dev/null
}

up() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces and a Docker engine)"
    command -v dockerd >/dev/null || die "no dockerd on this machine; run scripts/engine.sh up first"
    mkdir -p "$DIR"
    chmod 0700 "$DIR"
    make_namespaces
    for role in "${ROLES[@]}"; do start_engine "$role"; done
    form_swarm
    tiny_image
    say "manager: DOCKER_HOST=unix://$(sock_of mgr)   worker: DOCKER_HOST=unix://$(sock_of wkr)"
}

# -- down ---------------------------------------------------------------------------------------------------------

halt_engine() {  # the engine goes away but stays a swarm member (a node that crashed or was switched off)
    local role=$1 pid
    pid=$(pid_of "$role")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || { say "engine $role is not running"; return; }
    say "stopping engine $role (pid $pid), keeping its swarm membership"
    end_pids 30 "$pid"
}

stop_engine() {
    local role=$1 pid
    pid=$(pid_of "$role")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        if answers "$role"; then
            # containers first, so the engine stops quickly and leaves no shim behind
            dk "$role" swarm leave --force >/dev/null 2>&1 || true
            local ids
            ids=$(dk "$role" ps -aq 2>/dev/null || true)
            [ -z "$ids" ] || dk "$role" rm -f $ids >/dev/null 2>&1 || true
        fi
        say "stopping engine $role (pid $pid)"
        end_pids 30 "$pid"
    fi
    return 0
}

down() {
    [ "$(id -u)" = 0 ] || die "needs root"
    for role in "${ROLES[@]}"; do stop_engine "$role"; done
    local leftover
    leftover=$(pids_under)
    if [ -n "$leftover" ]; then
        say "ending leftover processes of ours: $(echo $leftover)"
        end_pids 5 $leftover
    fi
    # mounts the engines made under our directories (overlay layers, netns files, shm), deepest first
    local m
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v d="$DIR/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
    for role in "${ROLES[@]}"; do
        ip netns list | grep -qw "$(netns_of "$role")" && ip netns del "$(netns_of "$role")"
        # the cgroups the engines' containers lived in
        local cg
        for cg in /sys/fs/cgroup/*/"$NAME-$role" /sys/fs/cgroup/"$NAME-$role"; do
            [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
        done
    done
    rm -rf "$DIR"
    say "node2 removed (namespaces, engines, cgroups, $DIR)"
}

status() {
    local role
    for role in "${ROLES[@]}"; do
        if alive "$role" && answers "$role"; then
            echo "$role: engine pid $(pid_of "$role"), netns $(netns_of "$role"), $(addr_of "$role"), swarm $(swarm_state "$role")"
        else
            echo "$role: not running"
        fi
    done
    if answers mgr; then dk mgr node ls; fi
}

env_vars() {
    echo "export XJH_NODE2_MANAGER=unix://$(sock_of mgr)"
    echo "export XJH_NODE2_WORKER=unix://$(sock_of wkr)"
    echo "export XJH_NODE2_IMAGE=$IMAGE"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    stop)
        case "${2:-}" in mgr|wkr) halt_engine "$2" ;; *) echo "usage: $0 stop mgr|wkr" >&2; exit 2 ;; esac ;;
    status) status ;;
    env) env_vars ;;
    *) echo "usage: $0 up | down | stop mgr|wkr | status | env" >&2; exit 2 ;;
esac
