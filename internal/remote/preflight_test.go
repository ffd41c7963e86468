package remote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/config"
)

// fakeCatalog is an in-memory cloud for the preflight's pure logic.
type fakeCatalog struct {
	nets     []NetworkInfo
	images   []ImageInfo
	flavors  []FlavorInfo
	zones    []string
	existing []Existing
	err      error
}

func (f *fakeCatalog) Networks(context.Context) ([]NetworkInfo, error) { return f.nets, f.err }
func (f *fakeCatalog) Images(_ context.Context, nameOrID string) ([]ImageInfo, error) {
	var out []ImageInfo
	for _, i := range f.images {
		if i.Name == nameOrID || i.ID == nameOrID {
			out = append(out, i)
		}
	}
	return out, nil
}
func (f *fakeCatalog) Flavors(context.Context) ([]FlavorInfo, error)       { return f.flavors, nil }
func (f *fakeCatalog) AvailabilityZones(context.Context) ([]string, error) { return f.zones, nil }
func (f *fakeCatalog) Existing(_ context.Context, n Names) ([]Existing, error) {
	return f.existing, nil
}

func cloudLike() *fakeCatalog {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &fakeCatalog{
		nets: []NetworkInfo{
			{ID: "pub-id", Name: "public", External: true, Subnets: 1},
			{ID: "priv-id", Name: "private", Subnets: 1},
		},
		images: []ImageInfo{
			{ID: "img-old", Name: "Ubuntu 22.04", Status: "active", CreatedAt: t0},
			{ID: "img-new", Name: "Ubuntu 22.04", Status: "active", CreatedAt: t0.Add(time.Hour), MinDiskGiB: 8},
			{ID: "img-queued", Name: "Ubuntu 22.04", Status: "queued", CreatedAt: t0.Add(2 * time.Hour)},
			{ID: "img-q2", Name: "half", Status: "queued"},
		},
		flavors: []FlavorInfo{{ID: "f1", Name: "SCS-2V-4"}, {ID: "f2", Name: "SCS-2V-4-20s", DiskGiB: 20}, {ID: "d1", Name: "dup"}, {ID: "d2", Name: "dup"}},
		zones:   []string{"nova"},
	}
}

func TestPreflight(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		edit    func(*fakeCatalog)
		state   *State
		want    Resolved
		// problems: each must appear as a line (key and message part).
		problems []string
	}{
		{name: "defaults: the only external network, newest active image", want: Resolved{
			ExternalNetwork: Ref{ID: "pub-id", Name: "public"}, Image: Image{Ref: Ref{ID: "img-new", Name: "Ubuntu 22.04"}, MinDiskGiB: 8}, Flavor: Flavor{Ref: Ref{ID: "f1", Name: "SCS-2V-4"}},
		}},
		{name: "by ID", environ: []string{"EXTERNAL_NETWORK=pub-id", "MGMT_IMAGE=img-old", "KIND_FLAVOR=f2", "AVAILABILITY_ZONE=nova"}, want: Resolved{
			ExternalNetwork: Ref{ID: "pub-id", Name: "public"}, Image: Image{Ref: Ref{ID: "img-old", Name: "Ubuntu 22.04"}}, Flavor: Flavor{Ref: Ref{ID: "f2", Name: "SCS-2V-4-20s"}, DiskGiB: 20},
		}},
		{name: "missing external network, image, flavor and zone: one line each", environ: []string{"EXTERNAL_NETWORK=nope", "MGMT_IMAGE=Debian 13", "KIND_FLAVOR=XL", "AVAILABILITY_ZONE=az9"},
			problems: []string{
				`env EXTERNAL_NETWORK: external_network: no network named "nope" or with that ID is visible to this project (external networks here: public)`,
				`env MGMT_IMAGE: mgmt_image: no image named "Debian 13" or with that ID is visible to this project`,
				`env KIND_FLAVOR: kind_flavor: no flavor named "XL" or with that ID (have SCS-2V-4, SCS-2V-4-20s, dup, dup)`,
				`env AVAILABILITY_ZONE: availability_zone: "az9" is not an available compute availability zone here (have nova)`,
			}},
		{name: "a network that is not external cannot be reached", environ: []string{"EXTERNAL_NETWORK=private"},
			problems: []string{`external_network: network "private" is not external (router:external is false): the router cannot reach it`}},
		{name: "an external network without subnet gives no floating IP", edit: func(c *fakeCatalog) { c.nets[0].Subnets = 0 },
			problems: []string{"external_network: external network public (pub-id) has no subnet"}},
		{name: "no external network to detect", edit: func(c *fakeCatalog) { c.nets = c.nets[1:] },
			problems: []string{"external_network: is empty and no external network is visible"}},
		{name: "two external networks to choose from", edit: func(c *fakeCatalog) {
			c.nets = append(c.nets, NetworkInfo{ID: "pub2", Name: "public2", External: true, Subnets: 1})
		}, problems: []string{"external_network: is empty and there are 2 external networks (public, public2): set EXTERNAL_NETWORK to one of them"}},
		{name: "image only queued", environ: []string{"MGMT_IMAGE=half"}, problems: []string{`mgmt_image: image "half" exists but is not active (queued)`}},
		{name: "two flavors of that name", environ: []string{"KIND_FLAVOR=dup"}, problems: []string{`kind_flavor: 2 flavors are named "dup"`}},
		{name: "another lab's management node with this prefix is refused", edit: func(c *fakeCatalog) {
			c.existing = []Existing{{Type: "openstack_compute_instance_v2", ID: "srv-9", Name: "capi-mgmtcluster"}, {Type: "openstack_networking_network_v2", ID: "net-9", Name: "capi-net"}}
		}, problems: []string{
			`prefix: server capi-mgmtcluster (srv-9) exists in this project but is not in capilab's state: another management node uses prefix "capi" here`,
			`prefix: network capi-net (net-9) exists in this project but is not in capilab's state`,
		}},
		{name: "this lab's own node (in its state) is no conflict", edit: func(c *fakeCatalog) {
			c.existing = []Existing{{Type: "openstack_compute_instance_v2", ID: "srv-1", Name: "capi-mgmtcluster"}}
		}, state: &State{Resources: []StateResource{{Type: "openstack_compute_instance_v2", ID: "srv-1"}}}, want: Resolved{
			ExternalNetwork: Ref{ID: "pub-id", Name: "public"}, Image: Image{Ref: Ref{ID: "img-new", Name: "Ubuntu 22.04"}, MinDiskGiB: 8}, Flavor: Flavor{Ref: Ref{ID: "f1", Name: "SCS-2V-4"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat := cloudLike()
			if tt.edit != nil {
				tt.edit(cat)
			}
			l, err := config.Load(config.Options{Dir: t.TempDir(), Environ: tt.environ})
			if err != nil {
				t.Fatal(err)
			}
			got, err := Preflight(context.Background(), cat, &l.Settings, l.Sources, tt.state)
			if len(tt.problems) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Fatalf("got  %+v\nwant %+v", got, tt.want)
				}
				return
			}
			var invalid *config.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("want *config.InvalidError, got %v", err)
			}
			if len(invalid.Problems) != len(tt.problems) {
				t.Errorf("%d problems, want %d:\n%v", len(invalid.Problems), len(tt.problems), err)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, want := range tt.problems {
				found := false
				for _, line := range lines {
					if strings.Contains(line, want) {
						found = true
					}
				}
				if !found {
					t.Errorf("no line contains %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestPreflightCloudErrorIsNotBadInput(t *testing.T) {
	cat := cloudLike()
	cat.err = errors.New("503 Service Unavailable")
	l, err := config.Load(config.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Preflight(context.Background(), cat, &l.Settings, l.Sources, nil)
	var invalid *config.InvalidError
	if err == nil || errors.As(err, &invalid) {
		t.Fatalf("a failing cloud must not read as bad input: %v", err)
	}
}
