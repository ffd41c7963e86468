package cloud

import "github.com/capilab/capilab/internal/logging"

// Field is one line of a cloud description.
type Field struct{ Key, Value string }

// Describe lists what clouds.yaml says about the profile's cloud, secrets
// redacted, for `make config`.
func (p *Profile) Describe() []Field {
	a := p.Auth
	fields := []Field{{"cloud", p.Name}, {"auth_url", a.IdentityEndpoint}}
	seen := map[string]string{}
	add := func(k, v string) {
		// clouds.yaml's project appears both as the tenant and in the
		// scope: one line each.
		if v == "" || seen[k] == v {
			return
		}
		seen[k] = v
		fields = append(fields, Field{k, v})
	}
	switch {
	case a.ApplicationCredentialID != "" || a.ApplicationCredentialName != "":
		add("auth_type", "v3applicationcredential")
		add("application_credential_id", a.ApplicationCredentialID)
		add("application_credential_name", a.ApplicationCredentialName)
	case a.TokenID != "":
		add("auth_type", "v3token")
	default:
		add("auth_type", "v3password")
	}
	add("username", a.Username)
	add("user_id", a.UserID)
	add("user_domain", first(a.DomainName, a.DomainID))
	add("project_name", a.TenantName)
	add("project_id", a.TenantID)
	if a.Scope != nil {
		add("project_name", a.Scope.ProjectName)
		add("project_id", a.Scope.ProjectID)
		add("project_domain", first(a.Scope.DomainName, a.Scope.DomainID))
	}
	add("region", p.Endpoint.Region)
	add("interface", string(p.Endpoint.Availability))
	if a.Password != "" {
		add("password", logging.Redacted)
	}
	if a.ApplicationCredentialSecret != "" {
		add("application_credential_secret", logging.Redacted)
	}
	if a.TokenID != "" {
		add("token", logging.Redacted)
	}
	return fields
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
