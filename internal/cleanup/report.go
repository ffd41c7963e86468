package cleanup

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteTable prints owned resources as a table: type, name, id, cluster, reason.
func WriteTable(w io.Writer, owned []Owned) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tNAME\tID\tCLUSTER\tREASON")
	for _, o := range owned {
		cluster := clusterLabel(o.Cluster)
		if len(o.Also) > 0 {
			cluster += " (or " + strings.Join(o.Also, ", ") + ")"
		}
		name := o.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s [%s]\n", o.Type, name, o.ID, cluster, o.Reason, o.Rule)
	}
	return tw.Flush()
}

// Owned lists the plan's steps as owned resources.
func (p *Plan) Owned() []Owned {
	out := make([]Owned, 0, len(p.Steps))
	for _, s := range p.Steps {
		out = append(out, s.Owned)
	}
	return out
}

// WriteKept prints what the filter kept, and why.
func WriteKept(w io.Writer, kept []Kept) error {
	if len(kept) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEPT\tNAME\tID\tCLUSTER\tWHY")
	for _, k := range kept {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Type, k.Name, k.ID, clusterLabel(k.Cluster), k.Why)
	}
	return tw.Flush()
}

// WriteSummary prints the end-of-run summary: deleted per type, failures
// with their reason, retries, API calls and seconds per phase.
func WriteSummary(w io.Writer, r *Report) error {
	var b strings.Builder
	if r.Result != nil {
		var parts []string
		for _, t := range Types {
			if n := r.Deleted[t]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, t))
			}
		}
		if len(parts) == 0 {
			parts = []string{"nothing"}
		}
		fmt.Fprintf(&b, "deleted: %s\n", strings.Join(parts, ", "))
		for _, s := range r.Result.Steps {
			if s.Outcome != OutcomeDeleted {
				fmt.Fprintf(&b, "  %s: %s %s (%s): %s\n", s.Outcome, s.Type, s.Name, s.ID, s.Error)
			}
		}
		fmt.Fprintf(&b, "retries: %d blocked deletions repeated, %d HTTP retries\n", r.Result.BlockedRetries, r.HTTPRetries)
	}
	phases := make([]string, 0, len(r.Seconds))
	for k := range r.Seconds {
		phases = append(phases, k)
	}
	sort.Strings(phases)
	var secs []string
	for _, k := range phases {
		secs = append(secs, fmt.Sprintf("%s %.1fs", k, r.Seconds[k]))
	}
	fmt.Fprintf(&b, "api calls: %d; time: %s\n", r.APICalls, strings.Join(secs, ", "))
	if len(r.Remaining) == 0 {
		b.WriteString("remaining owned resources: none\n")
	} else {
		fmt.Fprintf(&b, "remaining owned resources: %d\n", len(r.Remaining))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSON renders the report for CI.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }
