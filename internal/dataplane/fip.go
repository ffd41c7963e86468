package dataplane

import (
	"context"
	"fmt"

	"github.com/capilab/capilab/internal/dataplane/docker"
)

// FIP helpers: a container holding the floating IP on the mirror of its
// external network, translating in its own network namespace (never the
// host's): traffic to the floating IP goes to the fixed IP, with the
// floating IP as source so the answer comes back through it. The host
// routes between the external and the tenant mirrors (DOCKER-USER rules),
// so the host, the kind network and the node itself (hairpin) all reach a
// node or a VIP through its floating IP.

// fipScript is the helper's program (the helper image's /bin/sh and
// iptables; nothing on the host).
func fipScript(fip, fixed string) string {
	return fmt.Sprintf(`set -e
iptables -t nat -A PREROUTING -d %[1]s -j DNAT --to-destination %[2]s
iptables -t nat -A POSTROUTING -d %[2]s -j SNAT --to-source %[1]s
trap 'exit 0' TERM INT
echo "floating IP %[1]s -> %[2]s"
while :; do sleep 3600 & wait $!; done
`, fip, fixed)
}

func (a *Agent) reconcileFIPs(ctx context.Context, fips []FloatingIP, mirrors map[string]mirror, helperOK bool, st *Status) []error {
	want := map[string]helperWant{}
	keep := map[string]bool{}
	for _, f := range fips {
		if f.PortID == "" || f.FixedIP == "" {
			continue
		}
		m, ok := mirrors[f.FloatingNetworkID]
		if !ok || !m.Spec.External {
			continue
		}
		if !helperOK {
			keep[f.ID] = true
			continue
		}
		spec := docker.ContainerSpec{
			Name:       fmt.Sprintf("%s-fip-%s-%s", a.opts.Owner, sanitize(f.FloatingIP, 15), short(f.ID)),
			Image:      a.opts.HelperImage,
			Hostname:   "fip-" + short(f.ID),
			Entrypoint: []string{"/bin/sh", "-c", fipScript(f.FloatingIP, f.FixedIP)},
			Labels: map[string]string{
				LabelOwner: a.opts.Owner, LabelKind: KindFIP, LabelFIPID: f.ID, LabelNetworkID: f.FloatingNetworkID,
				LabelSpec: specHash(f.FloatingIP, f.FixedIP, m.DockerName, a.opts.HelperImage),
			},
			Network: m.DockerName,
			IPv4:    f.FloatingIP,
			CapAdd:  []string{"NET_ADMIN", "NET_RAW"},
			Sysctls: map[string]string{
				"net.ipv4.ip_forward":              "1",
				"net.ipv4.conf.all.send_redirects": "0",
			},
			RestartPolicy: "unless-stopped",
		}
		want[f.ID] = helperWant{key: f.ID, spec: spec, what: "floating IP " + f.FloatingIP + " -> " + f.FixedIP, network: f.FloatingNetworkID}
	}
	n, errs := a.reconcileHelpers(ctx, KindFIP, LabelFIPID, want, keep)
	st.FloatingIPs = n
	return errs
}
