#!/bin/sh
# Runs inside a VM node at every boot (nsdebug-node.service, from the read-only 9p share at
# /mnt/nsdebug that the host prepared: node.env, pki/, ssh/, bin/, images/, configs). Turns
# the generic image into node NODE: address, sshd keys, containerd 2 + kubelet as systemd
# units with the systemd cgroup driver, and the cluster's images imported before the kubelet
# starts (nothing can be pulled: there is no registry).
set -eu
S=/mnt/nsdebug
. "$S/node.env"
step() { echo "nsdebug-node: $*"; }

hostname "$NODE"
echo "$NODE" >/etc/hostname
printf '127.0.0.1 localhost\n%s %s\n' "$IP" "$NODE" >/etc/hosts
ip link set lo up
# The NIC's driver may still be loading (udev, in parallel with this unit).
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
ip link set eth0 up
ip addr replace "$IP/24" dev eth0
ip route replace default via "$GATEWAY"
step "address $IP, gateway $GATEWAY"

install -d -m 700 /root/.ssh
install -m 600 "$S/ssh/authorized_keys" /root/.ssh/authorized_keys
install -m 600 "$S/ssh/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
install -m 644 "$S/ssh/ssh_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\n' >/etc/ssh/sshd_config.d/nsdebug-hostkey.conf
# sshd starts after this script (nsdebug-node.service is ordered before ssh.service).

# What a kubelet node needs of the kernel.
modprobe overlay
modprobe br_netfilter
sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
# No kube-proxy: the `kubernetes` Service's ClusterIP is the API server (as on the host node).
for chain in PREROUTING OUTPUT; do
  iptables -w -t nat -C "$chain" -d "$SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$API_SERVER" 2>/dev/null ||
    iptables -w -t nat -A "$chain" -d "$SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$API_SERVER"
done

install -m 755 "$S/bin/containerd" "$S/bin/containerd-shim-runc-v2" "$S/bin/ctr" "$S/bin/runc" /usr/local/bin/
install -m 755 "$S/bin/k8s" /usr/local/bin/kubelet
install -d /etc/containerd /etc/cni/net.d /etc/kubernetes/pki /var/lib/kubelet
install -m 644 "$S/containerd.toml" /etc/containerd/config.toml
install -m 644 "$S/pki/ca.crt" /etc/kubernetes/pki/ca.crt
install -m 644 "$S/pki/kubelet.crt" /etc/kubernetes/pki/kubelet.crt
install -m 600 "$S/pki/kubelet.key" /etc/kubernetes/pki/kubelet.key
install -m 600 "$S/kubelet.kubeconfig" /etc/kubernetes/kubelet.kubeconfig
install -m 644 "$S/kubelet.yaml" /etc/kubernetes/kubelet-config.yaml
cat >/etc/cni/net.d/10-nsdebug.conflist <<CNI
{
  "cniVersion": "1.0.0",
  "name": "nsdebug",
  "plugins": [
    { "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$POD_CIDR" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
CNI

cat >/etc/systemd/system/containerd.service <<'UNIT'
[Unit]
Description=containerd (nsdebug e2e node)
After=network.target local-fs.target
[Service]
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=2
LimitNOFILE=infinity
TasksMax=infinity
OOMScoreAdjust=-999
[Install]
WantedBy=multi-user.target
UNIT
cat >/etc/systemd/system/kubelet.service <<UNIT
[Unit]
Description=kubelet (nsdebug e2e node)
After=containerd.service
Requires=containerd.service
[Service]
ExecStart=/usr/local/bin/kubelet --config /etc/kubernetes/kubelet-config.yaml --kubeconfig /etc/kubernetes/kubelet.kubeconfig --hostname-override $NODE --node-ip $IP --v 1
Restart=always
RestartSec=2
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl start containerd.service
step "containerd $(/usr/local/bin/containerd --version | awk '{ print $3 }') started"
for a in "$S"/images/*.tar; do
  [ -e "$a" ] || continue
  ctr -n k8s.io images import --local "$a" >/dev/null
  step "imported ${a##*/}"
done
systemctl start kubelet.service
step "kubelet started"
