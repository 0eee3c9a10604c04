#!/usr/bin/env bash
# A swarm of several nodes on this machine, as sites run the hub: three managers, two workers (one with a GPU),
# a private registry with TLS, PostgreSQL, the hub stack and an XNAT stand-in. For tests/multinode/ and for trying
# a multi-node deployment by hand. The machine's shared engine is only used to BUILD the images (then pushed to
# the cluster's registry); the cluster's engines are separate dockerds, each in its own network and mount
# namespace, with their own data roots under $XJC_CLUSTER_DIR.
#
#   scripts/cluster.sh up       namespaces and bridge, CA and registry, five engines, swarm, labels, images pushed,
#                               secrets, stack (hub + PostgreSQL), XNAT stand-in; idempotent
#   scripts/cluster.sh down     removes all of it: engines, containers, volumes, namespaces, registry, processes
#   scripts/cluster.sh status   what runs
#   scripts/cluster.sh env      variables for the tests and for `docker -H` (eval "$(scripts/cluster.sh env)")
#   scripts/cluster.sh stop NODE    stop a node's engine as a power cut would (it stays a swarm member)
#   scripts/cluster.sh start NODE   start it again with its state
#
# Network: one bridge (xjcbr0) in its own namespace (xjc-net) at 10.98.0.1, where the registry listens (:5000);
# managers m1..m3 at 10.98.0.11-13, workers w1 (gpu=2, see below) and w2 at 10.98.0.21-22; the host at 10.98.0.254 (one
# veth, xjch0), so the shared engine can push and the tests reach the hub. Nothing else on the host changes, but
# the registry's CA at /etc/docker/certs.d/10.98.0.1:5000/ (read by every engine on the machine; removed by down).
#
# Each engine's socket is /run/xjc-node/docker.sock inside its own mount namespace (so the stack's bind mount of
# "the node's Docker socket" names one path on every node, as on real machines), and
# $XJC_CLUSTER_DIR/NODE/sock/docker.sock from the host.
#
# Environment: XJC_CLUSTER_DIR (/var/tmp/xjc-cluster), XJC_SKIP_BUILD=1 (images already in the shared engine),
# XJH_HUB_IMAGE, XJH_SINGLEUSER_IMAGE, XJH_POSTGRES_IMAGE (local tags to build; default ...:xjc).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

NAME=xjc
DIR=${XJC_CLUSTER_DIR:-/var/tmp/xjc-cluster}
NET_NS=$NAME-net
BRIDGE=xjcbr0
HOST_IF=xjch0
SUBNET=10.98.0
BRIDGE_ADDR=$SUBNET.1
HOST_ADDR=$SUBNET.254
REGISTRY=$BRIDGE_ADDR:5000
CERTS_D=/etc/docker/certs.d/$REGISTRY
SOCK_DIR=/run/xjc-node  # inside each engine's mount namespace
NODES=(m1 m2 m3 w1 w2)
MANAGERS=(m1 m2 m3)
STACK=xjc
NETWORK=xjc-network
SECRETS_PREFIX=xjc
HUB_PORT=8000
STANDIN_PORT=18080
STANDIN_CONTROL_PORT=18081
export XJH_HUB_IMAGE=${XJH_HUB_IMAGE:-xnat-jupyterhub/hub:xjc}
export XJH_SINGLEUSER_IMAGE=${XJH_SINGLEUSER_IMAGE:-xnat-jupyterhub/singleuser:xjc}
export XJH_POSTGRES_IMAGE=${XJH_POSTGRES_IMAGE:-xnat-jupyterhub/postgres:xjc}
python=$repo/.venv/bin/python

step() { printf '\n==> %s\n' "$*"; }
say() { printf '  - %s\n' "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }

addr_of() {
    case "$1" in m1) echo $SUBNET.11 ;; m2) echo $SUBNET.12 ;; m3) echo $SUBNET.13 ;; w1) echo $SUBNET.21 ;;
        w2) echo $SUBNET.22 ;; *) die "no node $1 (nodes: ${NODES[*]})" ;; esac
}
netns_of() { echo "$NAME-$1"; }
sock_of() { echo "$DIR/$1/sock/docker.sock"; }
# shellcheck source=scripts/lib/engines.sh
source "$repo/scripts/lib/engines.sh"
registry_image() { echo "$REGISTRY/${1#*/}"; }  # xnat-jupyterhub/hub:xjc -> 10.98.0.1:5000/hub:xjc

# -- network ------------------------------------------------------------------------------------------------------

has_netns() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

make_network() {
    has_netns "$NET_NS" || ip netns add "$NET_NS"
    ip -n "$NET_NS" link set lo up
    if ! ip -n "$NET_NS" link show "$BRIDGE" >/dev/null 2>&1; then
        ip -n "$NET_NS" link add "$BRIDGE" type bridge
        ip -n "$NET_NS" addr add "$BRIDGE_ADDR/24" dev "$BRIDGE"
        ip -n "$NET_NS" link set "$BRIDGE" up
    fi
    if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
        ip -n "$NET_NS" link add "${HOST_IF}p" type veth peer name "$HOST_IF" netns 1
        ip -n "$NET_NS" link set "${HOST_IF}p" master "$BRIDGE" up
        ip addr add "$HOST_ADDR/24" dev "$HOST_IF"
        ip link set "$HOST_IF" up
    fi
    local node ns
    for node in "${NODES[@]}"; do
        ns=$(netns_of "$node")
        has_netns "$ns" || ip netns add "$ns"
        ip -n "$ns" link set lo up
        if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
            ip -n "$NET_NS" link add "$NAME$node" type veth peer name eth0 netns "$ns"
            ip -n "$NET_NS" link set "$NAME$node" master "$BRIDGE" up
            ip -n "$ns" addr add "$(addr_of "$node")/24" dev eth0
            ip -n "$ns" link set eth0 up
            ip -n "$ns" route add default via "$BRIDGE_ADDR"
        fi
    done
    say "bridge $BRIDGE in netns $NET_NS ($BRIDGE_ADDR), host $HOST_IF ($HOST_ADDR), nodes:" \
        "$(for n in "${NODES[@]}"; do printf '%s=%s ' "$n" "$(addr_of "$n")"; done)"
}

# -- registry -----------------------------------------------------------------------------------------------------

make_ca() {
    local pki=$DIR/pki
    if [ -s "$pki/registry.crt" ]; then say "CA and registry certificate present ($pki)"; return; fi
    mkdir -p "$pki" && chmod 0700 "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=xjc cluster CA" \
        -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$BRIDGE_ADDR" \
        -keyout "$pki/registry.key" -out "$pki/registry.csr" 2>/dev/null
    printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$BRIDGE_ADDR" >"$pki/registry.ext"
    openssl x509 -req -in "$pki/registry.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 30 -extfile "$pki/registry.ext" -out "$pki/registry.crt" 2>/dev/null
    chmod 0600 "$pki"/*.key
    say "made a CA and the registry's certificate for IP $BRIDGE_ADDR ($pki)"
}

registry_answers() { curl -sf --cacert "$DIR/pki/ca.crt" "https://$REGISTRY/v2/" >/dev/null 2>&1; }

start_registry() {
    command -v docker-registry >/dev/null || die "no docker-registry; apt-get install docker-registry"
    mkdir -p "$CERTS_D" "$DIR/registry/data"
    cp "$DIR/pki/ca.crt" "$CERTS_D/ca.crt"
    say "every engine trusts the CA for $REGISTRY ($CERTS_D/ca.crt)"
    if registry_answers; then say "registry answers at https://$REGISTRY"; return; fi
    cat >"$DIR/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
  tls:
    certificate: $DIR/pki/registry.crt
    key: $DIR/pki/registry.key
EOF
    setsid nsenter --net="/var/run/netns/$NET_NS" docker-registry serve "$DIR/registry/config.yml" \
        >"$DIR/registry/registry.log" 2>&1 </dev/null &
    echo $! >"$DIR/registry/pid"
    wait_until 30 "the registry (see $DIR/registry/registry.log)" registry_answers
    say "registry (Debian's docker-registry) at https://$REGISTRY, data in $DIR/registry/data"
}

# -- engines ------------------------------------------------------------------------------------------------------

start_engine() {
    local node=$1 state=$DIR/$1
    mkdir -p "$state/data" "$state/exec" "$state/sock" "$SOCK_DIR"
    if alive "$node" && answers "$node"; then say "engine $node answers"; return; fi
    local extra=()
    # Two GPUs on w1: the 20.10 engine's constraint enforcer rejects a task that reserves a node's whole discrete
    # generic resource ("assigned node no longer meets constraints"), so the last GPU can never be used.
    [ "$node" = w1 ] && extra+=(--node-generic-resource "gpu=${XJC_GPUS:-2}")
    # nsenter --net, not `ip netns exec` (which remounts /sys: "Devices cgroup isn't mounted"). A private mount
    # namespace puts this node's socket at $SOCK_DIR, and keeps the engine's mounts out of the host's table.
    setsid nsenter --net="/var/run/netns/$(netns_of "$node")" unshare --mount --propagation private \
        sh -c 'mount --bind "$1" "$2" && shift 2 && exec dockerd "$@"' sh "$state/sock" "$SOCK_DIR" \
        --data-root "$state/data" --exec-root "$state/exec" -H "unix://$SOCK_DIR/docker.sock" \
        --pidfile "$state/docker.pid" --cgroup-parent "$NAME-$node" --storage-driver overlay2 \
        --log-level warn --userland-proxy=false "${extra[@]}" \
        >"$state/dockerd.log" 2>&1 </dev/null &
}

start_engines() {
    local node t=$SECONDS
    for node in "$@"; do start_engine "$node"; done
    for node in "$@"; do wait_until 60 "engine $node (see $DIR/$node/dockerd.log)" answers "$node"; done
    say "engines $* answer ($((SECONDS - t))s); w1 advertises the generic resource gpu=${XJC_GPUS:-2}"
}

node_id() { dk "$1" info --format '{{.Swarm.NodeID}}'; }
all_ready() { [ "$(dk m1 node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$')" = ${#NODES[@]} ]; }

form_swarm() {
    if [ "$(swarm_state m1)" != active ]; then
        dk m1 swarm init --advertise-addr "$(addr_of m1)" --listen-addr "$(addr_of m1):2377" >/dev/null
        say "swarm init on m1 ($(addr_of m1))"
    fi
    local node role
    for node in m2 m3 w1 w2; do
        [ "$(swarm_state "$node")" = active ] && continue
        role=worker; [[ $node == m* ]] && role=manager
        dk "$node" swarm join --advertise-addr "$(addr_of "$node")" --listen-addr "$(addr_of "$node"):2377" \
            --token "$(dk m1 swarm join-token -q $role)" "$(addr_of m1):2377" >/dev/null
        say "$node joins as $role"
    done
    wait_until 90 "all five nodes to be ready" all_ready
    # Every engine reports this machine's hostname: place by label, never by node.hostname. As a site would:
    # which node is which, which holds the database, which has GPUs.
    dk m1 node update --label-add xjh.node=m1 "$(node_id m1)" >/dev/null
    dk m1 node update --label-add xjh.node=m2 "$(node_id m2)" >/dev/null
    dk m1 node update --label-add xjh.node=m3 --label-add xjh.db=true "$(node_id m3)" >/dev/null
    dk m1 node update --label-add xjh.node=w1 --label-add xjh.gpu=true "$(node_id w1)" >/dev/null
    dk m1 node update --label-add xjh.node=w2 "$(node_id w2)" >/dev/null
    say "labels: xjh.node=NAME on each; m3 xjh.db=true (PostgreSQL's volume); w1 xjh.gpu=true"
}

# -- images -------------------------------------------------------------------------------------------------------

push_images() {
    if [ -z "${XJC_SKIP_BUILD:-}" ]; then
        # the machine's shared engine builds (only our :xjc tags) and pushes to the cluster's registry
        DOCKER_HOST= scripts/build-images.sh --postgres --push "$REGISTRY"
    else
        DOCKER_HOST= scripts/build-images.sh --no-build --postgres --push "$REGISTRY"
    fi
    local node t=$SECONDS pulls=()
    # The managers the hub may run on (not m3, the database's) pull its image ahead, as a site's provisioning
    # would: a rescheduled hub then starts at once.
    for node in m1 m2; do
        dk "$node" pull -q "$(registry_image "$XJH_HUB_IMAGE")" >/dev/null &
        pulls+=($!)
    done
    wait "${pulls[@]}"  # only the pulls: the registry and engines are children too
    say "m1 and m2 pulled $(registry_image "$XJH_HUB_IMAGE") ($((SECONDS - t))s)"
}

# -- secrets, stack, stand-in -------------------------------------------------------------------------------------

secret_file() { echo "$DIR/secrets/${SECRETS_PREFIX}_$1"; }

make_secrets() {
    mkdir -p "$DIR/secrets" && chmod 0700 "$DIR/secrets"
    local key
    for key in xnat_service_token xnat_password console_token cookie_secret db_password; do
        [ -s "$(secret_file $key)" ] || (umask 077; openssl rand -hex 32 >"$(secret_file $key)")
    done
    (umask 077; printf 'postgresql://jupyterhub:%s@postgres:5432/jupyterhub\n' "$(cat "$(secret_file db_password)")" \
        >"$(secret_file db_url)")
    for key in xnat_service_token xnat_password console_token cookie_secret db_password db_url; do
        dk m1 secret inspect "${SECRETS_PREFIX}_$key" >/dev/null 2>&1 \
            || dk m1 secret create "${SECRETS_PREFIX}_$key" "$(secret_file $key)" >/dev/null
    done
    say "Docker secrets ${SECRETS_PREFIX}_{xnat_service_token,xnat_password,console_token,cookie_secret,db_password,db_url}" \
        "from files in $DIR/secrets (0600; never printed)"
}

stack_env() {
    export JH_IMAGE; JH_IMAGE=$(registry_image "$XJH_HUB_IMAGE")
    export JH_POSTGRES_IMAGE; JH_POSTGRES_IMAGE=$(registry_image "$XJH_POSTGRES_IMAGE")
    export JH_NETWORK=$NETWORK JH_PORT=$HUB_PORT JH_SECRETS_PREFIX=$SECRETS_PREFIX
    export JH_XNAT_URL=http://$HOST_ADDR:$STANDIN_PORT JH_XNAT_USERNAME=jupyterhub
    export JH_DOCKER_SOCKET=$SOCK_DIR/docker.sock
    # the hub on a manager that does not hold the database; notebooks never on managers (XNAT's constraints)
    export JH_HUB_PLACEMENT='node.labels.xjh.db != true'  # docker-stack.postgres.yml's default, said aloud
    # the hub as uid 1000 in the group of the node's Docker socket; notebooks as jovyan, as in the demo
    export JH_UID=1000 NB_UID=1000 NB_GID=100
    export JH_GID; JH_GID=$(stat -c %g "$(sock_of m1)")
    # a lost worker's task is seen as failed after a poll; keep the spawn timeout short for the tests
    export JH_START_TIMEOUT=120
}

hub_answers() {
    local addr
    for node in "${MANAGERS[@]}"; do
        addr=$(addr_of "$node")
        curl -sf -m 2 "http://$addr:$HUB_PORT/jupyterhub/hub/api/" >/dev/null 2>&1 && { hub_at=$node; return 0; }
    done
    return 1
}

deploy_stack() {
    stack_env
    dk m1 stack deploy --prune -c docker-stack.yml -c docker-stack.postgres.yml "$STACK" >/dev/null
    say "stack $STACK deployed: docker-stack.yml + docker-stack.postgres.yml, images from $REGISTRY"
    local t=$SECONDS
    wait_until 180 "the hub to answer on a manager's port $HUB_PORT (dk m1 service ps ${STACK}_jupyterhub)" hub_answers
    say "hub answers on $hub_at ($((SECONDS - t))s); PostgreSQL on m3"
}

tiny_image() {  # ~2 MB (the host's dash and sleep), pushed to the registry: for warming up the network
    local image=xnat-jupyterhub/tiny:xjc
    if ! DOCKER_HOST= docker image inspect "$image" >/dev/null 2>&1; then
        local stage f
        stage=$(mktemp -d)
        for f in /bin/dash /bin/sleep /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2; do
            mkdir -p "$stage$(dirname "$f")" && cp -L "$f" "$stage$f"
        done
        tar -C "$stage" -c . | DOCKER_HOST= docker import --change 'CMD ["/bin/sleep", "1"]' - "$image" >/dev/null
        rm -rf "$stage"
    fi
    DOCKER_HOST= docker tag "$image" "$(registry_image "$image")"
    DOCKER_HOST= docker push -q "$(registry_image "$image")" >/dev/null
    registry_image "$image"
}

warm_network() {
    # Swarm 20.10 gives a node its address on an overlay network only when a first task there needs it, and that
    # first task can fail ("node is missing network attachments"): a one-shot task on every node, retried until
    # done, so XNAT's first launch on a node does not meet it.
    local image t=$SECONDS
    image=$(tiny_image)
    dk m1 service rm xjc-warmup >/dev/null 2>&1 || true
    dk m1 service create -d -q --name xjc-warmup --mode global-job --network "$NETWORK" \
        --restart-condition on-failure "$image" >/dev/null
    wait_until 120 "the network warm-up on every node" warmed_up
    dk m1 service rm xjc-warmup >/dev/null
    say "every node has its address on $NETWORK ($((SECONDS - t))s)"
}

warmed_up() {
    [ "$(dk m1 service ps xjc-warmup --filter desired-state=complete --format '{{.CurrentState}}' 2>/dev/null \
        | grep -c '^Complete')" -ge ${#NODES[@]} ]
}

hub_node() {  # the node (label xjh.node) whose running task is the hub's; "none" if there is none
    local manager task node=
    for manager in "${MANAGERS[@]}"; do answers "$manager" && break; done
    for task in $(dk "$manager" service ps -q --filter desired-state=running "${STACK}_jupyterhub" 2>/dev/null); do
        node=$(dk "$manager" inspect --format '{{if eq .Status.State "running"}}{{.NodeID}}{{end}}' "$task" 2>/dev/null)
        [ -n "$node" ] && break
    done
    [ -n "$node" ] || { echo none; return 0; }
    dk "$manager" node inspect --format '{{index .Spec.Labels "xjh.node"}}' "$node" 2>/dev/null || echo none
}

standin_answers() { curl -sf -m 2 "http://127.0.0.1:$STANDIN_CONTROL_PORT/_standin/users" >/dev/null 2>&1; }

start_standin() {
    [ -x "$python" ] || scripts/bootstrap-python.sh >/dev/null
    if standin_answers; then say "XNAT stand-in answers"; return; fi
    mkdir -p "$DIR/standin"
    JH_XNAT_PASSWORD_FILE=$(secret_file xnat_password) setsid "$python" -m hub.standin --host "$HOST_ADDR" \
        --port "$STANDIN_PORT" --control-port "$STANDIN_CONTROL_PORT" --seed-demo \
        --demo-image "$(registry_image "$XJH_SINGLEUSER_IMAGE")" >"$DIR/standin/log" 2>&1 </dev/null &
    echo $! >"$DIR/standin/pid"
    wait_until 30 "the XNAT stand-in (see $DIR/standin/log)" standin_answers
    say "XNAT stand-in at http://$HOST_ADDR:$STANDIN_PORT (control API on 127.0.0.1:$STANDIN_CONTROL_PORT)"
}

up() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces and Docker engines)"
    command -v dockerd >/dev/null || die "no dockerd on this machine; run scripts/engine.sh up first"
    local t0=$SECONDS
    mkdir -p "$DIR" && chmod 0700 "$DIR"
    step "Network: namespaces, bridge, host link ($SUBNET.0/24)"
    make_network
    step "Registry with TLS from our own CA"
    make_ca
    start_registry
    step "Engines: managers ${MANAGERS[*]}, workers w1 (gpu) and w2"
    start_engines "${NODES[@]}"
    step "Swarm: three managers (quorum survives one lost), two workers, labels"
    form_swarm
    step "Images: built on the shared engine, pushed to $REGISTRY (scripts/build-images.sh --push)"
    push_images
    step "Secrets"
    make_secrets
    step "XNAT stand-in on the host's cluster address"
    start_standin
    step "Stack $STACK: hub on a manager, PostgreSQL on m3"
    deploy_stack
    warm_network
    printf '\nCluster up in %ss. Hub: http://%s:%s/jupyterhub (on %s). Docker: eval "$(%s env)"; docker -H unix://%s node ls\n' \
        $((SECONDS - t0)) "$(addr_of "$hub_at")" "$HUB_PORT" "$hub_at" "$0" "$(sock_of m1)"
}

# -- down ---------------------------------------------------------------------------------------------------------

namespace_pids() {  # every process in the mount namespace of the node's engine: dockerd, containerd, shims, containers
    local pid=$1 mnt p
    mnt=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || return 0
    [ "$mnt" != "$(readlink /proc/1/ns/mnt)" ] || return 0  # never the host's
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$mnt" ] && echo "${p#/proc/}"
    done
    return 0
}

container_pids() {  # the node's containers' processes: in its cgroup parent (each container has its own mount ns)
    cat /sys/fs/cgroup/pids/"$NAME-$1"/*/cgroup.procs 2>/dev/null || true
}

kill_engine() {  # the engine and all it runs, at once; its mounts go with its mount namespace
    local node=$1 pid victims
    pid=$(pid_of "$node")
    victims=$(container_pids "$node")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        victims="$victims $(namespace_pids "$pid")"
    elif [ -z "${victims// /}" ]; then
        return 1
    fi
    kill -9 $victims 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while [ -n "$pid" ] && running "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    echo "$victims" | wc -w
}

halt_engine() {  # a power cut: the engine and its containers go, the node stays a swarm member
    local node=$1 count
    addr_of "$node" >/dev/null
    if count=$(kill_engine "$node"); then
        say "engine $node killed with its containers ($count processes), as a power cut"
    else
        say "engine $node is not running"
    fi
}

down() {
    [ "$(id -u)" = 0 ] || die "needs root"
    local t0=$SECONDS node
    step "Engines (containers first)"
    # Everything goes, so no engine needs to stop its containers one by one (each a slow, clean stop)
    for node in "${NODES[@]}"; do kill_engine "$node" >/dev/null || true; done
    say "engines ${NODES[*]} stopped with their containers"
    step "Registry, stand-in and leftover processes"
    local leftover f
    for f in "$DIR/standin/pid" "$DIR/registry/pid"; do
        [ -s "$f" ] && end_pids 10 "$(cat "$f")"
    done
    leftover="$(pids_under) $(for node in "${NODES[@]}"; do container_pids "$node"; done)"
    leftover=$(echo $leftover)
    if [ -n "$leftover" ]; then
        end_pids 10 $leftover
        say "ended $(echo $leftover | wc -w) processes of ours"
    fi
    local m
    while read -r m; do umount -l "$m" 2>/dev/null || true; done \
        < <(awk -v d="$DIR/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
    step "Namespaces, host link, cgroups, CA trust, state"
    for node in "${NODES[@]}"; do
        has_netns "$(netns_of "$node")" && ip netns del "$(netns_of "$node")"
        local cg
        for cg in /sys/fs/cgroup/*/"$NAME-$node" /sys/fs/cgroup/"$NAME-$node"; do
            [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
        done
    done
    ip link show "$HOST_IF" >/dev/null 2>&1 && ip link del "$HOST_IF"
    has_netns "$NET_NS" && ip netns del "$NET_NS"
    rm -rf "$CERTS_D" "$DIR"
    rmdir "$SOCK_DIR" 2>/dev/null || true
    say "cluster removed in $((SECONDS - t0))s"
}

status() {
    local node
    for node in "${NODES[@]}"; do
        if alive "$node" && answers "$node"; then
            echo "$node: engine pid $(pid_of "$node"), $(addr_of "$node"), swarm $(swarm_state "$node")"
        else
            echo "$node: not running"
        fi
    done
    registry_answers && echo "registry: https://$REGISTRY" || echo "registry: not running"
    standin_answers && echo "stand-in: http://$HOST_ADDR:$STANDIN_PORT" || echo "stand-in: not running"
    for node in "${MANAGERS[@]}"; do
        if answers "$node" && [ "$(dk "$node" info --format '{{.Swarm.ControlAvailable}}')" = true ]; then
            dk "$node" node ls 2>/dev/null && echo "hub on: $(hub_node)" && break
        fi
    done
    return 0
}

env_vars() {
    local node
    for node in "${NODES[@]}"; do echo "export XJC_DOCKER_$node=unix://$(sock_of "$node")"; done
    echo "export XJC_REGISTRY=$REGISTRY"
    echo "export XJC_CA=$DIR/pki/ca.crt"
    echo "export XJC_SECRETS_DIR=$DIR/secrets"
    echo "export XJC_STACK=$STACK"
    echo "export XJC_HUB_PORT=$HUB_PORT"
    echo "export XJC_STANDIN_CONTROL=http://127.0.0.1:$STANDIN_CONTROL_PORT/_standin"
    echo "export XJC_SINGLEUSER_IMAGE=$(registry_image "$XJH_SINGLEUSER_IMAGE")"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    env) env_vars ;;
    stop) halt_engine "${2:?usage: $0 stop NODE}" ;;
    start) start_engines "${2:?usage: $0 start NODE}" ;;
    hub-node) hub_node ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
