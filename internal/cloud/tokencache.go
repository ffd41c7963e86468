package cloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/capilab/capilab/internal/state"
)

// A token cache lets a short run (make image with the image there, make
// leakcheck) skip Keystone: issuing a token and having every service
// validate the new one costs about a second, far more than the run itself.
// The cached token is a secret: it lives in a 0600 file in the lab's state,
// is registered for redaction when loaded, and is reused only while it has
// more than tokenReuseMargin to live. A token Keystone rejects (revoked,
// password changed) triggers gophercloud's re-authentication, which
// refreshes the cache.
const tokenReuseMargin = 10 * time.Minute

type cachedToken struct {
	Token     string          `json:"token"`
	ExpiresAt time.Time       `json:"expires_at"`
	Body      json.RawMessage `json:"body"` // Keystone's token response: catalog, project, user
}

// tokenCacheFile names the cache entry of one identity. The key covers
// everything that selects the identity, and a hash of its secret, so a new
// password or credential never reuses an old token.
func tokenCacheFile(dir string, ao gophercloud.AuthOptions) string {
	h := sha256.New()
	scope := ""
	if ao.Scope != nil {
		scope = fmt.Sprintf("%+v", *ao.Scope)
	}
	for _, part := range []string{ao.IdentityEndpoint, ao.Username, ao.UserID, ao.DomainName, ao.DomainID, ao.TenantName, ao.TenantID, scope,
		ao.ApplicationCredentialID, ao.ApplicationCredentialName, ao.Password, ao.ApplicationCredentialSecret, ao.TokenID} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return filepath.Join(dir, hex.EncodeToString(h.Sum(nil))[:32]+".json")
}

// loadCachedToken sets up provider from a cached token, or reports false.
func loadCachedToken(path string, provider *gophercloud.ProviderClient, now time.Time) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var c cachedToken
	if err := json.Unmarshal(data, &c); err != nil || c.Token == "" {
		return false, nil // a damaged entry is just not used
	}
	if c.ExpiresAt.Sub(now) < tokenReuseMargin {
		return false, nil
	}
	var body any
	if err := json.Unmarshal(c.Body, &body); err != nil {
		return false, nil
	}
	result := tokens.CreateResult{}
	result.Body = body
	result.Header = http.Header{"X-Subject-Token": []string{c.Token}}
	catalog, err := result.ExtractServiceCatalog()
	if err != nil {
		return false, nil
	}
	if err := provider.SetTokenAndAuthResult(result); err != nil {
		return false, err
	}
	provider.EndpointLocator = func(eo gophercloud.EndpointOpts) (string, error) {
		return openstack.V3EndpointURL(catalog, eo)
	}
	return true, nil
}

// saveToken writes provider's current token to the cache.
func saveToken(path string, provider *gophercloud.ProviderClient) error {
	result, ok := provider.GetAuthResult().(tokens.CreateResult)
	if !ok {
		return nil // not a Keystone v3 password/credential login: nothing to cache
	}
	tok, err := result.ExtractToken()
	if err != nil {
		return err
	}
	body, err := json.Marshal(result.Body)
	if err != nil {
		return err
	}
	data, err := json.Marshal(cachedToken{Token: tok.ID, ExpiresAt: tok.ExpiresAt, Body: body})
	if err != nil {
		return err
	}
	return state.WriteSecretFile(path, data)
}

// connectCached authenticates through the cache: a cached token when one is
// fit, otherwise a real login that is then cached. Re-authentication (on a
// 401) logs in again and refreshes the cache.
func connectCached(ctx context.Context, provider *gophercloud.ProviderClient, ao gophercloud.AuthOptions, dir string, now time.Time) (cached bool, err error) {
	path := tokenCacheFile(dir, ao)
	login := func(ctx context.Context, into *gophercloud.ProviderClient) error {
		if err := openstack.Authenticate(ctx, into, ao); err != nil {
			return err
		}
		if err := saveToken(path, into); err != nil {
			return fmt.Errorf("caching the token in %s: %w", dir, err)
		}
		return nil
	}
	cached, err = loadCachedToken(path, provider, now)
	if err != nil {
		return false, err
	}
	if !cached {
		if err := login(ctx, provider); err != nil {
			return false, err
		}
		return false, nil
	}
	// Re-authentication replaces gophercloud's (which the manual set-up
	// above does not install): log in on a throwaway copy, take its token.
	noReauth := ao
	noReauth.AllowReauth = false
	provider.ReauthFunc = func(ctx context.Context) error {
		tac := *provider
		tac.SetThrowaway(true)
		tac.ReauthFunc = nil
		if err := tac.SetTokenAndAuthResult(nil); err != nil {
			return err
		}
		if err := openstack.Authenticate(ctx, &tac, noReauth); err != nil {
			return err
		}
		provider.CopyTokenFrom(&tac)
		return saveToken(path, &tac)
	}
	return true, nil
}

// DropTokens removes from the cache in dir every token issued for the
// application credential id: once the credential is revoked, its tokens
// are dead (Keystone revokes them with it), and a cached one would make a
// later run believe it can still authenticate. It returns how many it
// removed; a missing directory holds none.
func DropTokens(dir, appCredID string) (int, error) {
	if dir == "" || appCredID == "" {
		return 0, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("token cache %s: %w", dir, err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var c cachedToken
		if json.Unmarshal(data, &c) != nil || tokenAppCredID(c.Body) != appCredID {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("token cache %s: %w", dir, err)
		}
		n++
	}
	return n, nil
}

// tokenAppCredID reads the application credential a Keystone token was
// issued for (token.application_credential.id), "" for any other token.
func tokenAppCredID(body json.RawMessage) string {
	var b struct {
		Token struct {
			AppCred struct {
				ID string `json:"id"`
			} `json:"application_credential"`
		} `json:"token"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	return b.Token.AppCred.ID
}
