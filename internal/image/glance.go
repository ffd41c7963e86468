package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/capilab/capilab/internal/cloud"
)

// Glance is the image service of one cloud, as seen by one project.
type Glance struct {
	Client *gophercloud.ServiceClient
	// Cloud names the cloud in errors.
	Cloud string
	// ProjectID tells the project's own images from shared and public ones:
	// only own images tagged capilab-managed are ever replaced or deleted.
	ProjectID string
}

// GlanceOf returns the image service of a connected cloud.
func GlanceOf(c *cloud.Cloud) (Glance, error) {
	sc, err := c.Image()
	if err != nil {
		return Glance{}, err
	}
	return Glance{Client: sc, Cloud: c.Name, ProjectID: c.ProjectID}, nil
}

func (g Glance) errorf(name, id, format string, args ...any) error {
	what := "image " + name
	if id != "" {
		what += " (" + id + ")"
	}
	return fmt.Errorf("cloud %s: %s: "+format, append([]any{g.Cloud, what}, args...)...)
}

// list returns every image of that name the project can see.
func (g Glance) list(ctx context.Context, name string) ([]images.Image, error) {
	pages, err := images.List(g.Client, images.ListOpts{Name: name, Limit: 100}).AllPages(ctx)
	if err != nil {
		return nil, g.errorf(name, "", "looking it up by name: %w", err)
	}
	imgs, err := images.ExtractImages(pages)
	if err != nil {
		return nil, g.errorf(name, "", "reading the image list: %w", err)
	}
	// Glance filters by name exactly; be sure anyway.
	return slices.DeleteFunc(imgs, func(i images.Image) bool { return i.Name != name }), nil
}

func (g Glance) get(ctx context.Context, name, id string) (*images.Image, error) {
	img, err := images.Get(ctx, g.Client, id).Extract()
	if err != nil {
		return nil, g.errorf(name, id, "reading it: %w", err)
	}
	return img, nil
}

func (g Glance) create(ctx context.Context, opts images.CreateOpts) (*images.Image, error) {
	img, err := images.Create(ctx, g.Client, opts).Extract()
	if err != nil {
		return nil, g.errorf(opts.Name, "", "creating it: %w", err)
	}
	return img, nil
}

// upload streams the image data. It is sent with its Content-Length, as the
// openstack CLI sends it, rather than chunked (gophercloud's imagedata.Upload
// cannot say how long an io.Reader is): Glance reads a chunked body chunk by
// chunk in Python, which is markedly slower. After a 401 the body is rewound
// and sent once more with a new token.
func (g Glance) upload(ctx context.Context, name, id string, data io.ReadSeeker, size int64) error {
	pc := g.Client.ProviderClient
	url := g.Client.ServiceURL("images", id, "file")
	for reauthed := false; ; reauthed = true {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, io.NopCloser(data))
		if err != nil {
			return g.errorf(name, id, "uploading its data: %w", err)
		}
		req.ContentLength = size
		for k, v := range pc.AuthenticatedHeaders() {
			req.Header.Set(k, v)
		}
		token := req.Header.Get("X-Auth-Token")
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("User-Agent", pc.UserAgent.Join())
		resp, err := pc.HTTPClient.Do(req)
		if err != nil {
			return g.errorf(name, id, "uploading its data: %w", err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNoContent:
			return nil
		case resp.StatusCode == http.StatusUnauthorized && !reauthed && pc.ReauthFunc != nil:
			if err := pc.Reauthenticate(ctx, token); err != nil {
				return g.errorf(name, id, "uploading its data: re-authenticating: %w", err)
			}
			if _, err := data.Seek(0, io.SeekStart); err != nil {
				return g.errorf(name, id, "uploading its data: %w", err)
			}
			continue
		}
		return g.errorf(name, id, "uploading its data: %w", gophercloud.ErrUnexpectedResponseCode{
			URL: url, Method: http.MethodPut, Expected: []int{http.StatusNoContent}, Actual: resp.StatusCode, Body: body, ResponseHeader: resp.Header,
		})
	}
}

// remove deletes an image; one that is already gone counts as deleted.
func (g Glance) remove(ctx context.Context, name, id string) error {
	err := images.Delete(ctx, g.Client, id).ExtractErr()
	if err != nil && !cloud.IsNotFound(err) {
		return g.errorf(name, id, "deleting it: %w", err)
	}
	return nil
}

// owned reports whether capilab may replace or delete the image: tagged
// capilab-managed and owned by this project.
func (g Glance) owned(img images.Image) bool {
	return g.ProjectID != "" && img.Owner == g.ProjectID && slices.Contains(img.Tags, Tag)
}

// definite reports whether a failed request certainly did not change
// anything: a 4xx answer. Anything else (5xx, a reset connection) may have
// been applied.
func definite(err error) bool {
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		return ue.Actual >= 400 && ue.Actual < 500 && ue.Actual != http.StatusRequestTimeout
	}
	return false
}

// prop reads a string property of an image.
func prop(img images.Image, key string) string {
	if v, ok := img.Properties[key].(string); ok {
		return v
	}
	return ""
}
