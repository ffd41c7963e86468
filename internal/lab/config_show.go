package lab

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/capilab/capilab/internal/cloud"
)

// ConfigShow prints the effective settings with the source of each value and
// what clouds.yaml says about the selected cloud, secrets redacted. It reads
// local files only.
func ConfigShow(_ context.Context, r *Run) error {
	if err := r.Loaded.WriteTable(r.Stdout); err != nil {
		return err
	}
	fmt.Fprintln(r.Stdout)
	fmt.Fprintln(r.Stdout, "# Cloud (clouds.yaml, no connection made)")
	if r.Settings.Cloud == "" {
		fmt.Fprintln(r.Stdout, "cloud  (none: set OS_CLOUD or cloud: in lab.yaml)")
		return nil
	}
	p, err := cloud.Resolve(r.cloudOptions())
	if err != nil {
		fmt.Fprintf(r.Stdout, "cloud  %s  (%v)\n", r.Settings.Cloud, r.Secrets.Redact(err.Error()))
		return nil
	}
	tw := tabwriter.NewWriter(r.Stdout, 0, 4, 2, ' ', 0)
	for _, f := range p.Describe() {
		fmt.Fprintf(tw, "%s\t%s\n", f.Key, r.Secrets.Redact(f.Value))
	}
	return tw.Flush()
}
