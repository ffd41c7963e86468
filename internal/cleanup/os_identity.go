package cleanup

import (
	"context"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"

	"github.com/capilab/capilab/internal/naming"
)

// Keystone application credentials of the user (Keystone scopes them to
// the user, not the project).

func listAppCreds(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := applicationcredentials.List(c.identity, c.userID, applicationcredentials.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := applicationcredentials.ExtractApplicationCredentials(pages)
	out := make([]Resource, 0, len(all))
	for _, a := range all {
		if a.ProjectID != "" && a.ProjectID != c.projectID {
			continue
		}
		// Keystone keeps no creation time; capilab writes it into the description.
		out = append(out, Resource{Type: AppCred, ID: a.ID, Name: a.Name, Description: a.Description, CreatedAt: naming.AppCredCreatedAt(a.Description)})
	}
	return out, err
}

func deleteAppCred(ctx context.Context, c *clients, r *Resource) error {
	return applicationcredentials.Delete(ctx, c.identity, c.userID, r.ID).ExtractErr()
}
