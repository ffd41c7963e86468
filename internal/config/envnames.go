package config

import (
	"fmt"
	"strings"
)

// ReplacedEnv are variables SCS's k8s-cluster-api-provider read that capilab
// does not: setting one is refused with what replaces it, never ignored.
var ReplacedEnv = map[string]string{
	"ENVIRONMENT": "is SCS's environment selector (tfvars file and tofu workspace); capilab does not read it: " +
		"select the cloud with OS_CLOUD=<clouds.yaml entry> and put the environment's settings into lab.yaml (LAB_CONFIG=<file>)",
}

// processEnv are variables besides the knobs that a capilab run reads: the
// settings file, the standard OpenStack client variables, the kubeconfig.
var processEnv = map[string]bool{SettingsFileEnv: true, "KUBECONFIG": true, "CAPILAB_KIND_CACHE": true, "CAPILAB_TOOL_CACHE": true}

// EnvName says whether name is a variable capilab reads (a setting's
// environment name, OS_*, LAB_CONFIG, …). For an unknown name it returns a
// hint: the closest setting, or what replaces an SCS variable.
func EnvName(name string) (known bool, hint string) {
	if why, ok := ReplacedEnv[name]; ok {
		return false, why
	}
	if processEnv[name] || strings.HasPrefix(name, "OS_") || strings.HasPrefix(name, "MAGEFILE_") {
		return true, ""
	}
	names := map[string]Knob{}
	for _, k := range Knobs() {
		for _, e := range k.Env {
			if e == name {
				return true, ""
			}
			names[e] = k
		}
	}
	if s := suggest(strings.ToUpper(name), names); s != "" {
		return false, "is not a capilab setting" + s
	}
	return false, "is not a capilab setting (make config lists them)"
}

// replacedProblems refuses SCS variables capilab does not read. ENVIRONMENT
// naming the cloud that is selected anyway changes nothing and passes.
func (l *Loaded) replacedProblems(env map[string]string) Problems {
	var ps Problems
	for name, why := range ReplacedEnv {
		v := env[name]
		if v == "" || (name == "ENVIRONMENT" && v == l.Settings.Cloud) {
			continue
		}
		ps = append(ps, Problem{Source: "env " + name, Message: fmt.Sprintf("%s %s", quoteShort(v), why)})
	}
	return ps
}

func quoteShort(v string) string {
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return fmt.Sprintf("%q", v)
}
