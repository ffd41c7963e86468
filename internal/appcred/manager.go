package appcred

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/naming"
	"github.com/capilab/capilab/internal/state"
	"github.com/capilab/capilab/internal/wait"
)

// Bounds.
const (
	maxAttempts = 4
	// renewBefore: a credential expiring sooner than this is rotated rather
	// than reused, so that it does not expire in the middle of a cluster
	// operation.
	renewBefore = time.Hour
)

// Keystone is the identity service of one cloud, as seen by the user who
// owns the credentials (application credentials belong to a user).
type Keystone struct {
	Client    *gophercloud.ServiceClient
	Cloud     string // names the cloud in errors
	UserID    string
	ProjectID string
}

// KeystoneOf returns the identity service of a connected cloud.
func KeystoneOf(c *cloud.Cloud) (Keystone, error) {
	sc, err := c.Identity()
	if err != nil {
		return Keystone{}, err
	}
	if c.UserID == "" {
		return Keystone{}, fmt.Errorf("cloud %s: the token names no user; application credentials need one", c.Name)
	}
	return Keystone{Client: sc, Cloud: c.Name, UserID: c.UserID, ProjectID: c.ProjectID}, nil
}

// Manager creates, rotates, deletes and lists a lab's credentials.
type Manager struct {
	Keystone Keystone
	Endpoint Endpoint
	State    state.Dir
	Secrets  *logging.Secrets
	Log      *slog.Logger
	// RetryDelay is the first backoff between create attempts (default 1s).
	RetryDelay time.Duration
	// TokenCache is the lab's token cache (cloud.Options.TokenCache): the
	// cached tokens of a credential are dropped when it is revoked.
	TokenCache string
}

// Options of one Ensure.
type Options struct {
	// Expiry of a cluster's credential (0: none). The lab's never expires.
	Expiry time.Duration
	// LoadBalancer extends cloud.conf's [LoadBalancer] section.
	LoadBalancer LoadBalancer
}

// Action says what Ensure did.
type Action string

const (
	Reused  Action = "reused"  // existed, secret known locally
	Created Action = "created" // did not exist
	Rotated Action = "rotated" // existed without a known secret (or expiring): revoked and created again
)

// Credential is an application credential of the lab, ready to use.
type Credential struct {
	Name         string
	ID           string
	ProjectID    string
	Prefix       string // the lab's
	Cluster      string // "" for the lab's
	Unrestricted bool
	ExpiresAt    time.Time // zero: never
	CloudName    string    // its clouds.yaml entry in the state directory
	CloudsFile   string
	CloudConf    string // cluster credentials only
	Action       Action
}

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return logging.Discard()
	}
	return m.Log
}

func (m *Manager) errorf(name, id, format string, args ...any) error {
	what := "application credential " + name
	if id != "" {
		what += " (" + id + ")"
	}
	return fmt.Errorf("cloud %s: %s: "+format, append([]any{m.Keystone.Cloud, what}, args...)...)
}

// Ensure makes sure the credential of the lab (cluster "") or of a cluster
// exists, its secret is known and its files are written.
func (m *Manager) Ensure(ctx context.Context, prefix, cluster string, opts Options) (Credential, error) {
	name := naming.AppCred(prefix, cluster)
	unlock, err := lockState(ctx, m.log(), m.State)
	if err != nil {
		return Credential{}, err
	}
	defer unlock()

	doc, err := readClouds(m.State.CloudsFile())
	if err != nil {
		return Credential{}, fmt.Errorf("state %s: %w", m.State, err)
	}
	local, haveLocal := doc.get(naming.CloudEntry(prefix, cluster))
	m.Secrets.Add(local.Secret)

	// The one lookup by name; from here on the credential is addressed by ID.
	found, err := m.lookup(ctx, name)
	if err != nil {
		return Credential{}, err
	}
	action := Created
	if found != nil {
		if err := m.checkOurs(*found, prefix, cluster); err != nil {
			return Credential{}, err
		}
		expiring := !found.ExpiresAt.IsZero() && time.Until(found.ExpiresAt) < renewBefore
		switch {
		case haveLocal && local.ID == found.ID && !expiring && found.Unrestricted == (cluster == ""):
			cred := m.credential(*found, prefix, cluster, Reused)
			if err := m.writeFiles(doc, cred, local.Secret, opts); err != nil {
				return Credential{}, err
			}
			m.log().Info("application credential reused", "name", name, "id", found.ID)
			return cred, nil
		case !haveLocal || local.ID != found.ID:
			m.log().Info("application credential exists but its secret is not known locally; rotating it", "name", name, "id", found.ID)
		case expiring:
			m.log().Info("application credential expires soon; rotating it", "name", name, "id", found.ID, "expires_at", found.ExpiresAt)
		default:
			m.log().Info("application credential has the wrong restriction; rotating it", "name", name, "id", found.ID, "unrestricted", found.Unrestricted)
		}
		if err := m.revoke(ctx, name, found.ID); err != nil {
			return Credential{}, err
		}
		action = Rotated
	}
	created, secret, err := m.create(ctx, prefix, cluster, opts)
	if err != nil {
		return Credential{}, err
	}
	cred := m.credential(*created, prefix, cluster, action)
	if err := m.writeFiles(doc, cred, secret, opts); err != nil {
		return Credential{}, err
	}
	m.log().Info("application credential "+string(action), "name", name, "id", created.ID, "unrestricted", created.Unrestricted,
		"expires_at", expiresText(created.ExpiresAt), "clouds_yaml_entry", cred.CloudName)
	return cred, nil
}

func expiresText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func (m *Manager) credential(ac applicationcredentials.ApplicationCredential, prefix, cluster string, action Action) Credential {
	c := Credential{
		Name: ac.Name, ID: ac.ID, ProjectID: firstOf(ac.ProjectID, m.Keystone.ProjectID), Prefix: prefix, Cluster: cluster,
		Unrestricted: ac.Unrestricted, ExpiresAt: ac.ExpiresAt, CloudName: naming.CloudEntry(prefix, cluster),
		CloudsFile: m.State.CloudsFile(), Action: action,
	}
	if cluster != "" {
		c.CloudConf = m.State.CloudConf(cluster)
	}
	return c
}

// writeFiles writes the clouds.yaml entry and, for a cluster, its cloud.conf
// and cluster record. Unchanged files are not rewritten.
func (m *Manager) writeFiles(doc cloudsDoc, c Credential, secret string, opts Options) error {
	entry := cloudsEntry(m.Endpoint, c.Prefix, c.Cluster, c.ID, secret, c.ProjectID)
	if !equalYAML(doc.Clouds[c.CloudName], entry) {
		doc.Clouds[c.CloudName] = entry
		if err := doc.write(c.CloudsFile); err != nil {
			return fmt.Errorf("state %s: writing %s: %w", m.State, c.CloudsFile, err)
		}
	}
	if c.Cluster == "" {
		return nil
	}
	if err := m.State.RecordCluster(c.Cluster); err != nil {
		return err
	}
	conf := cloudConf(m.Endpoint, c.ID, secret, c.ProjectID, opts.LoadBalancer)
	if old, err := os.ReadFile(c.CloudConf); err == nil && string(old) == string(conf) {
		return nil
	}
	if err := state.WriteSecretFile(c.CloudConf, conf); err != nil {
		return fmt.Errorf("state %s: writing %s: %w", m.State, c.CloudConf, err)
	}
	return nil
}

// equalYAML compares two entries as they would be written.
func equalYAML(a, b map[string]any) bool {
	if a == nil {
		return false
	}
	da, err1 := marshal(a)
	db, err2 := marshal(b)
	return err1 == nil && err2 == nil && da == db
}

func (m *Manager) checkOurs(ac applicationcredentials.ApplicationCredential, prefix, cluster string) error {
	p, c, ok := naming.ParseAppCredDescription(ac.Description)
	if ok && p == prefix && c == cluster {
		return nil
	}
	return m.errorf(ac.Name, ac.ID, "exists but was not created by capilab for %s (its description is %q, capilab's would be %q); "+
		"capilab does not rotate or delete credentials it cannot prove are its own: delete it yourself or use another prefix",
		labAndCluster(prefix, cluster), ac.Description, naming.AppCredDescription(prefix, cluster))
}

func labAndCluster(prefix, cluster string) string {
	if cluster == "" {
		return "lab " + prefix
	}
	return "lab " + prefix + ", cluster " + cluster
}

// lookup finds the user's credential of that name (Keystone keeps names
// unique per user).
func (m *Manager) lookup(ctx context.Context, name string) (*applicationcredentials.ApplicationCredential, error) {
	all, err := m.list(ctx, name)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Name == name {
			return &all[i], nil
		}
	}
	return nil, nil
}

func (m *Manager) list(ctx context.Context, name string) ([]applicationcredentials.ApplicationCredential, error) {
	pages, err := applicationcredentials.List(m.Keystone.Client, m.Keystone.UserID, applicationcredentials.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		if name == "" {
			return nil, fmt.Errorf("cloud %s: listing the application credentials of user %s: %w", m.Keystone.Cloud, m.Keystone.UserID, err)
		}
		return nil, m.errorf(name, "", "looking it up by name: %w", err)
	}
	all, err := applicationcredentials.ExtractApplicationCredentials(pages)
	if err != nil {
		return nil, fmt.Errorf("cloud %s: reading the application credential list: %w", m.Keystone.Cloud, err)
	}
	return all, nil
}

// revoke deletes a credential by ID (one that is gone already counts) and
// drops its cached tokens.
func (m *Manager) revoke(ctx context.Context, name, id string) error {
	err := applicationcredentials.Delete(ctx, m.Keystone.Client, m.Keystone.UserID, id).ExtractErr()
	if err != nil && !cloud.IsNotFound(err) {
		return m.errorf(name, id, "revoking it: %w", err)
	}
	if _, err := cloud.DropTokens(m.TokenCache, id); err != nil {
		return m.errorf(name, id, "revoked, but its cached tokens are left: %w", err)
	}
	return nil
}

// create creates the credential with a secret capilab generates, so that a
// create whose answer was lost can be recovered: the credential is found by
// name and proven to be this attempt's by authenticating with the secret.
func (m *Manager) create(ctx context.Context, prefix, cluster string, opts Options) (*applicationcredentials.ApplicationCredential, string, error) {
	name := naming.AppCred(prefix, cluster)
	secret, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	m.Secrets.Add(secret) // before it is sent anywhere
	co := applicationcredentials.CreateOpts{
		Name:         name,
		Description:  naming.AppCredDescriptionAt(prefix, cluster, time.Now()),
		Unrestricted: cluster == "",
		Secret:       secret,
	}
	if cluster != "" && opts.Expiry > 0 {
		at := time.Now().Add(opts.Expiry).UTC().Truncate(time.Second)
		co.ExpiresAt = &at
	}
	delay := m.RetryDelay
	if delay <= 0 {
		delay = time.Second
	}
	for attempt := 1; ; attempt++ {
		ac, err := applicationcredentials.Create(ctx, m.Keystone.Client, m.Keystone.UserID, co).Extract()
		if err == nil {
			return ac, secret, nil
		}
		err = m.errorf(name, "", "creating it: %w", err)
		// A 4xx changed nothing, except 409: a credential of that name exists
		// (an earlier attempt's, applied although its answer was lost).
		if ctx.Err() != nil || (definite(err) && !cloud.IsConflict(err)) || attempt >= maxAttempts {
			return nil, "", err
		}
		// The create may have been applied: is it there, and is it ours?
		found, lerr := m.lookup(ctx, name)
		if lerr == nil && found != nil {
			if m.checkOurs(*found, prefix, cluster) != nil {
				return nil, "", errors.Join(err, m.checkOurs(*found, prefix, cluster))
			}
			if verr := m.verify(ctx, found.ID, secret); verr == nil {
				m.log().Info("the create was applied although its answer was lost; adopting the credential", "name", name, "id", found.ID)
				return found, secret, nil
			}
			// Ours, but not with this secret: a leftover; replace it.
			if rerr := m.revoke(ctx, name, found.ID); rerr != nil {
				return nil, "", errors.Join(err, rerr)
			}
		}
		m.log().Warn("creating the application credential failed; retrying", "name", name, "attempt", attempt, "in", delay, "error", err)
		if serr := wait.Sleep(ctx, delay); serr != nil {
			return nil, "", err
		}
		delay *= 2
	}
}

// verify authenticates with a credential, through the same HTTP transport
// (retries included) as the rest of the run.
func (m *Manager) verify(ctx context.Context, id, secret string) error {
	pc, err := openstack.NewClient(m.Endpoint.AuthURL)
	if err != nil {
		return err
	}
	pc.HTTPClient = m.Keystone.Client.ProviderClient.HTTPClient
	return openstack.Authenticate(ctx, pc, gophercloud.AuthOptions{
		IdentityEndpoint:            m.Endpoint.AuthURL,
		ApplicationCredentialID:     id,
		ApplicationCredentialSecret: secret,
	})
}

// Deleted says what Delete removed.
type Deleted struct {
	Name     string
	ID       string // "" when Keystone had none
	Local    bool   // local files were removed
	Existed  bool   // Keystone had it
	NotFound bool   // neither Keystone nor the state had anything
}

// Delete revokes the credential in Keystone (if it is the lab's) and removes
// its clouds.yaml entry and cloud.conf.
func (m *Manager) Delete(ctx context.Context, prefix, cluster string) (Deleted, error) {
	name := naming.AppCred(prefix, cluster)
	unlock, err := lockState(ctx, m.log(), m.State)
	if err != nil {
		return Deleted{}, err
	}
	defer unlock()
	doc, err := readClouds(m.State.CloudsFile())
	if err != nil {
		return Deleted{}, fmt.Errorf("state %s: %w", m.State, err)
	}
	local, _ := doc.get(naming.CloudEntry(prefix, cluster))
	m.Secrets.Add(local.Secret)
	d := Deleted{Name: name}
	found, err := m.lookup(ctx, name)
	if err != nil {
		return d, err
	}
	if found != nil {
		if err := m.checkOurs(*found, prefix, cluster); err != nil {
			return d, err
		}
		if err := m.revoke(ctx, name, found.ID); err != nil {
			return d, err
		}
		d.ID, d.Existed = found.ID, true
		m.log().Info("application credential revoked", "name", name, "id", found.ID)
	}
	if _, ok := doc.Clouds[naming.CloudEntry(prefix, cluster)]; ok {
		delete(doc.Clouds, naming.CloudEntry(prefix, cluster))
		if err := doc.write(m.State.CloudsFile()); err != nil {
			return d, fmt.Errorf("state %s: %w", m.State, err)
		}
		d.Local = true
	}
	if cluster != "" {
		err := os.Remove(m.State.CloudConf(cluster))
		switch {
		case err == nil:
			d.Local = true
		case !errors.Is(err, os.ErrNotExist):
			return d, fmt.Errorf("state %s: %w", m.State, err)
		}
		// The cluster record was made with the credential: an empty one
		// would go on "proving" a cluster that nothing else records.
		if err := m.State.ForgetClusterIfEmpty(cluster); err != nil {
			return d, err
		}
	}
	d.NotFound = !d.Existed && !d.Local
	return d, nil
}

// ForgetRevoked removes what the state holds of a credential that was
// revoked elsewhere (fullclean): its clouds.yaml entry and cloud.conf —
// only where they still name that credential ID — its cached tokens, and
// the cluster's record when nothing else is left in it.
func ForgetRevoked(st state.Dir, tokenCache, prefix, cluster, id string) error {
	unlock, err := lockState(context.Background(), logging.Discard(), st)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := cloud.DropTokens(tokenCache, id); err != nil {
		return err
	}
	doc, err := readClouds(st.CloudsFile())
	if err != nil {
		return fmt.Errorf("state %s: %w", st, err)
	}
	name := naming.CloudEntry(prefix, cluster)
	if e, _ := doc.get(name); e.ID == id {
		delete(doc.Clouds, name)
		if err := doc.write(st.CloudsFile()); err != nil {
			return fmt.Errorf("state %s: %w", st, err)
		}
	}
	if cluster == "" {
		return nil
	}
	if data, err := os.ReadFile(st.CloudConf(cluster)); err == nil && strings.Contains(string(data), "application-credential-id="+quote(id)+"\n") {
		if err := os.Remove(st.CloudConf(cluster)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("state %s: %w", st, err)
		}
	}
	return st.ForgetClusterIfEmpty(cluster)
}

// Listed is one credential of the lab.
type Listed struct {
	Name         string
	ID           string // "" for a local entry Keystone no longer has
	Cluster      string
	Unrestricted bool
	ExpiresAt    time.Time
	SecretKnown  bool // the state's clouds.yaml has its secret
	InKeystone   bool
}

// List returns the lab's credentials: those in Keystone whose description
// names the lab, and local entries whose credential is gone.
func (m *Manager) List(ctx context.Context, prefix string) ([]Listed, error) {
	doc, err := readClouds(m.State.CloudsFile())
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", m.State, err)
	}
	all, err := m.list(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Listed
	seen := map[string]bool{}
	for _, ac := range all {
		p, c, ok := naming.ParseAppCredDescription(ac.Description)
		if !ok || p != prefix {
			continue
		}
		local, have := doc.get(naming.CloudEntry(prefix, c))
		seen[naming.CloudEntry(prefix, c)] = true
		out = append(out, Listed{Name: ac.Name, ID: ac.ID, Cluster: c, Unrestricted: ac.Unrestricted, ExpiresAt: ac.ExpiresAt,
			SecretKnown: have && local.ID == ac.ID, InKeystone: true})
	}
	// Local entries whose credential Keystone does not have: those marked as
	// this lab's, and (entries written before the marks) the lab's and its
	// recorded clusters' by name.
	clusters, err := m.State.Clusters()
	if err != nil {
		return nil, err
	}
	local := map[string]string{naming.CloudEntry(prefix, ""): ""} // entry → cluster
	for _, c := range clusters {
		local[naming.CloudEntry(prefix, c)] = c
	}
	for name := range doc.Clouds {
		if e, _ := doc.get(name); e.Lab == prefix && name == naming.CloudEntry(prefix, e.Cluster) {
			local[name] = e.Cluster
		}
	}
	for name, c := range local {
		e, have := doc.get(name)
		if !have || seen[name] || (e.Lab != "" && (e.Lab != prefix || e.Cluster != c)) {
			continue
		}
		m.Secrets.Add(e.Secret)
		out = append(out, Listed{Name: naming.AppCred(prefix, c), ID: e.ID, Cluster: c, SecretKnown: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// definite reports an answer that certainly changed nothing (4xx).
func definite(err error) bool {
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		return ue.Actual >= 400 && ue.Actual < 500 && ue.Actual != http.StatusRequestTimeout
	}
	return false
}

// newSecret is 32 random bytes, base64url: no character that needs quoting
// in YAML or INI.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
