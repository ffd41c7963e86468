package lab

// Targets maps every Mage target name to its body. Magefiles look their
// target up here, so a test can run each one the way a user would.
//
// A target that changes the lab is wrapped in Mutating: it holds the lab's
// lock (a second such run of the same lab says who holds it and exits with
// ExitBusy, doing nothing), and it either honours dry_run or refuses it.
func Targets() map[string]Target {
	m := map[string]Target{
		"config:show":        ConfigShow,
		"config:check":       ConfigCheck,
		"kind:image":         KindImage,
		"kind:nodeimage":     KindNodeImage,
		"mirror:push":        MirrorPush,
		"clean:full":         Mutating("clean:full", true, CleanFull),
		"clean:check":        CleanCheck,
		"image:register":     Mutating("image:register", false, ImageRegister),
		"appcred:create":     Mutating("appcred:create", false, AppcredCreate),
		"appcred:delete":     Mutating("appcred:delete", true, AppcredDelete),
		"appcred:list":       AppcredList,
		"mgmt:create":        Mutating("mgmt:create", false, MgmtCreate),
		"mgmt:delete":        Mutating("mgmt:delete", true, MgmtDelete),
		"mgmt:status":        MgmtStatus,
		"clean:all":          Mutating("clean:all", true, CleanAll),
		"cluster:kubeconfig": GetKubeconfig,
		"cluster:create":     Mutating("cluster:create", false, ClusterCreate),
		"cluster:delete":     Mutating("cluster:delete", false, ClusterDelete),
		"nightly:run":        Mutating("nightly:run", false, Nightly),
		// The check targets take no lab lock: checks of different
		// clusters of one lab may run at once; one cluster takes one run
		// at a time (internal/conformance reserves it).
		"check:run":         CheckRun,
		"check:quick":       CheckQuick,
		"check:conformance": CheckConformance,
		"check:storage":     CheckStorage,
		"check:csi":         CheckCSI,
	}
	for name, mutating := range pending {
		t := NotImplemented(name)
		if mutating {
			t = Mutating(name, false, t)
		}
		m[name] = t
	}
	// With mgmt_mode remote these act on the remote management node
	// (remote.go); with mgmt_mode local they stay what they are above.
	for name, rt := range remoteTargets {
		m[name] = ByMgmtMode(m[name], rt)
	}
	m["mgmt:ssh"] = MgmtSSH
	return m
}

// remoteTargets are the bodies of the targets for mgmt_mode remote: the
// node is built, cleaned and destroyed here; the cluster and check
// targets run on the node (make <target> there, followed from here).
var remoteTargets = map[string]Target{
	"mgmt:create":        Mutating("mgmt:create", true, RemoteCreate), // DRY_RUN=1: OpenTofu plan only
	"mgmt:delete":        Mutating("mgmt:delete", false, RemoteDelete(false)),
	"clean:all":          Mutating("clean:all", false, RemoteDelete(true)),
	"mgmt:status":        RemoteStatus,
	"cluster:kubeconfig": RemoteKubeconfig,
	"cluster:create":     Mutating("cluster:create", false, RemoteForward("create_cluster")),
	"cluster:delete":     Mutating("cluster:delete", false, RemoteForward("delete_cluster")),
	"check:run":          RemoteForward("check"),
	"check:quick":        RemoteForward("check-quick"),
	"check:conformance":  RemoteForward("check-conformance"),
	"check:storage":      RemoteForward("check-storage"),
	"check:csi":          RemoteForward("check-csi"),
}

// pending are the targets whose work has not landed: each fails loudly
// (exit code 1, "not implemented yet") and makes no cloud or cluster call.
// The value says whether the target will change the lab (and so already
// takes its lock and refuses dry_run). Implementing one means moving it
// into Targets above.
var pending = map[string]bool{}

// Pending lists the targets whose work has not landed yet.
func Pending() []string {
	out := make([]string, 0, len(pending))
	for name := range pending {
		out = append(out, name)
	}
	return out
}
