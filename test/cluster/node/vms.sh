# Worker nodes as QEMU virtual machines, sourced by ../cluster.sh (uses its DIR, PKI, LOGS,
# cert, kubeconfig, log, die, wait_for, kc). Each VM is a production-shaped node: systemd as
# PID 1, cgroup v2 only, containerd 2.x with the systemd cgroup driver, runc, the CNI bridge,
# a kubelet with its own credentials (system:node:NAME). See "The e2e cluster" in README.md.
#
# Network (no change outside what `down` removes): a host bridge $VM_BRIDGE at
# $VM_NET.1/24 with one tap per VM; VM i is $VM_NET.(10+i), its pods 10.244.i.0/24 (the
# host's pods 10.244.0.0/24); the host routes each pod subnet to its VM and forwards
# between them, so pods reach pods on every node and the API server reaches each kubelet.
# Each VM reads its identity (name, address, certificates, kubelet and containerd config)
# and the cluster's binaries from a read-only 9p share, $DIR/vms/NAME/share, whose
# setup.sh (from this directory) the image's nsdebug-node.service runs at boot.

VM_BRIDGE=nsdbg-vm0
VM_NET=192.168.100
VM_MEMORY=${NSDEBUG_VM_MEMORY:-2048}
VM_CPUS=${NSDEBUG_VM_CPUS:-2}
VMS_DIR=$DIR/vms
SSH_DIR=$DIR/ssh
NODE_HERE=$HERE/node

vm_name() { echo "nsdebug-vm$1"; }
vm_ip() { echo "$VM_NET.$((10 + $1))"; }
vm_pod_cidr() { echo "10.244.$1.0/24"; }

# ssh options for the cluster's key and the VMs' host keys (known_hosts written by vm_prepare).
# Commands share one connection per VM (ControlMaster); NSDEBUG_SSH_MUX=no gives a connection of
# its own (a long-lived forward, which must end with its ssh process).
vm_ssh_opts() {
  local mux="-o ControlMaster=auto -o ControlPath=$SSH_DIR/cm-%h -o ControlPersist=120"
  [ "${NSDEBUG_SSH_MUX:-}" = no ] && mux="-o ControlMaster=no -o ControlPath=none"
  echo "-i $SSH_DIR/id_ed25519 -o UserKnownHostsFile=$SSH_DIR/known_hosts -o StrictHostKeyChecking=yes" \
    "-o BatchMode=yes -o ConnectTimeout=5 $mux -o LogLevel=ERROR"
}
# vm_ssh I CMD…: run CMD (one shell string) as root on VM I.
vm_ssh() {
  local i=$1
  shift
  # shellcheck disable=SC2046 # options are words
  ssh $(vm_ssh_opts) "root@$(vm_ip "$i")" "$@"
}

vm_host_network() { # up|down
  if [ "$1" = up ]; then
    ip link show "$VM_BRIDGE" >/dev/null 2>&1 || ip link add "$VM_BRIDGE" type bridge
    ip addr show dev "$VM_BRIDGE" | grep -q "inet $VM_NET.1/" || ip addr add "$VM_NET.1/24" dev "$VM_BRIDGE"
    ip link set "$VM_BRIDGE" up
    echo 1 >/proc/sys/net/ipv4/ip_forward
  else
    ip link del "$VM_BRIDGE" 2>/dev/null || true
  fi
}

vm_pid() {
  local pid
  pid=$(cat "$VMS_DIR/$1/qemu.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-name $1 " || return 1
  echo "$pid"
}

# vm_prepare I IMAGE_DIR K8S_BIN CONTAINERD_BIN: the share, credentials and disk of VM I.
vm_prepare() {
  local i=$1 image=$2 k8s_bin=$3 ctrd_bin=$4
  local name ip vdir share
  name=$(vm_name "$i") ip=$(vm_ip "$i") vdir=$VMS_DIR/$name share=$VMS_DIR/$name/share
  mkdir -p "$share/pki" "$share/bin" "$share/ssh" "$share/images" "$SSH_DIR"
  chmod 700 "$vdir" "$SSH_DIR"
  # Its own kubelet credentials: client cert system:node:NAME (Node authorizer and
  # NodeRestriction), serving cert for its address (the API server verifies it).
  cert "kubelet-$name" ca "/CN=$name" server "DNS:$name,IP:$ip"
  cert "kubelet-client-$name" ca "/O=system:nodes/CN=system:node:$name" client
  cp "$PKI/ca.crt" "$share/pki/ca.crt"
  cp "$PKI/kubelet-$name.crt" "$share/pki/kubelet.crt"
  cp "$PKI/kubelet-$name.key" "$share/pki/kubelet.key"
  kubeconfig "$share/kubelet.kubeconfig" "system:node:$name" "kubelet-client-$name" "https://$(cat "$DIR/node-ip"):$APISERVER_PORT"
  # One cluster key for root on every VM; each VM its own host key, pinned in known_hosts.
  [ -s "$SSH_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C nsdebug-e2e -f "$SSH_DIR/id_ed25519"
  cp "$SSH_DIR/id_ed25519.pub" "$share/ssh/authorized_keys"
  [ -s "$vdir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$vdir/ssh_host_ed25519_key"
  cp "$vdir/ssh_host_ed25519_key" "$vdir/ssh_host_ed25519_key.pub" "$share/ssh/"
  {
    grep -v "^$ip " "$SSH_DIR/known_hosts" 2>/dev/null || true
    echo "$ip $(cut -d' ' -f1-2 "$vdir/ssh_host_ed25519_key.pub")"
  } >"$SSH_DIR/known_hosts.new"
  mv "$SSH_DIR/known_hosts.new" "$SSH_DIR/known_hosts"
  # The cluster's binaries: hard links into the share when on one file system.
  local b
  for b in "$ctrd_bin/containerd" "$ctrd_bin/containerd-shim-runc-v2" "$ctrd_bin/ctr" "$ctrd_bin/runc" "$k8s_bin/k8s"; do
    rm -f "$share/bin/${b##*/}"
    ln "$(readlink -f "$b")" "$share/bin/${b##*/}" 2>/dev/null || cp "$b" "$share/bin/"
  done
  cp "$NODE_HERE/setup.sh" "$NODE_HERE/kubelet.yaml" "$NODE_HERE/containerd.toml" "$share/"
  cat >"$share/node.env" <<EOF
NODE=$name
IP=$ip
GATEWAY=$VM_NET.1
POD_CIDR=$(vm_pod_cidr "$i")
API_SERVER=$(cat "$DIR/node-ip"):$APISERVER_PORT
SERVICE_IP=$(service_ip)
EOF
  # The disk: a copy-on-write overlay on the cached image (which is never written); a new one
  # when the image was rebuilt since (image.sh removes the old one).
  if [ "$(cat "$vdir/image" 2>/dev/null)" != "$image" ] && ! vm_pid "$name" >/dev/null; then
    rm -f "$vdir/disk.qcow2"
  fi
  if [ ! -f "$vdir/disk.qcow2" ]; then
    qemu-img create -q -f qcow2 -F raw -b "$image/rootfs.img" "$vdir/disk.qcow2"
    echo "$image" >"$vdir/image"
  fi
}

# vm_images I ARCHIVE…: OCI archives the VM imports into its containerd at boot.
vm_share_images() {
  local i=$1 a share
  share=$VMS_DIR/$(vm_name "$i")/share/images
  shift
  rm -f "$share"/*.tar
  for a in "$@"; do ln "$a" "$share/${a##*/}" 2>/dev/null || cp "$a" "$share/"; done
}

# vm_start I IMAGE_DIR: boot VM I (returns at once; vm_wait waits for its kubelet).
vm_start() {
  local i=$1 image=$2 name vdir tap
  name=$(vm_name "$i") vdir=$VMS_DIR/$(vm_name "$i") tap=nsdbg-tap$i
  if vm_pid "$name" >/dev/null; then
    log "$name already running (pid $(vm_pid "$name"))"
    return 0
  fi
  ip link show "$tap" >/dev/null 2>&1 || ip tuntap add dev "$tap" mode tap
  ip link set "$tap" master "$VM_BRIDGE" up
  ip route replace "$(vm_pod_cidr "$i")" via "$(vm_ip "$i")"
  local accel=tcg,thread=multi,tb-size=256
  [ -n "${NSDEBUG_VM_KVM:-}" ] && accel=kvm
  rm -f "$vdir/console.log"
  # panic=10 oops=panic: a guest kernel that oopses reboots itself (QEMU resets it) and the node
  # comes back, where it would hang dead; seen under multi-threaded TCG: an int3 from a jump label
  # being patched, hit after the patch was done ("Oops: int3" in kmem_cache_free at boot)
  qemu-system-x86_64 -name "$name" -daemonize -pidfile "$vdir/qemu.pid" \
    -accel "$accel" -machine q35 -cpu max -m "$VM_MEMORY" -smp "$VM_CPUS" -nodefaults -display none \
    -serial "file:$vdir/console.log" -monitor "unix:$vdir/monitor.sock,server,nowait" \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 quiet systemd.unified_cgroup_hierarchy=1 mitigations=off net.ifnames=0 systemd.show_status=false panic=10 oops=panic" \
    -drive "file=$vdir/disk.qcow2,if=virtio,format=qcow2,cache=unsafe" \
    -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" -device "virtio-net-pci,netdev=n0,mac=52:54:00:6e:64:$(printf %02x "$i")" \
    -virtfs "local,path=$vdir/share,mount_tag=nsdebug,security_model=none,readonly=on" \
    >>"$LOGS/$name-qemu.log" 2>&1 || die "qemu for $name did not start (log: $LOGS/$name-qemu.log)"
}

vm_node_ready() {
  [ "$(kc get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# vm_wait I SECONDS: until VM I's node is Ready.
vm_wait() {
  local i=$1 secs=$2 name
  name=$(vm_name "$i")
  if ! wait_for "$name Ready" "$secs" vm_node_ready "$name"; then
    tail -n 40 "$VMS_DIR/$name/console.log" >&2 || true
    die "node $name not Ready within $secs s (console: $VMS_DIR/$name/console.log; ssh: cluster.sh ssh $name)"
  fi
  vm_panics "$name"
}

# vm_panics NAME: says so when the guest kernel panicked (and rebooted) since the VM started (a
# suite that failed while its node was rebooting is explained there).
vm_panics() {
  local n
  n=$(grep -c 'Kernel panic - not syncing' "$VMS_DIR/$1/console.log" 2>/dev/null) || true
  [ "${n:-0}" -eq 0 ] || log "$1: its kernel panicked $n time(s) and rebooted (console: $VMS_DIR/$1/console.log)"
}

# vm_stop NAME: SIGTERM makes QEMU quit at once, as its monitor's `quit` does (a guest
# poweroff would wait on every container); then SIGKILL.
vm_stop() {
  local name=$1 pid i
  pid=$(vm_pid "$name") || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  log "$name (qemu pid $pid) ignored SIGTERM for 10 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

vms_down() {
  local vdir name i
  for vdir in "$VMS_DIR"/*/; do
    [ -d "$vdir" ] || continue
    name=$(basename "$vdir")
    vm_panics "$name"
    vm_stop "$name"
    i=${name#nsdebug-vm}
    ip link del "nsdbg-tap$i" 2>/dev/null || true
    ip route del "$(vm_pod_cidr "$i")" 2>/dev/null || true
  done
  vm_host_network down
}
