package remote

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// apiServerName is a name every kubeadm API server certificate carries, so
// that a kubeconfig whose server is the floating IP (which the certificate
// does not name) still verifies the server.
const apiServerName = "kubernetes"

// RewriteKubeconfig turns the management cluster's admin kubeconfig, as
// the node holds it, into one for this machine: the server becomes
// https://<host>:<port> (the floating IP and the port the API server is
// published on), TLS verification names the certificate's "kubernetes",
// and the cluster, user and context are called <name>.
func RewriteKubeconfig(data []byte, host, port, name string) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("kubeconfig from the node: %w", err)
	}
	clusters, _ := doc["clusters"].([]any)
	users, _ := doc["users"].([]any)
	if len(clusters) != 1 || len(users) != 1 {
		return nil, fmt.Errorf("kubeconfig from the node: want one cluster and one user, have %d and %d", len(clusters), len(users))
	}
	cl, _ := clusters[0].(map[string]any)
	c, _ := cl["cluster"].(map[string]any)
	server, _ := c["server"].(string)
	if c == nil || server == "" {
		return nil, fmt.Errorf("kubeconfig from the node: the cluster has no server")
	}
	if _, err := url.Parse(server); err != nil {
		return nil, fmt.Errorf("kubeconfig from the node: server %q: %w", server, err)
	}
	c["server"] = "https://" + net.JoinHostPort(host, port)
	c["tls-server-name"] = apiServerName
	cl["name"] = name
	u, _ := users[0].(map[string]any)
	if u == nil {
		return nil, fmt.Errorf("kubeconfig from the node: malformed user")
	}
	u["name"] = name + "-admin"
	doc["contexts"] = []any{map[string]any{"name": name, "context": map[string]any{"cluster": name, "user": name + "-admin"}}}
	doc["current-context"] = name
	return yaml.Marshal(doc)
}

// publishedPort reads `docker port <container> 6443/tcp`: the first
// binding's address and port.
func publishedPort(out string) (addr, port string, err error) {
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		a, p, err := net.SplitHostPort(line)
		if err != nil {
			return "", "", fmt.Errorf("docker port: %q: %w", line, err)
		}
		return a, p, nil
	}
	return "", "", fmt.Errorf("docker port: the API server port is not published")
}

// reachableFromOutside reports whether a published address listens on
// more than the node's loopback.
func reachableFromOutside(addr string) bool {
	ip := net.ParseIP(addr)
	return ip == nil || !ip.IsLoopback()
}
