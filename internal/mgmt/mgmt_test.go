package mgmt

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/capilab/capilab/internal/state"
)

type fakeHost struct {
	ids     []string
	created bool
}

func (h *fakeHost) Describe() string                { return "kind cluster test-mgmt" }
func (h *fakeHost) Preflight(context.Context) error { return nil }
func (h *fakeHost) Identity(context.Context) ([]string, bool, error) {
	return h.ids, len(h.ids) > 0, nil
}
func (h *fakeHost) Create(context.Context) error {
	h.created = true
	h.ids = []string{"a", "b"}
	return nil
}
func (h *fakeHost) Delete(context.Context) error { h.ids = nil; return nil }
func (h *fakeHost) Kubeconfig(context.Context, string) ([]byte, error) {
	return nil, errors.New("no cluster")
}
func (h *fakeHost) LoadImages(context.Context, []string) error { return nil }

func manager(t *testing.T, h Host) *Manager {
	return &Manager{Name: "test-mgmt", Host: h, State: state.Dir(t.TempDir()), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// A kind cluster of that name that capilab did not record is refused, and
// nothing is deleted.
func TestForeignClusterIsRefused(t *testing.T) {
	h := &fakeHost{ids: []string{"x"}}
	m := manager(t, h)
	if _, err := m.Create(context.Background()); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("Create: %v, want ErrNotOurs", err)
	}
	if _, err := m.Delete(context.Background(), true, false); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("Delete: %v, want ErrNotOurs", err)
	}
	if len(h.ids) == 0 {
		t.Fatal("a foreign cluster was deleted")
	}
	// Recorded with other node IDs (recreated by someone else): still refused.
	if err := m.writeRecord(Record{Name: "test-mgmt", NodeIDs: []string{"y"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Delete(context.Background(), true, false); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("Delete with a stale record: %v, want ErrNotOurs", err)
	}
}

func TestRecordedClusterIsOurs(t *testing.T) {
	h := &fakeHost{ids: []string{"a", "b"}}
	m := manager(t, h)
	if err := m.writeRecord(Record{Name: "test-mgmt", NodeIDs: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	exists, err := m.ownership(context.Background())
	if err != nil || !exists {
		t.Fatalf("ownership: %v %v", exists, err)
	}
}

func TestDeleteWithoutClusterIsANoOp(t *testing.T) {
	m := manager(t, &fakeHost{})
	res, err := m.Delete(context.Background(), true, false)
	if err != nil || res.Existed {
		t.Fatalf("Delete: %+v %v", res, err)
	}
}

func TestRenameContext(t *testing.T) {
	in := []byte(`apiVersion: v1
kind: Config
clusters:
- name: kind-x
  cluster: {server: "https://127.0.0.1:1234"}
users:
- name: kind-x
  user: {token: t}
contexts:
- name: kind-x
  context: {cluster: kind-x, user: kind-x}
current-context: kind-x
`)
	out, err := renameContext(in, "capi-mgmt")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Contexts["capi-mgmt"]
	if cfg.CurrentContext != "capi-mgmt" || c == nil || c.Cluster != "capi-mgmt" || c.AuthInfo != "capi-mgmt" ||
		cfg.Clusters["capi-mgmt"].Server != "https://127.0.0.1:1234" || cfg.AuthInfos["capi-mgmt"].Token != "t" {
		t.Errorf("renamed: %+v", cfg)
	}
}
