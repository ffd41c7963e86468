package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// The service account files every pod gets.
const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// node is the part of a core/v1 Node the agent reads.
type node struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR  string   `json:"podCIDR"`
		PodCIDRs []string `json:"podCIDRs"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
	} `json:"status"`
}

type nodeList struct {
	Items []node `json:"items"`
}

// apiClient lists nodes with the pod's service account.
type apiClient struct {
	base      string // https://host:port
	tokenFile string
	http      *http.Client
}

// inClusterAPI builds the client from the pod environment. kind sets
// CONTROL_PLANE_ENDPOINT (host:port of the API server on the node network),
// usable before kube-proxy has programmed the kubernetes Service.
func inClusterAPI() (*apiClient, error) {
	hostPort := os.Getenv("CONTROL_PLANE_ENDPOINT")
	if hostPort == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("neither CONTROL_PLANE_ENDPOINT nor KUBERNETES_SERVICE_HOST/PORT is set: not running in a pod?")
		}
		hostPort = net.JoinHostPort(host, port)
	}
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return nil, fmt.Errorf("service account CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("service account CA %s/ca.crt: no certificate", saDir)
	}
	return newAPIClient("https://"+hostPort, saDir+"/token", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), nil
}

func newAPIClient(base, tokenFile string, tlsCfg *tls.Config) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &apiClient{base: strings.TrimRight(base, "/"), tokenFile: tokenFile, http: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

func (c *apiClient) listNodes(ctx context.Context) ([]node, error) {
	// the token is re-read every time: the kubelet rotates it
	token, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("service account token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/nodes", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("list nodes: read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list nodes: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var list nodeList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("list nodes: decode: %w", err)
	}
	return list.Items, nil
}
