package lab

// Targets maps every Mage target name to its body. Magefiles look their
// target up here, so a test can run each one the way a user would.
func Targets() map[string]Target {
	return map[string]Target{
		"config:show":        ConfigShow,
		"config:check":       ConfigCheck,
		"kind:image":         KindImage,
		"kind:nodeimage":     KindNodeImage,
		"mgmt:create":        NotImplemented("mgmt:create"),
		"mgmt:delete":        NotImplemented("mgmt:delete"),
		"cluster:create":     NotImplemented("cluster:create"),
		"cluster:delete":     NotImplemented("cluster:delete"),
		"cluster:kubeconfig": NotImplemented("cluster:kubeconfig"),
		"check:run":          NotImplemented("check:run"),
		"check:quick":        NotImplemented("check:quick"),
		"check:conformance":  NotImplemented("check:conformance"),
		"check:storage":      NotImplemented("check:storage"),
		"check:csi":          NotImplemented("check:csi"),
		"clean:all":          NotImplemented("clean:all"),
		"clean:full":         CleanFull,
		"clean:check":        CleanCheck,
		"image:register":     ImageRegister,
		"appcred:create":     AppcredCreate,
		"appcred:delete":     AppcredDelete,
		"appcred:list":       AppcredList,
	}
}
