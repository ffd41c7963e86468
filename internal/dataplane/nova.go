package dataplane

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// ComputeMicroversion is the Nova API version the agent reads servers with:
// 2.3+ shows user data to admins, 2.90 the hostname Nova derived.
const ComputeMicroversion = "2.90"

// Server is a Nova server as the agent sees it (admin, all projects).
type Server struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Status    string            `json:"status"`
	TaskState *string           `json:"OS-EXT-STS:task_state"`
	Hostname  string            `json:"OS-EXT-SRV-ATTR:hostname"`
	UserData  string            `json:"OS-EXT-SRV-ATTR:user_data"` // base64
	AZ        string            `json:"OS-EXT-AZ:availability_zone"`
	ProjectID string            `json:"tenant_id"`
	Metadata  map[string]string `json:"metadata"`
	KeyName   string            `json:"key_name"`
	Created   time.Time         `json:"created"`
	Image     json.RawMessage   `json:"image"` // {"id": …} or "" when booted from a volume
	Volumes   []struct {
		ID string `json:"id"`
	} `json:"os-extended-volumes:volumes_attached"`
}

// ImageID is the Glance image the server was booted from ("" from a volume).
func (s Server) ImageID() string {
	var img struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(s.Image, &img) == nil {
		return img.ID
	}
	return ""
}

// DecodedUserData is the user data as the guest would read it.
func (s Server) DecodedUserData() ([]byte, error) {
	if s.UserData == "" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s.UserData)
}

// HostnameOrName is the guest's hostname.
func (s Server) HostnameOrName() string {
	if s.Hostname != "" {
		return s.Hostname
	}
	return s.Name
}

// nova reads and acts on Nova as admin.
type nova struct{ sc *gophercloud.ServiceClient }

func (n nova) opts(codes ...int) *gophercloud.RequestOpts {
	return &gophercloud.RequestOpts{OkCodes: codes, MoreHeaders: map[string]string{"OpenStack-API-Version": "compute " + ComputeMicroversion, "X-OpenStack-Nova-API-Version": ComputeMicroversion}}
}

// servers lists every server of every project in one call (Nova's default
// page limit is 1000; the agent asks for more explicitly and pages on).
func (n nova) servers(ctx context.Context) ([]Server, error) {
	var all []Server
	q := url.Values{"all_tenants": {"1"}, "limit": {"1000"}}
	for {
		var out struct {
			Servers []Server `json:"servers"`
			Links   []struct {
				Rel  string `json:"rel"`
				Href string `json:"href"`
			} `json:"servers_links"`
		}
		if _, err := n.sc.Get(ctx, n.sc.ServiceURL("servers", "detail")+"?"+q.Encode(), &out, n.opts(200)); err != nil {
			return nil, fmt.Errorf("nova GET servers/detail: %w", err)
		}
		all = append(all, out.Servers...)
		next := ""
		for _, l := range out.Links {
			if l.Rel == "next" {
				next = l.Href
			}
		}
		if next == "" || len(out.Servers) == 0 {
			return all, nil
		}
		u, err := url.Parse(next)
		if err != nil {
			return nil, err
		}
		q.Set("marker", u.Query().Get("marker"))
	}
}

// resetError sets the server to ERROR (admin os-resetState).
func (n nova) resetError(ctx context.Context, id string) error {
	body := map[string]any{"os-resetState": map[string]string{"state": "error"}}
	_, err := n.sc.Post(ctx, n.sc.ServiceURL("servers", id, "action"), body, nil, n.opts(202))
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return fmt.Errorf("nova os-resetState %s: %w", id, err)
	}
	return nil
}

// glance reads images as admin, caching the node-image property.
type glance struct {
	sc       *gophercloud.ServiceClient
	property string

	mu    sync.Mutex
	cache map[string]imageInfo
}

type imageInfo struct {
	container string // the property's value ("" when not a node image)
	fetched   time.Time
	missing   bool
}

// imageCacheTTL bounds how long a property value is trusted (images are
// rarely changed; a changed property is seen within this).
const imageCacheTTL = 60 * time.Second

// containerImage returns the container image named by the image's
// node-image property ("" when it has none).
func (g *glance) containerImage(ctx context.Context, imageID string) (string, error) {
	if imageID == "" || g.sc == nil {
		return "", nil
	}
	g.mu.Lock()
	if g.cache == nil {
		g.cache = map[string]imageInfo{}
	}
	info, ok := g.cache[imageID]
	g.mu.Unlock()
	if ok && time.Since(info.fetched) < imageCacheTTL {
		return info.container, nil
	}
	var img map[string]any
	_, err := g.sc.Get(ctx, g.sc.ServiceURL("images", imageID), &img, &gophercloud.RequestOpts{OkCodes: []int{200}})
	switch {
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		info = imageInfo{fetched: time.Now(), missing: true}
	case err != nil:
		return "", fmt.Errorf("glance GET images/%s: %w", imageID, err)
	default:
		v, _ := img[g.property].(string)
		info = imageInfo{container: strings.TrimSpace(v), fetched: time.Now()}
	}
	g.mu.Lock()
	g.cache[imageID] = info
	g.mu.Unlock()
	return info.container, nil
}
