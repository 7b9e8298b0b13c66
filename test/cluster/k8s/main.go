// Multi-call binary ("hyperkube" style): one link of the Kubernetes control plane,
// kubelet and etcd, so the shared packages compile and link once. Dispatches on the
// name it was invoked as (symlinks kube-apiserver, kubelet, …) or on its first argument
// (`k8s kubelet --flags…`). The imports mirror each upstream cmd/<name>/main.go.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // for CronJob time zone support (kube-apiserver, kube-controller-manager)

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

var commands = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	"kubelet":                 func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := commands[name]; !ok && name != "etcd" && len(os.Args) > 1 {
		// `k8s kubelet --flags…`: drop our own name so the component sees its usual argv.
		name = os.Args[1]
		os.Args = append([]string{name}, os.Args[2:]...)
	}
	if name == "etcd" {
		etcdmain.Main(os.Args)
		return
	}
	newCommand, ok := commands[name]
	if !ok {
		names := []string{"etcd"}
		for n := range commands {
			names = append(names, n)
		}
		fmt.Fprintf(os.Stderr, "usage: k8s COMPONENT [flags]   (or call through a symlink)\ncomponents: %s\n", strings.Join(names, " "))
		os.Exit(2)
	}
	os.Exit(cli.Run(newCommand()))
}
