// Package docker is a small client of the Docker Engine HTTP API over its
// unix socket: the few calls devcloud's data plane needs (networks,
// containers, exec, archives, images), typed only as far as they are used.
//
// Why not the Docker SDK: github.com/docker/docker pulls in a large
// dependency tree for a handful of JSON calls, and the CLI cannot set a
// container's MAC address against the 20.10 engines of Debian 12 (the 28.x
// CLI sends it per network, which needs API 1.44). The API itself can, at
// every version: this client negotiates the version with the engine and
// puts the MAC where that version expects it.
package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultSocket is where Docker engines listen.
const DefaultSocket = "/var/run/docker.sock"

// MaxAPIVersion is the newest API version this client speaks; it uses the
// engine's version when that is older.
const MaxAPIVersion = "1.45"

// Client talks to one engine. Use New.
type Client struct {
	http    *http.Client
	version string // negotiated API version, e.g. "1.41"
}

// New returns a client of the engine at socket (DefaultSocket when empty)
// and negotiates the API version.
func New(ctx context.Context, socket string) (*Client, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    8,
		IdleConnTimeout: 30 * time.Second,
	}
	c := &Client{http: &http.Client{Transport: tr}}
	var v struct {
		APIVersion    string `json:"ApiVersion"`
		MinAPIVersion string `json:"MinAPIVersion"`
		Version       string `json:"Version"`
	}
	if err := c.do(ctx, http.MethodGet, "/version", nil, nil, &v); err != nil {
		return nil, fmt.Errorf("docker engine at %s: %w", socket, err)
	}
	c.version = MaxAPIVersion
	if VersionLess(v.APIVersion, MaxAPIVersion) {
		c.version = v.APIVersion
	}
	return c, nil
}

// APIVersion is the negotiated API version.
func (c *Client) APIVersion() string { return c.version }

// VersionLess compares API versions like "1.41" < "1.44".
func VersionLess(a, b string) bool {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := range 2 {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// Error is an answer of the engine with an error status.
type Error struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("docker %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

// IsNotFound reports a 404 of the engine.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsConflict reports a 409 of the engine (name in use, already exists).
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

func (c *Client) url(path string, query url.Values) string {
	u := "http://docker"
	if c.version != "" {
		u += "/v" + c.version
	}
	u += path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// do sends a request with an optional JSON (or io.Reader) body and decodes
// a JSON answer into out (when non-nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("docker %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd, ctype = b, "application/x-tar"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("docker %s %s: %w", method, path, err)
		}
		rd, ctype = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, query), rd)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var m struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &m) == nil && m.Message != "" {
			msg = m.Message
		}
		return nil, &Error{Method: method, Path: path, Status: resp.StatusCode, Message: msg}
	}
	return resp, nil
}

// Filters encodes the engine's filter syntax: {"label": ["a=b"]}.
func Filters(f map[string][]string) url.Values {
	q := url.Values{}
	if len(f) == 0 {
		return q
	}
	raw, _ := json.Marshal(f)
	q.Set("filters", string(raw))
	return q
}

// ---- networks -------------------------------------------------------------

// IPAMConfig is one address pool of a network.
type IPAMConfig struct {
	Subnet  string `json:"Subnet,omitempty"`
	IPRange string `json:"IPRange,omitempty"`
	Gateway string `json:"Gateway,omitempty"`
}

// NetworkSpec is what NetworkCreate sends.
type NetworkSpec struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver,omitempty"`
	Internal   bool              `json:"Internal,omitempty"`
	IPAM       *IPAM             `json:"IPAM,omitempty"`
	Options    map[string]string `json:"Options,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
	CheckDupes bool              `json:"CheckDuplicate,omitempty"`
}

// IPAM is a network's address management.
type IPAM struct {
	Driver string       `json:"Driver,omitempty"`
	Config []IPAMConfig `json:"Config"`
}

// Network is what the engine says about a network.
type Network struct {
	ID         string                     `json:"Id"`
	Name       string                     `json:"Name"`
	Driver     string                     `json:"Driver"`
	IPAM       IPAM                       `json:"IPAM"`
	Options    map[string]string          `json:"Options"`
	Labels     map[string]string          `json:"Labels"`
	Containers map[string]NetworkEndpoint `json:"Containers"`
}

// NetworkEndpoint is a container's attachment as a network lists it.
type NetworkEndpoint struct {
	Name        string `json:"Name"`
	IPv4Address string `json:"IPv4Address"`
	MacAddress  string `json:"MacAddress"`
}

// BridgeName is the Linux bridge of a bridge network: the name given in
// its options, else Docker's default br-<first 12 of the ID>.
func (n *Network) BridgeName() string {
	if b := n.Options["com.docker.network.bridge.name"]; b != "" {
		return b
	}
	if n.Name == "bridge" {
		return "docker0"
	}
	if len(n.ID) >= 12 {
		return "br-" + n.ID[:12]
	}
	return ""
}

// NetworkCreate creates a network and returns its ID.
func (c *Client) NetworkCreate(ctx context.Context, spec NetworkSpec) (string, error) {
	var out struct {
		ID string `json:"Id"`
	}
	spec.CheckDupes = true
	if err := c.do(ctx, http.MethodPost, "/networks/create", nil, spec, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// NetworkInspect returns one network by name or ID.
func (c *Client) NetworkInspect(ctx context.Context, id string) (*Network, error) {
	var n Network
	if err := c.do(ctx, http.MethodGet, "/networks/"+url.PathEscape(id), nil, nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// NetworkList lists networks matching the filters.
func (c *Client) NetworkList(ctx context.Context, filters map[string][]string) ([]Network, error) {
	var out []Network
	if err := c.do(ctx, http.MethodGet, "/networks", Filters(filters), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// NetworkRemove removes a network; a missing one is no error.
func (c *Client) NetworkRemove(ctx context.Context, id string) error {
	err := c.do(ctx, http.MethodDelete, "/networks/"+url.PathEscape(id), nil, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// NetworkConnect attaches a container to a network with a fixed address.
func (c *Client) NetworkConnect(ctx context.Context, network, container, ipv4 string) error {
	body := map[string]any{"Container": container}
	if ipv4 != "" {
		body["EndpointConfig"] = map[string]any{"IPAMConfig": map[string]string{"IPv4Address": ipv4}}
	}
	return c.do(ctx, http.MethodPost, "/networks/"+url.PathEscape(network)+"/connect", nil, body, nil)
}

// ---- containers -----------------------------------------------------------

// ContainerSpec is the subset of a container's configuration the data
// plane sets. Network, IPv4 and MAC describe its one network attachment.
type ContainerSpec struct {
	Name       string
	Image      string
	Hostname   string
	Entrypoint []string
	Cmd        []string
	Env        []string
	Labels     map[string]string
	Tty        bool

	Network string // Docker network name or ID
	IPv4    string // fixed address on Network
	MAC     string // MAC address on Network ("" lets Docker choose)

	Privileged   bool
	CapAdd       []string
	SecurityOpt  []string
	Tmpfs        map[string]string // mount point → options
	Binds        []string          // host:container[:ro]
	Volumes      []string          // anonymous volumes (mount points)
	CgroupnsMode string            // "private" or "host"
	Sysctls      map[string]string
	Init         *bool
	// RestartPolicy: "", "no", "always", "unless-stopped", "on-failure".
	RestartPolicy string
	RestartMax    int
}

type containerCreate struct {
	Hostname         string              `json:"Hostname,omitempty"`
	Image            string              `json:"Image"`
	Entrypoint       []string            `json:"Entrypoint,omitempty"`
	Cmd              []string            `json:"Cmd,omitempty"`
	Env              []string            `json:"Env,omitempty"`
	Labels           map[string]string   `json:"Labels,omitempty"`
	Tty              bool                `json:"Tty,omitempty"`
	MacAddress       string              `json:"MacAddress,omitempty"`
	Volumes          map[string]struct{} `json:"Volumes,omitempty"`
	HostConfig       hostConfig          `json:"HostConfig"`
	NetworkingConfig *networkingConfig   `json:"NetworkingConfig,omitempty"`
}

type hostConfig struct {
	NetworkMode   string            `json:"NetworkMode,omitempty"`
	Privileged    bool              `json:"Privileged,omitempty"`
	CapAdd        []string          `json:"CapAdd,omitempty"`
	SecurityOpt   []string          `json:"SecurityOpt,omitempty"`
	Tmpfs         map[string]string `json:"Tmpfs,omitempty"`
	Binds         []string          `json:"Binds,omitempty"`
	CgroupnsMode  string            `json:"CgroupnsMode,omitempty"`
	Sysctls       map[string]string `json:"Sysctls,omitempty"`
	Init          *bool             `json:"Init,omitempty"`
	RestartPolicy *restartPolicy    `json:"RestartPolicy,omitempty"`
}

type restartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount,omitempty"`
}

type networkingConfig struct {
	EndpointsConfig map[string]endpointConfig `json:"EndpointsConfig"`
}

type endpointConfig struct {
	IPAMConfig *endpointIPAM `json:"IPAMConfig,omitempty"`
	MacAddress string        `json:"MacAddress,omitempty"`
}

type endpointIPAM struct {
	IPv4Address string `json:"IPv4Address,omitempty"`
}

// ContainerCreate creates (does not start) a container and returns its ID.
func (c *Client) ContainerCreate(ctx context.Context, spec ContainerSpec) (string, error) {
	body := containerCreate{
		Hostname:   spec.Hostname,
		Image:      spec.Image,
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		Env:        spec.Env,
		Labels:     spec.Labels,
		Tty:        spec.Tty,
		HostConfig: hostConfig{
			NetworkMode:  spec.Network,
			Privileged:   spec.Privileged,
			CapAdd:       spec.CapAdd,
			SecurityOpt:  spec.SecurityOpt,
			Tmpfs:        spec.Tmpfs,
			Binds:        spec.Binds,
			CgroupnsMode: spec.CgroupnsMode,
			Sysctls:      spec.Sysctls,
			Init:         spec.Init,
		},
	}
	if spec.RestartPolicy != "" {
		body.HostConfig.RestartPolicy = &restartPolicy{Name: spec.RestartPolicy, MaximumRetryCount: spec.RestartMax}
	}
	if len(spec.Volumes) > 0 {
		body.Volumes = map[string]struct{}{}
		for _, v := range spec.Volumes {
			body.Volumes[v] = struct{}{}
		}
	}
	if spec.Network != "" {
		ep := endpointConfig{}
		if spec.IPv4 != "" {
			ep.IPAMConfig = &endpointIPAM{IPv4Address: spec.IPv4}
		}
		// API < 1.44 takes the MAC in the container config; 1.44 and newer
		// per network endpoint (the top-level field is deprecated there).
		if spec.MAC != "" {
			if VersionLess(c.version, "1.44") {
				body.MacAddress = spec.MAC
			} else {
				ep.MacAddress = spec.MAC
			}
		}
		body.NetworkingConfig = &networkingConfig{EndpointsConfig: map[string]endpointConfig{spec.Network: ep}}
	}
	q := url.Values{}
	if spec.Name != "" {
		q.Set("name", spec.Name)
	}
	var out struct {
		ID string `json:"Id"`
	}
	if err := c.do(ctx, http.MethodPost, "/containers/create", q, body, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// ContainerStart starts a container (no error when it already runs).
func (c *Client) ContainerStart(ctx context.Context, id string) error {
	err := c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil, nil, nil)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotModified {
		return nil
	}
	return err
}

// ContainerStop stops a container, killing it after timeout.
func (c *Client) ContainerStop(ctx context.Context, id string, timeout time.Duration) error {
	q := url.Values{"t": {strconv.Itoa(int(timeout.Seconds()))}}
	err := c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/stop", q, nil, nil)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotModified {
		return nil
	}
	return err
}

// ContainerRemove removes a container, force-killing it and removing its
// anonymous volumes (a node's /var holds gigabytes). Missing is no error.
func (c *Client) ContainerRemove(ctx context.Context, id string) error {
	q := url.Values{"force": {"1"}, "v": {"1"}}
	err := c.do(ctx, http.MethodDelete, "/containers/"+url.PathEscape(id), q, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	var e *Error
	// "removal of container ... is already in progress"
	if errors.As(err, &e) && e.Status == http.StatusConflict && strings.Contains(e.Message, "already in progress") {
		return nil
	}
	return err
}

// Container is what the engine says about a container (inspect).
type Container struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	Image string `json:"Image"`
	State struct {
		Status     string `json:"Status"` // created, running, paused, restarting, removing, exited, dead
		Running    bool   `json:"Running"`
		ExitCode   int    `json:"ExitCode"`
		Error      string `json:"Error"`
		StartedAt  string `json:"StartedAt"`
		FinishedAt string `json:"FinishedAt"`
	} `json:"State"`
	RestartCount int `json:"RestartCount"`
	Config       struct {
		Hostname string            `json:"Hostname"`
		Image    string            `json:"Image"`
		Labels   map[string]string `json:"Labels"`
	} `json:"Config"`
	NetworkSettings struct {
		Networks map[string]struct {
			NetworkID  string `json:"NetworkID"`
			IPAddress  string `json:"IPAddress"`
			MacAddress string `json:"MacAddress"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
	Mounts []struct {
		Type        string `json:"Type"`
		Name        string `json:"Name"`
		Destination string `json:"Destination"`
	} `json:"Mounts"`
}

// ContainerInspect returns one container by name or ID.
func (c *Client) ContainerInspect(ctx context.Context, id string) (*Container, error) {
	var ct Container
	if err := c.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/json", nil, nil, &ct); err != nil {
		return nil, err
	}
	return &ct, nil
}

// ContainerSummary is one row of a container list.
type ContainerSummary struct {
	ID     string            `json:"Id"`
	Names  []string          `json:"Names"`
	Image  string            `json:"Image"`
	State  string            `json:"State"`
	Status string            `json:"Status"`
	Labels map[string]string `json:"Labels"`
}

// Name is the container's name without the leading slash.
func (s ContainerSummary) Name() string {
	if len(s.Names) == 0 {
		return ""
	}
	return strings.TrimPrefix(s.Names[0], "/")
}

// ContainerList lists containers (running or not) matching the filters.
func (c *Client) ContainerList(ctx context.Context, filters map[string][]string) ([]ContainerSummary, error) {
	q := Filters(filters)
	q.Set("all", "1")
	var out []ContainerSummary
	if err := c.do(ctx, http.MethodGet, "/containers/json", q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// PutArchive extracts a tar stream into dir of the container. The engine
// writes through the container's root filesystem and volumes; it cannot
// reach tmpfs mounts (/run, /tmp) of a running container.
func (c *Client) PutArchive(ctx context.Context, id, dir string, tar io.Reader) error {
	q := url.Values{"path": {dir}}
	return c.do(ctx, http.MethodPut, "/containers/"+url.PathEscape(id)+"/archive", q, tar, nil)
}

// ExecResult is the outcome of a command run in a container.
type ExecResult struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// Exec runs cmd in a running container and waits for it. Output beyond
// maxOutput bytes per stream is dropped (the tail is kept).
func (c *Client) Exec(ctx context.Context, id string, cmd []string, env []string) (*ExecResult, error) {
	var created struct {
		ID string `json:"Id"`
	}
	body := map[string]any{"Cmd": cmd, "Env": env, "AttachStdout": true, "AttachStderr": true}
	if err := c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/exec", nil, body, &created); err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, http.MethodPost, "/exec/"+created.ID+"/start", nil, map[string]any{"Detach": false, "Tty": false})
	if err != nil {
		return nil, err
	}
	res := &ExecResult{}
	stdout, stderr := &tailBuffer{max: maxOutput}, &tailBuffer{max: maxOutput}
	err = demux(resp.Body, stdout, stderr)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("docker exec %s in %s: reading output: %w", strings.Join(cmd, " "), id, err)
	}
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	var info struct {
		Running  bool `json:"Running"`
		ExitCode int  `json:"ExitCode"`
	}
	if err := c.do(ctx, http.MethodGet, "/exec/"+created.ID+"/json", nil, nil, &info); err != nil {
		return nil, err
	}
	if info.Running {
		return nil, fmt.Errorf("docker exec %s in %s: output ended while the command still runs", strings.Join(cmd, " "), id)
	}
	res.ExitCode = info.ExitCode
	return res, nil
}

const maxOutput = 256 << 10

// demux splits the engine's multiplexed stream (8-byte frame headers:
// stream, 0, 0, 0, big-endian length) into stdout and stderr.
func demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		w := stdout
		if hdr[0] == 2 {
			w = stderr
		}
		if _, err := io.CopyN(w, r, n); err != nil {
			return err
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte { return t.buf }

// ---- images ---------------------------------------------------------------

// Image is what the engine says about an image.
type Image struct {
	ID     string `json:"Id"`
	Config struct {
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
}

// ImageInspect returns an image by reference.
func (c *Client) ImageInspect(ctx context.Context, ref string) (*Image, error) {
	var img Image
	if err := c.do(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, &img); err != nil {
		return nil, err
	}
	return &img, nil
}
