#!/usr/bin/env bash
# A real Kubernetes for the e2e tier, built from upstream Go modules: the control plane and a
# legacy node (cgroup v1, cgroupfs, containerd 1.6) on this host, and two production-shaped
# worker nodes as QEMU VMs (systemd, cgroup v2, containerd 2.x; node/vms.sh). See "The e2e
# cluster" in README.md.
#
#   cluster.sh up [--nodes 1|3] [--no-demo]
#                               start (or reuse) etcd, kube-apiserver, kube-controller-manager,
#                               kube-scheduler, containerd and kubelet, and with --nodes 3 (the
#                               default; remembered) the VM nodes nsdebug-vm1, nsdebug-vm2;
#                               import the test images; apply the demo workloads
#                               (manifests/*.yaml: namespace demo on this host, demo-vm on
#                               nsdebug-vm1) unless --no-demo; wait until every node is Ready
#   cluster.sh build [--nodes 1|3]
#                               build (or find in the cache) what `up` needs, starting nothing:
#                               the Kubernetes binaries, the agent image's base, and with 3 nodes
#                               the VM image and containerd 2 (run-tiers.sh runs it ahead, niced)
#   cluster.sh ssh NODE [CMD…]   a root shell (or CMD) on a VM node
#   cluster.sh import-image ARCHIVE [NODE…]
#                               import an OCI archive into the VM nodes' containerd (all)
#   cluster.sh image-missing IMAGE DIGEST
#                               print the VM nodes that lack IMAGE at DIGEST
#   cluster.sh status           exit 0 when every component runs and the API server is ready
#   cluster.sh down             stop everything by PID (the VMs too), remove mounts, cgroups,
#                               bridges, taps, routes, iptables rules, restore host sysctls,
#                               delete the state directory
#   cluster.sh demo [--wait]    (re)apply the demo workloads; --wait: until each reaches its state
#   cluster.sh env              the three lines below, without checking anything
#   cluster.sh restart kube-apiserver|kubelet [NODE]
#                               stop one component (SIGTERM) and start it again with the same
#                               flags (a VM node's kubelet: systemctl restart); returns once it
#                               serves again (tests of what survives it)
#
# `up` and `status` end with, one per line:
#   KUBECONFIG=<admin kubeconfig>  KUBECONFIG_LIMITED=<limited user's>  CONTAINERD_ADDRESS=<socket>
#
# Environment: NSDEBUG_CLUSTER_DIR (state, default /var/lib/nsdebug-cluster), NSDEBUG_CACHE
# (built binaries and images, default /var/cache/nsdebug), NSDEBUG_NODE_NAME (nsdebug-node),
# NSDEBUG_POD_SUBNET (this host's pods, 10.244.0.0/24; VM i has 10.244.i.0/24),
# NSDEBUG_SERVICE_CIDR (10.96.0.0/16), NSDEBUG_VM_MEMORY (MiB, 2048), NSDEBUG_VM_CPUS (2),
# NSDEBUG_CGROUP_ROOT (the kubelet's cgroup root, /kubelet).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DIR=${NSDEBUG_CLUSTER_DIR:-/var/lib/nsdebug-cluster}
DIR=${DIR%/}
[ -n "$DIR" ] && [ "$DIR" != / ] || { echo "cluster.sh: refusing DIR=/" >&2; exit 1; }
NODE=${NSDEBUG_NODE_NAME:-nsdebug-node}
POD_SUBNET=${NSDEBUG_POD_SUBNET:-10.244.0.0/24}
SERVICE_CIDR=${NSDEBUG_SERVICE_CIDR:-10.96.0.0/16}
CGROUP_ROOT=${NSDEBUG_CGROUP_ROOT:-/kubelet}
BRIDGE=nsdbg-e2e0
APISERVER_PORT=6443
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380

PKI=$DIR/pki
LOGS=$DIR/logs
PIDS=$DIR/pids
ADMIN_KC=$DIR/admin.kubeconfig
LIMITED_KC=$DIR/limited.kubeconfig
CTRD_DIR=$DIR/containerd
# where a real node's containerd listens, and where the agent's DaemonSet looks for it
CONTAINERD_SOCKET=/run/containerd/containerd.sock
CONTAINERD_ADDRESS=unix://$CONTAINERD_SOCKET
COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler kubelet"
# shellcheck source=node/vms.sh
. "$HERE/node/vms.sh"

log() { echo "cluster.sh: $*" >&2; }
die() { echo "cluster.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
T0=$(now)
elapsed() { awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

print_env() {
  echo "KUBECONFIG=$ADMIN_KC"
  echo "KUBECONFIG_LIMITED=$LIMITED_KC"
  echo "CONTAINERD_ADDRESS=$CONTAINERD_ADDRESS"
}

kc() { kubectl --kubeconfig "$ADMIN_KC" "$@"; }

# wait_for DESCRIPTION SECONDS CMD…: poll CMD every 0.5 s.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  return 1
}

node_ip() {
  local ip
  ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1)
  [ -n "$ip" ] || ip=$(hostname -I 2>/dev/null | awk '{ print $1 }')
  echo "${ip:-127.0.0.1}"
}

# The first address of the service CIDR: the `kubernetes` Service's ClusterIP.
service_ip() {
  local base=${SERVICE_CIDR%/*}
  echo "${base%.*}.$(( ${base##*.} + 1 ))"
}

# --------------------------------------------------------------------------------------
# PKI (openssl): one cluster CA for API server, etcd, kubelets and clients; a separate
# front-proxy CA for the aggregation layer's request-header authentication.

# cert NAME CA SUBJECT KIND [SANS]: NAME.key/.crt signed by CA (KIND: server, client, both).
# Regenerated when missing or when SANS changed (e.g. another node IP).
cert() {
  local name=$1 ca=$2 subj=$3 kind=$4 sans=${5:-}
  local key=$PKI/$name.key crt=$PKI/$name.crt
  if [ -s "$crt" ] && [ "$(cat "$PKI/$name.sans" 2>/dev/null)" = "$sans" ]; then return 0; fi
  local eku
  case $kind in
    server) eku=serverAuth ;;
    client) eku=clientAuth ;;
    both) eku=serverAuth,clientAuth ;;
  esac
  [ -s "$key" ] || openssl ecparam -name prime256v1 -genkey -noout -out "$key" 2>/dev/null
  chmod 600 "$key"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$sans" ] || echo "subjectAltName=$sans"
  } >"$PKI/$name.ext"
  openssl req -new -key "$key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
  echo "$sans" >"$PKI/$name.sans"
}

ca() {
  local name=$1 cn=$2
  [ -s "$PKI/$name.crt" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  chmod 600 "$PKI/$name.key"
  openssl req -x509 -new -key "$PKI/$name.key" -subj "/CN=$cn" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$name.crt" 2>/dev/null
}

# kubeconfig FILE USER CERTNAME: a self-contained kubeconfig (certs embedded).
kubeconfig() {
  local file=$1 user=$2 certname=$3 server=${4:-https://127.0.0.1:$APISERVER_PORT}
  local tmp=$file.tmp
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: nsdebug-e2e
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$certname.crt")
    client-key-data: $(base64 -w0 <"$PKI/$certname.key")
contexts:
- name: $user@nsdebug-e2e
  context:
    cluster: nsdebug-e2e
    user: $user
    namespace: ${5:-default}
current-context: $user@nsdebug-e2e
EOF
  chmod 600 "$tmp"
  mv "$tmp" "$file"
}

make_pki() {
  local ip=$1 svc
  svc=$(service_ip)
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  ca ca nsdebug-e2e-ca
  ca front-proxy-ca nsdebug-e2e-front-proxy-ca
  cert apiserver ca /CN=kube-apiserver server \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE,IP:127.0.0.1,IP:$ip,IP:$svc"
  cert apiserver-kubelet-client ca /CN=kube-apiserver-kubelet-client client
  cert apiserver-etcd-client ca /CN=kube-apiserver-etcd-client client
  cert etcd ca /CN=etcd both "DNS:localhost,IP:127.0.0.1"
  cert front-proxy-client front-proxy-ca /CN=front-proxy-client client
  cert kubelet ca "/CN=$NODE" server "DNS:$NODE,DNS:localhost,IP:$ip,IP:127.0.0.1"
  cert kubelet-client ca "/O=system:nodes/CN=system:node:$NODE" client
  cert controller-manager ca /CN=system:kube-controller-manager client
  cert scheduler ca /CN=system:kube-scheduler client
  cert admin ca /O=system:masters/CN=nsdebug-admin client
  cert limited ca /CN=nsdebug-limited client
  if [ ! -s "$PKI/sa.key" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    chmod 600 "$PKI/sa.key"
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  kubeconfig "$ADMIN_KC" nsdebug-admin admin
  kubeconfig "$LIMITED_KC" nsdebug-limited limited "https://127.0.0.1:$APISERVER_PORT" demo
  kubeconfig "$DIR/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  kubeconfig "$DIR/scheduler.kubeconfig" system:kube-scheduler scheduler
  kubeconfig "$DIR/kubelet.kubeconfig" "system:node:$NODE" kubelet-client
}

# --------------------------------------------------------------------------------------
# Processes: started with setsid in the background, PID in $PIDS/NAME.pid, log in $LOGS.

# The PID of component NAME when it runs (checked against its command line: never a
# recycled PID).
pid_of() {
  local name=$1 pid
  pid=$(cat "$PIDS/$name.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  local argv0 args
  argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1) || return 1
  [ "${argv0##*/}" = "$name" ] || return 1
  args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case $args in *" $DIR/"*) ;; *) return 1 ;; esac
  echo "$pid"
}

# start NAME ARGS…: run $BIN/NAME ARGS unless it already runs.
start() {
  local name=$1 pid
  shift
  if pid=$(pid_of "$name"); then
    log "$name already running (pid $pid)"
    return 0
  fi
  echo "=== start $(date -Is) ===" >>"$LOGS/$name.log"
  setsid "$BIN/$name" "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
}

stop_pid_file() {
  local name=$1 pid i
  pid=$(pid_of "$name") || { rm -f "$PIDS/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PIDS/$name.pid"
}

require_alive() {
  local name=$1
  pid_of "$name" >/dev/null && return 0
  tail -n 40 "$LOGS/$name.log" >&2 || true
  die "$name exited (log: $LOGS/$name.log)"
}

curl_api() {
  curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT$1"
}

etcd_healthy() {
  curl -sf --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/apiserver-etcd-client.crt" \
    --key "$PKI/apiserver-etcd-client.key" "https://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'
}

apiserver_ready() { curl_api /readyz >/dev/null; }

node_ready() {
  [ "$(kc get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# --------------------------------------------------------------------------------------
start_etcd() {
  mkdir -p "$DIR/etcd"
  chmod 700 "$DIR/etcd"
  start etcd \
    --name "$NODE" \
    --data-dir "$DIR/etcd" \
    --listen-client-urls "https://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "https://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "https://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "https://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "$NODE=https://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "http://127.0.0.1:2381" \
    --client-cert-auth --trusted-ca-file "$PKI/ca.crt" \
    --cert-file "$PKI/etcd.crt" --key-file "$PKI/etcd.key" \
    --peer-client-cert-auth --peer-trusted-ca-file "$PKI/ca.crt" \
    --peer-cert-file "$PKI/etcd.crt" --peer-key-file "$PKI/etcd.key" \
    --snapshot-count 10000 --quota-backend-bytes 2147483648 \
    --log-level warn
  wait_for etcd 60 etcd_healthy || { require_alive etcd; die "etcd not healthy within 60 s (log: $LOGS/etcd.log)"; }
}

start_apiserver() {
  local ip=$1
  start kube-apiserver \
    --advertise-address "$ip" \
    --bind-address 0.0.0.0 \
    --secure-port "$APISERVER_PORT" \
    --etcd-servers "https://127.0.0.1:$ETCD_CLIENT_PORT" \
    --etcd-cafile "$PKI/ca.crt" --etcd-certfile "$PKI/apiserver-etcd-client.crt" --etcd-keyfile "$PKI/apiserver-etcd-client.key" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction,PodSecurity,PodNodeSelector \
    --allow-privileged=true \
    --anonymous-auth=false \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --audit-policy-file "$HERE/config/audit-policy.yaml" \
    --audit-log-path "$LOGS/audit.log" --audit-log-maxsize 50 --audit-log-maxbackup 1 \
    --profiling=false \
    --v 1
  wait_for kube-apiserver 120 apiserver_ready || { require_alive kube-apiserver; die "kube-apiserver not ready within 120 s (log: $LOGS/kube-apiserver.log)"; }
}

start_controllers() {
  start kube-controller-manager \
    --kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$PKI/sa.key" \
    --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --controllers '*,-bootstrapsigner,-tokencleaner' \
    --profiling=false \
    --v 1
  start kube-scheduler \
    --kubeconfig "$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 \
    --leader-elect=false \
    --profiling=false \
    --v 1
}

# Kernel settings the kubelet changes (protectKernelDefaults: false) and forwarding to the VM
# nodes: recorded before the first start, restored by `down`.
SYSCTLS="net/ipv4/ip_forward vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes"
record_sysctls() {
  [ -f "$DIR/sysctl.orig" ] && return 0
  local s
  for s in $SYSCTLS; do
    [ -r "/proc/sys/$s" ] && echo "$s $(cat "/proc/sys/$s")"
  done >"$DIR/sysctl.orig.tmp"
  mv "$DIR/sysctl.orig.tmp" "$DIR/sysctl.orig"
}
restore_sysctls() {
  [ -f "$DIR/sysctl.orig" ] || return 0
  local s v
  while read -r s v; do
    echo "$v" >"/proc/sys/$s" 2>/dev/null || log "warning: cannot restore $s=$v"
  done <"$DIR/sysctl.orig"
  rm -f "$DIR/sysctl.orig"
}

# Without kube-proxy, one DNAT rule makes the `kubernetes` Service's ClusterIP reach the API
# server, so in-cluster clients (KUBERNETES_SERVICE_HOST) work from pods and the host.
IPT_COMMENT="nsdebug-e2e kubernetes service"
service_dnat() { # add|del
  local op=$1 ip=$2 svc chain flag
  svc=$(service_ip)
  for chain in PREROUTING OUTPUT; do
    local rule=("$chain" -d "$svc/32" -p tcp --dport 443 -m comment --comment "$IPT_COMMENT" -j DNAT --to-destination "$ip:$APISERVER_PORT")
    if [ "$op" = add ]; then
      iptables -w -t nat -C "${rule[@]}" 2>/dev/null || iptables -w -t nat -A "${rule[@]}"
    fi
  done
  if [ "$op" = del ]; then
    # every rule carrying our comment, whatever IP it had
    local r
    for t in nat; do
      while IFS= read -r r; do
        [ -n "$r" ] && eval "iptables -w -t $t ${r/#-A /-D }" 2>/dev/null || true
      done < <(iptables -w -t "$t" -S 2>/dev/null | grep -F -- "--comment \"$IPT_COMMENT\"" || true)
    done
  fi
}

start_kubelet() {
  local ip=$1
  mkdir -p "$DIR/kubelet" "$DIR/pod-logs"
  sed -e "s|@PKI@|$PKI|g" -e "s|@DIR@|$DIR|g" -e "s|@CGROUP_ROOT@|$CGROUP_ROOT|g" \
    -e "s|@CONTAINERD_ADDRESS@|$CONTAINERD_ADDRESS|g" "$HERE/config/kubelet.yaml" >"$DIR/kubelet-config.yaml"
  record_sysctls
  # The kubelet refuses a cgroupRoot missing from any hierarchy ("cgroup-root doesn't
  # exist"); it creates only the kubepods tree below it.
  local m
  for m in $(cgroup_mounts); do mkdir -p "$m$CGROUP_ROOT"; done
  start kubelet \
    --config "$DIR/kubelet-config.yaml" \
    --kubeconfig "$DIR/kubelet.kubeconfig" \
    --root-dir "$DIR/kubelet" \
    --cert-dir "$DIR/kubelet/pki" \
    --hostname-override "$NODE" \
    --node-ip "$ip" \
    --v 1
}

# How many nodes: --nodes, else what the running cluster was started with, else 3.
node_count() {
  local n=${1:-$(cat "$DIR/nodes" 2>/dev/null || echo 3)}
  case $n in 1 | 3) echo "$n" ;; *) die "--nodes must be 1 (this host) or 3 (this host and two VMs), not '$n'" ;; esac
}
vm_indexes() { [ "$(cat "$DIR/nodes" 2>/dev/null || echo 1)" = 3 ] && echo 1 2 || true; }

cmd_up() {
  local demo=1 nodes=
  while [ $# -gt 0 ]; do
    case $1 in
      --no-demo) demo= ; shift ;;
      --nodes) nodes=${2:-}; shift 2 || die "up: --nodes needs 1 or 3" ;;
      --nodes=*) nodes=${1#--nodes=}; shift ;;
      *) die "up: unknown option $1" ;;
    esac
  done
  [ "$(id -u)" = 0 ] || die "up: must run as root"
  for b in openssl curl kubectl iptables ip containerd runc; do
    command -v "$b" >/dev/null || die "up: $b not found (.ci/run lists the packages)"
  done
  nodes=$(node_count "$nodes")
  if [ "$nodes" = 1 ] && [ -n "$(vm_indexes)" ] && vm_pid "$(vm_name 1)" >/dev/null; then
    die "up: the cluster runs with its VM nodes; \`cluster.sh down\` first to start it with --nodes 1"
  fi
  mkdir -p "$DIR" "$LOGS" "$PIDS"
  chmod 711 "$DIR"
  echo "$nodes" >"$DIR/nodes"

  # The VM image and containerd 2 build (cached) while Kubernetes builds.
  local vm_image_job= ctrd_job=
  if [ "$nodes" = 3 ]; then
    for b in qemu-system-x86_64 qemu-img ssh ssh-keygen; do
      command -v "$b" >/dev/null || die "up: $b not found (test/support/deps.sh installs it)"
    done
    bash "$HERE/node/image.sh" >"$LOGS/vm-image.out" 2>"$LOGS/vm-image.log" & vm_image_job=$!
    bash "$HERE/node/build-containerd.sh" >"$LOGS/containerd-build.out" 2>"$LOGS/containerd-build.log" & ctrd_job=$!
  fi
  BIN=$(bash "$HERE/k8s/build.sh" | tail -n1)
  log "Kubernetes binaries: $BIN ($(elapsed))"

  local ip
  ip=$(node_ip)
  if [ -f "$DIR/node-ip" ] && [ "$(cat "$DIR/node-ip")" != "$ip" ]; then
    log "node IP changed ($(cat "$DIR/node-ip") → $ip): restarting the API server and kubelet"
    stop_pid_file kubelet
    stop_pid_file kube-apiserver
    service_dnat del "$ip"
  fi
  echo "$ip" >"$DIR/node-ip"
  echo "$BIN" >"$DIR/bin-dir"
  make_pki "$ip"

  start_etcd
  log "etcd healthy ($(elapsed))"
  start_apiserver "$ip"
  log "kube-apiserver ready on https://$ip:$APISERVER_PORT ($(elapsed))"
  sed -e "s|@NODE@|$NODE|g" -e "s|@VM_NODE@|$(vm_name 1)|g" "$HERE/config/bootstrap.yaml" | kc apply -f - >/dev/null
  start_controllers

  # The VMs boot (~1-2 min under emulation) while this host's node comes up.
  record_sysctls
  if [ "$nodes" = 3 ]; then
    local image ctrd_bin i archives
    wait "$vm_image_job" || { cat "$LOGS/vm-image.log" >&2; die "building the VM image failed (log: $LOGS/vm-image.log)"; }
    wait "$ctrd_job" || { tail -n 30 "$LOGS/containerd-build.log" >&2; die "building containerd failed (log: $LOGS/containerd-build.log)"; }
    image=$(tail -n1 "$LOGS/vm-image.out") ctrd_bin=$(tail -n1 "$LOGS/containerd-build.out")
    mapfile -t archives < <(bash "$REPO/test/support/images.sh" --archives)
    vm_host_network up
    for i in 1 2; do
      vm_prepare "$i" "$image" "$BIN" "$ctrd_bin"
      vm_share_images "$i" "${archives[@]}"
      vm_start "$i" "$image"
    done
    log "VM nodes booting ($(elapsed))"
  fi

  bash "$REPO/test/support/containerd.sh" start "$CTRD_DIR" --subnet "$POD_SUBNET" --bridge "$BRIDGE" --socket "$CONTAINERD_SOCKET" >/dev/null
  bash "$REPO/test/support/images.sh" "$CONTAINERD_ADDRESS" >/dev/null
  log "containerd and test images ready ($(elapsed))"

  service_dnat add "$ip"
  start_kubelet "$ip"
  if ! wait_for "node Ready" 120 node_ready; then
    require_alive kubelet
    die "node $NODE not Ready within 120 s (log: $LOGS/kubelet.log)"
  fi
  for c in kube-controller-manager kube-scheduler kubelet; do require_alive "$c"; done
  log "node $NODE Ready ($(elapsed))"
  for i in $(vm_indexes); do
    vm_wait "$i" 600
    log "node $(vm_name "$i") Ready ($(elapsed))"
  done

  # ServiceAccount tokens: pods are refused until the controller made the namespace's
  # default ServiceAccount.
  wait_for "default ServiceAccount" 60 kc -n demo get serviceaccount default ||
    die "no default ServiceAccount in demo after 60 s (log: $LOGS/kube-controller-manager.log)"
  if [ -n "$demo" ]; then
    cmd_demo
  fi
  log "up ($(elapsed))"
  print_env
}

cmd_build() {
  local nodes jobs=() job failed=0
  case ${1:-} in --nodes) nodes=$(node_count "${2:-}") ;; --nodes=*) nodes=$(node_count "${1#--nodes=}") ;; '') nodes=$(node_count "") ;; *) die "build: unknown option $1" ;; esac
  bash "$HERE/k8s/build.sh" >/dev/null & jobs+=($!)
  bash "$HERE/images.sh" base & jobs+=($!)
  if [ "$nodes" = 3 ]; then
    bash "$HERE/node/image.sh" >/dev/null & jobs+=($!)
    bash "$HERE/node/build-containerd.sh" >/dev/null & jobs+=($!)
  fi
  for job in "${jobs[@]}"; do wait "$job" || failed=1; done
  return "$failed"
}

# The demo namespaces: `demo` on this host's node; with the VM nodes also `demo-vm` on
# nsdebug-vm1 (the same workloads, plus a user-namespaced pod). Each namespace's
# node-selector annotation (PodNodeSelector) pins every pod made in it, tests' pods too.
demo_namespaces() { if [ -n "$(vm_indexes)" ]; then echo demo demo-vm; else echo demo; fi; }
demo_manifests() {
  sed "s/^  namespace: demo$/  namespace: $1/" "$HERE/manifests/demo.yaml"
  [ "$1" = demo ] || { echo ---; sed "s/^  namespace: demo-vm$/  namespace: $1/" "$HERE/manifests/userns.yaml"; }
}

cmd_demo() {
  local wait= ns
  [ "${1:-}" = --wait ] && wait=1
  for ns in $(demo_namespaces); do
    # Pods are immutable: a changed spec means delete and create again.
    if ! demo_manifests "$ns" | kc apply -f - >"$LOGS/demo-apply.log" 2>&1; then
      if grep -q 'Forbidden: pod updates may not change' "$LOGS/demo-apply.log"; then
        demo_manifests "$ns" | kc delete -f - --wait=true --ignore-not-found >/dev/null
        demo_manifests "$ns" | kc apply -f - >/dev/null
      else
        cat "$LOGS/demo-apply.log" >&2
        die "applying the demo workloads in $ns failed"
      fi
    fi
  done
  log "demo workloads applied ($(demo_namespaces))"
  [ -n "$wait" ] || return 0
  wait_demo
}

# Each demo workload reaches its expected state: running and ready, or (crashloop) restarted.
wait_demo() {
  local timeout=${1:-180} ns pods
  for ns in $(demo_namespaces); do
    pods="pod/busybox pod/distroless pod/multi pod/shared-pid pod/readonly pod/nonroot"
    [ "$ns" = demo ] || { pods+=" pod/userns"; timeout=$((timeout * 3)); }
    # shellcheck disable=SC2086 # a list of pods
    if ! kc -n "$ns" wait --for=condition=Ready --timeout="${timeout}s" $pods >/dev/null ||
       ! kc -n "$ns" rollout status deploy/web --timeout="${timeout}s" >/dev/null ||
       ! wait_for "crashloop restarted" "$timeout" crashloop_restarted "$ns"; then
      kc -n "$ns" get pods -o wide >&2 || true
      die "demo workloads in $ns did not reach their states within ${timeout}s"
    fi
  done
  log "demo workloads ready ($(elapsed))"
}

crashloop_restarted() {
  local n
  n=$(kc -n "$1" get pod crashloop -o 'jsonpath={.status.containerStatuses[0].restartCount}' 2>/dev/null)
  [ "${n:-0}" -ge 1 ]
}

cmd_status() {
  local ok=1 c
  BIN=$(cat "$DIR/bin-dir" 2>/dev/null || true)
  for c in $COMPONENTS; do
    if ! pid_of "$c" >/dev/null; then
      log "$c is not running"
      ok=
    fi
  done
  if ! bash "$REPO/test/support/containerd.sh" status "$CTRD_DIR" >/dev/null 2>&1; then
    log "containerd is not running"
    ok=
  fi
  if [ -n "$ok" ] && ! apiserver_ready; then
    log "kube-apiserver is not ready"
    ok=
  fi
  if [ -n "$ok" ] && ! node_ready; then
    log "node $NODE is not Ready"
    ok=
  fi
  local i
  for i in $(vm_indexes); do
    if ! vm_pid "$(vm_name "$i")" >/dev/null; then
      log "VM $(vm_name "$i") is not running"
      ok=
    elif [ -n "$ok" ] && ! vm_node_ready "$(vm_name "$i")"; then
      log "node $(vm_name "$i") is not Ready"
      ok=
    fi
  done
  [ -n "$ok" ] || { log "cluster is not up (cluster.sh up)"; return 1; }
  print_env
}

# cgroup mount points, one per line
cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts | sort -u; }

# Kill what is left in a cgroup subtree and remove it, deepest first, in every hierarchy.
remove_cgroup_tree() {
  local rel=$1 m d procs i
  for m in $(cgroup_mounts); do
    [ -d "$m$rel" ] || continue
    for ((i = 0; i < 50; i++)); do
      while IFS= read -r d; do
        procs=$(cat "$d/cgroup.procs" 2>/dev/null || true)
        # shellcheck disable=SC2086 # a list of PIDs
        [ -z "$procs" ] || kill -KILL $procs 2>/dev/null || true
        rmdir "$d" 2>/dev/null || true
      done < <(find "$m$rel" -depth -type d 2>/dev/null)
      [ -d "$m$rel" ] || break
      sleep 0.1
    done
    [ -d "$m$rel" ] && log "warning: could not remove cgroup $m$rel"
  done
  return 0
}

unmount_under() {
  local root=$1 m mounts
  for _ in 1 2 3; do
    mounts=$(awk -v d="$root/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
    [ -z "$mounts" ] && return 0
    while IFS= read -r m; do
      m=${m//\\040/ }
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
    done <<<"$mounts"
  done
}

# Chains the kubelet creates (KUBE-KUBELET-CANARY, KUBE-FIREWALL, KUBE-IPTABLES-HINT, …):
# remove the jumps to them, then the chains; in both address families.
remove_kube_iptables() {
  local ipt t r c
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in filter nat mangle; do
      "$ipt" -w -t "$t" -S >/dev/null 2>&1 || continue
      while IFS= read -r r; do
        [ -n "$r" ] && eval "$ipt -w -t $t ${r/#-A /-D }" 2>/dev/null || true
      done < <("$ipt" -w -t "$t" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | grep -vE '^-A KUBE-' || true)
      for c in $("$ipt" -w -t "$t" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[A-Za-z0-9-]*\)$/\1/p'); do
        "$ipt" -w -t "$t" -F "$c" 2>/dev/null || true
      done
      for c in $("$ipt" -w -t "$t" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[A-Za-z0-9-]*\)$/\1/p'); do
        "$ipt" -w -t "$t" -X "$c" 2>/dev/null || true
      done
    done
  done
}

cmd_down() {
  [ "$(id -u)" = 0 ] || die "down: must run as root"
  if [ ! -d "$DIR" ]; then
    log "nothing to do: $DIR does not exist"
    return 0
  fi
  BIN=$(cat "$DIR/bin-dir" 2>/dev/null || echo /nonexistent)
  # The kubelet first, so nothing restarts containers; then the runtime and every pod;
  # then the control plane. kwok (test/cluster/scale.sh) plays the kubelet of the fake nodes.
  stop_pid_file kwok
  stop_pid_file kubelet
  vms_down
  stop_pid_file kube-scheduler
  stop_pid_file kube-controller-manager
  bash "$REPO/test/support/containerd.sh" stop "$CTRD_DIR" >/dev/null 2>&1 || log "warning: containerd.sh stop failed"
  stop_pid_file kube-apiserver
  stop_pid_file etcd
  # Mounts the kubelet made (projected/emptyDir volumes) and any left by containerd.
  unmount_under "$DIR"
  # Every cgroup under the kubelet's root (its pods, QoS classes, kubepods).
  [ "$CGROUP_ROOT" = / ] || remove_cgroup_tree "$CGROUP_ROOT"
  if [ "$CGROUP_ROOT" = / ]; then
    local uid
    for uid in $(ls "$DIR/kubelet/pods" 2>/dev/null); do
      remove_cgroup_tree "/kubepods/pod$uid"
      remove_cgroup_tree "/kubepods/besteffort/pod$uid"
      remove_cgroup_tree "/kubepods/burstable/pod$uid"
    done
    for m in $(cgroup_mounts); do rmdir "$m/kubepods/besteffort" "$m/kubepods/burstable" "$m/kubepods" 2>/dev/null || true; done
  fi
  service_dnat del ""
  remove_kube_iptables
  restore_sysctls
  # The kubelet's log symlinks for our pods (it always writes them to /var/log/containers).
  find /var/log/containers -maxdepth 1 -type l -lname "$DIR/*" -delete 2>/dev/null || true
  rm -rf "$DIR"
  log "down ($(elapsed))"
}

# The index of VM node NAME (nsdebug-vmI), or fail.
vm_index_of() {
  local i
  for i in $(vm_indexes); do [ "$(vm_name "$i")" = "$1" ] && { echo "$i"; return 0; }; done
  die "no VM node '$1' in this cluster (nodes: $NODE $(for i in $(vm_indexes); do vm_name "$i"; done))"
}

cmd_restart() {
  local ip
  ip=$(cat "$DIR/node-ip") || die "restart: the cluster is not up"
  BIN=$(cat "$DIR/bin-dir") || die "restart: the cluster is not up"
  case ${1:-} in
    kube-apiserver) stop_pid_file kube-apiserver; start_apiserver "$ip" ;;
    kubelet)
      if [ -n "${2:-}" ] && [ "$2" != "$NODE" ]; then
        vm_ssh "$(vm_index_of "$2")" 'systemctl restart kubelet && for i in $(seq 120); do curl -sf --max-time 2 http://127.0.0.1:10248/healthz >/dev/null && exit 0; sleep 0.5; done; exit 1' ||
          die "restart: the kubelet on $2 is not healthy after 60 s"
        return 0
      fi
      stop_pid_file kubelet
      start_kubelet "$ip"
      wait_for "kubelet healthz" 60 curl -sf --max-time 2 http://127.0.0.1:10248/healthz || die "restart: the kubelet is not healthy after 60 s"
      ;;
    *) die "restart: kube-apiserver or kubelet, not '${1:-}'" ;;
  esac
}

# import-image ARCHIVE [NODE…]: into the VM nodes' containerd (k8s.io namespace; default
# every VM node), over ssh.
cmd_import_image() {
  local archive=${1:?import-image ARCHIVE [NODE…]} name
  shift
  [ -s "$archive" ] || die "import-image: no archive $archive"
  [ $# -gt 0 ] || set -- $(for i in $(vm_indexes); do vm_name "$i"; done)
  for name in "$@"; do
    vm_ssh "$(vm_index_of "$name")" 'ctr -n k8s.io images import --local -' <"$archive" >/dev/null ||
      die "import-image: importing $archive into $name failed"
  done
}

# image-missing IMAGE DIGEST: the VM nodes whose containerd lacks IMAGE at DIGEST.
cmd_image_missing() {
  local image=${1:?image-missing IMAGE DIGEST} digest=${2:?image-missing IMAGE DIGEST} i have
  for i in $(vm_indexes); do
    have=$(vm_ssh "$i" "ctr -n k8s.io images ls 'name==$image'" | awk 'NR > 1 { print $3 }') ||
      die "image-missing: cannot reach $(vm_name "$i")"
    [ "$have" = "$digest" ] || vm_name "$i"
  done
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  build) shift; cmd_build "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  ssh)
    shift
    i=$(vm_index_of "${1:?ssh NODE [CMD…]}")
    shift
    # shellcheck disable=SC2046 # options are words
    exec ssh $(vm_ssh_opts) "root@$(vm_ip "$i")" "$@" ;;
  import-image) shift; cmd_import_image "$@" ;;
  image-missing) shift; cmd_image_missing "$@" ;;
  down) shift; cmd_down ;;
  status) shift; cmd_status ;;
  demo) shift; BIN=$(cat "$DIR/bin-dir" 2>/dev/null || true); cmd_demo "$@" ;;
  wait-demo) shift; wait_demo "$@" ;;
  env) print_env ;;
  *) sed -n '2,37p' "$0" | cut -c3- >&2; exit 2 ;;
esac
