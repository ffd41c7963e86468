package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
)

// execHost changes the node through iproute2 and iptables (the agent image is
// built on the node's Debian rootfs, which has both).
type execHost struct{}

const masqChain = "CAPILAB-MASQ"

func runCmd(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func (execHost) Routes(ctx context.Context) ([]route, error) {
	var out []route
	for _, family := range []string{"-4", "-6"} {
		b, err := runCmd(ctx, "ip", "-j", family, "route", "show", "proto", routeProto)
		if err != nil {
			return nil, err
		}
		rs, err := parseIPRoutes(b)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// parseIPRoutes reads `ip -j route show` output.
func parseIPRoutes(b []byte) ([]route, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	var raw []struct {
		Dst     string `json:"dst"`
		Gateway string `json:"gateway"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse ip route output: %w", err)
	}
	out := make([]route, 0, len(raw))
	for _, r := range raw {
		out = append(out, route{Dst: r.Dst, Via: r.Gateway})
	}
	return out, nil
}

func (execHost) ReplaceRoute(ctx context.Context, r route) error {
	_, err := runCmd(ctx, "ip", "route", "replace", r.Dst, "via", r.Via, "proto", routeProto)
	return err
}

func (execHost) DeleteRoute(ctx context.Context, r route) error {
	_, err := runCmd(ctx, "ip", "route", "del", r.Dst, "via", r.Via, "proto", routeProto)
	return err
}

func (execHost) EnsureMasquerade(ctx context.Context, src *net.IPNet, cluster []*net.IPNet) error {
	ipt, err := iptablesFor(ctx, src.IP.To4() == nil)
	if err != nil {
		return err
	}
	// chain: RETURN for the cluster's pod subnets of src's family, else MASQUERADE
	if _, err := runCmd(ctx, ipt, "-w", "-t", "nat", "-N", masqChain); err != nil && !strings.Contains(err.Error(), "exists") {
		return err
	}
	if _, err := runCmd(ctx, ipt, "-w", "-t", "nat", "-F", masqChain); err != nil {
		return err
	}
	for _, c := range cluster {
		if (c.IP.To4() == nil) != (src.IP.To4() == nil) {
			continue
		}
		if _, err := runCmd(ctx, ipt, "-w", "-t", "nat", "-A", masqChain, "-d", c.String(), "-j", "RETURN"); err != nil {
			return err
		}
	}
	if _, err := runCmd(ctx, ipt, "-w", "-t", "nat", "-A", masqChain, "-j", "MASQUERADE"); err != nil {
		return err
	}
	jump := []string{"POSTROUTING", "-s", src.String(), "-m", "comment", "--comment", "capilab cni-agent", "-j", masqChain}
	if _, err := runCmd(ctx, ipt, append([]string{"-w", "-t", "nat", "-C"}, jump...)...); err == nil {
		return nil
	}
	_, err = runCmd(ctx, ipt, append([]string{"-w", "-t", "nat", "-A"}, jump...)...)
	return err
}

// iptablesFor picks the iptables variant (nft or legacy) the node already
// uses, the way kube-proxy's iptables-wrapper does: the one with more rules.
func iptablesFor(ctx context.Context, v6 bool) (string, error) {
	prefix := "iptables"
	if v6 {
		prefix = "ip6tables"
	}
	count := func(variant string) int {
		b, err := runCmd(ctx, prefix+"-"+variant+"-save")
		if err != nil {
			return -1
		}
		return bytes.Count(b, []byte("\n-A "))
	}
	nft, legacy := count("nft"), count("legacy")
	switch {
	case nft < 0 && legacy < 0:
		return "", fmt.Errorf("neither %s-nft-save nor %s-legacy-save works", prefix, prefix)
	case legacy > nft:
		return prefix + "-legacy", nil
	default:
		return prefix + "-nft", nil
	}
}
