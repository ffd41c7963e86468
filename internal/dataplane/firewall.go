package dataplane

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Docker isolates bridge networks from each other (its DOCKER-ISOLATION
// chains drop forwarding between them). DOCKER-USER is the chain Docker
// documents for the machine's own rules: it comes first in FORWARD and
// Docker never flushes it. The agent adds exactly the forwarding the data
// plane needs there — between the external networks it mirrors and the
// tenant networks it mirrors (floating IPs), and between the external
// networks and the kind network (a management cluster reaching floating
// IPs and load balancer VIPs) — each rule tagged with a comment naming the
// network it exists for, and removes them when that network goes and when
// the agent stops. No other chain or table of the host is touched.

// Rule accepts forwarding from bridge In to bridge Out.
type Rule struct {
	In, Out string
	// Network is the Docker network the rule exists for (its removal
	// removes the rule).
	Network string
}

// Firewall keeps a set of rules in place.
type Firewall interface {
	// Sync makes the agent's rules exactly rules.
	Sync(ctx context.Context, rules []Rule) error
	// RemoveAll removes every rule of the agent.
	RemoveAll(ctx context.Context) error
	// Rules lists the agent's rules currently in place.
	Rules(ctx context.Context) ([]Rule, error)
}

// IPTables manages the rules with the host's iptables command (the same
// binary, hence the same back end, Docker uses).
type IPTables struct {
	// Bin is the iptables command (default "iptables").
	Bin string
	// Owner tags the rules (comment "capilab-dataplane:<owner>:<network>").
	Owner string
	// Run runs iptables; default exec with a 30 s bound.
	Run func(ctx context.Context, args ...string) ([]byte, error)
}

const chain = "DOCKER-USER"

func (f *IPTables) tag() string { return "capilab-dataplane:" + f.Owner + ":" }

func (f *IPTables) run(ctx context.Context, args ...string) ([]byte, error) {
	if f.Run != nil {
		return f.Run(ctx, args...)
	}
	bin := f.Bin
	if bin == "" {
		bin = "iptables"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args = append([]string{"-w", "10"}, args...)
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func (f *IPTables) ruleArgs(r Rule) []string {
	return []string{"-i", r.In, "-o", r.Out, "-m", "comment", "--comment", f.tag() + r.Network, "-j", "ACCEPT"}
}

var ruleLine = regexp.MustCompile(`^-A DOCKER-USER -i (\S+) -o (\S+) -m comment --comment "?([^" ]+)"? -j ACCEPT$`)

// Rules lists the agent's rules in DOCKER-USER.
func (f *IPTables) Rules(ctx context.Context) ([]Rule, error) {
	out, err := f.run(ctx, "-S", chain)
	if err != nil {
		return nil, err
	}
	return parseRules(string(out), f.tag()), nil
}

func parseRules(listing, tag string) []Rule {
	var rules []Rule
	for _, line := range strings.Split(listing, "\n") {
		m := ruleLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || !strings.HasPrefix(m[3], tag) {
			continue
		}
		rules = append(rules, Rule{In: m[1], Out: m[2], Network: strings.TrimPrefix(m[3], tag)})
	}
	return rules
}

// Sync removes the agent's rules that are not in want and inserts the
// missing ones at the top of DOCKER-USER (before its final RETURN).
func (f *IPTables) Sync(ctx context.Context, want []Rule) error {
	have, err := f.Rules(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range have {
		if !slices.Contains(want, r) {
			if _, err := f.run(ctx, append([]string{"-D", chain}, f.ruleArgs(r)...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, r := range want {
		if !slices.Contains(have, r) {
			if _, err := f.run(ctx, append([]string{"-I", chain, "1"}, f.ruleArgs(r)...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// RemoveAll removes every rule of the agent from DOCKER-USER.
func (f *IPTables) RemoveAll(ctx context.Context) error { return f.Sync(ctx, nil) }

// firewallRules derives the wanted rules from the mirrors and the kind
// networks present on the engine.
func (a *Agent) firewallRules(ctx context.Context, mirrors map[string]mirror) []Rule {
	var ext, tenant []mirror
	for _, m := range mirrors {
		if m.Spec.External {
			ext = append(ext, m)
		} else {
			tenant = append(tenant, m)
		}
	}
	var rules []Rule
	for _, e := range ext {
		for _, t := range tenant {
			rules = append(rules,
				Rule{In: e.Bridge, Out: t.Bridge, Network: t.DockerName},
				Rule{In: t.Bridge, Out: e.Bridge, Network: t.DockerName})
		}
		for _, k := range a.kindBridges(ctx) {
			rules = append(rules,
				Rule{In: k, Out: e.Bridge, Network: e.DockerName},
				Rule{In: e.Bridge, Out: k, Network: e.DockerName})
		}
	}
	sort.Slice(rules, func(i, j int) bool {
		return rules[i].Network+rules[i].In+rules[i].Out < rules[j].Network+rules[j].In+rules[j].Out
	})
	return rules
}

// kindBridges are the bridges of the kind networks on the engine.
func (a *Agent) kindBridges(ctx context.Context) []string {
	var out []string
	for _, name := range a.opts.KindNetworks {
		n, err := a.opts.Docker.NetworkInspect(ctx, name)
		if err != nil {
			continue // no kind cluster yet
		}
		if b := n.BridgeName(); b != "" {
			out = append(out, b)
		}
	}
	return out
}
