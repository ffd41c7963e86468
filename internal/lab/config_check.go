package lab

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/capilab/capilab/internal/cloud"
)

// ConfigCheck validates the settings and authenticates against the cloud,
// listing the services the catalog offers: the quickest proof that
// OS_CLOUD and clouds.yaml are right. It logs in afresh, never with a
// cached token: a token cached before the credential was revoked (or the
// password changed) would prove nothing.
func ConfigCheck(ctx context.Context, r *Run) error {
	opts, err := r.cloudOptionsChecked()
	if err != nil {
		return err
	}
	opts.TokenCache = ""
	c, err := cloud.Connect(ctx, opts)
	if err != nil {
		return err
	}
	services := []string{}
	if res, ok := c.Provider.GetAuthResult().(tokens.CreateResult); ok {
		if cat, err := res.ExtractServiceCatalog(); err == nil {
			for _, e := range cat.Entries {
				services = append(services, e.Type)
			}
		}
	}
	sort.Strings(services)
	fmt.Fprintf(r.Stdout, "cloud %s: authenticated at %s (project %s, user %s)\nservices: %s\n",
		c.Name, c.AuthURL, c.ProjectID, c.UserID, strings.Join(services, ", "))
	r.Log.Debug("config check done", "requests", c.Stats.Requests())
	return nil
}
