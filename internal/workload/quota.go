package workload

import (
	"fmt"
	"strings"
)

// Need is what one cluster takes from the project's quotas.
type Need struct {
	Cluster                      string
	Instances, Cores, RAMMiB     int
	Volumes, GigabytesVolumes    int
	LoadBalancers, FloatingIPs   int
	SecurityGroups, ServerGroups int
}

// NeedOf computes a cluster's need from its spec and flavors.
func NeedOf(s Spec, cp, worker Flavor, antiAffinity, ciliumGroup bool) Need {
	n := Need{Cluster: s.Name}
	n.Instances = s.ControlPlaneCount + s.WorkerCount
	n.Cores = s.ControlPlaneCount*cp.VCPUs + s.WorkerCount*worker.VCPUs
	n.RAMMiB = s.ControlPlaneCount*cp.RAMMiB + s.WorkerCount*worker.RAMMiB
	if s.ControlPlaneRootVolumeGiB > 0 {
		n.Volumes += s.ControlPlaneCount
		n.GigabytesVolumes += s.ControlPlaneCount * s.ControlPlaneRootVolumeGiB
	}
	if s.WorkerRootVolumeGiB > 0 {
		n.Volumes += s.WorkerCount
		n.GigabytesVolumes += s.WorkerCount * s.WorkerRootVolumeGiB
	}
	n.LoadBalancers = 1 // the API load balancer
	if !(len(s.RestrictKubeAPI) == 1 && s.RestrictKubeAPI[0] == "none") {
		n.FloatingIPs = 1
	}
	n.SecurityGroups = 2 // CAPO's control-plane and worker groups
	if ciliumGroup {
		n.SecurityGroups++
	}
	if antiAffinity {
		n.ServerGroups = 2
	}
	return n
}

// CheckQuota says, one line per resource, what a set of clusters needs
// beyond what the project has free; nil when it fits.
func CheckQuota(cloud string, q Quota, needs []Need) []string {
	var total Need
	var names []string
	for _, n := range needs {
		names = append(names, n.Cluster)
		total.Instances += n.Instances
		total.Cores += n.Cores
		total.RAMMiB += n.RAMMiB
		total.Volumes += n.Volumes
		total.GigabytesVolumes += n.GigabytesVolumes
		total.LoadBalancers += n.LoadBalancers
		total.FloatingIPs += n.FloatingIPs
		total.SecurityGroups += n.SecurityGroups
		total.ServerGroups += n.ServerGroups
	}
	var problems []string
	check := func(what string, need int, u Usage) {
		if need == 0 || u.Free() < 0 || need <= u.Free() {
			return
		}
		problems = append(problems, fmt.Sprintf("quota of cloud %s: %s: clusters %s need %d, %d of %d are free",
			cloud, what, strings.Join(names, ","), need, max(u.Free(), 0), u.Limit))
	}
	check("instances", total.Instances, q.Instances)
	check("cores", total.Cores, q.Cores)
	check("RAM (MiB)", total.RAMMiB, q.RAMMiB)
	check("volumes", total.Volumes, q.Volumes)
	check("volume gigabytes", total.GigabytesVolumes, q.GigabytesVolumes)
	check("load balancers", total.LoadBalancers, q.LoadBalancers)
	check("floating IPs", total.FloatingIPs, q.FloatingIPs)
	check("security groups", total.SecurityGroups, q.SecurityGroups)
	check("server groups", total.ServerGroups, q.ServerGroups)
	return problems
}
