package lab

import (
	"context"
	"fmt"

	"github.com/capilab/capilab/internal/kindimage"
)

// KindImage builds the kind node image from source when it is not current
// (cached by content; seconds when it is) and prints its name.
func KindImage(ctx context.Context, r *Run) error {
	b := &kindimage.Builder{RepoRoot: r.Dir, CacheDir: r.Getenv("CAPILAB_KIND_CACHE"), Log: r.Log, Output: r.Stderr}
	img, err := b.Ensure(ctx, r.Loaded.Versions.KindNode)
	if err != nil {
		return err
	}
	fmt.Fprintln(r.Stdout, img)
	return nil
}

// KindNodeImage prints the node image kind clusters use here — the setting
// kind_node_image (KIND_NODE_IMAGE), else upstream when its registry
// resolves, else the local build — and why.
func KindNodeImage(ctx context.Context, r *Run) error {
	c, err := kindimage.Select(ctx, r.Settings.KindNodeImage, r.Loaded.Versions, kindimage.CLI{}, kindimage.DefaultResolver)
	if err != nil {
		return err
	}
	source := "upstream"
	if c.Local {
		source = "local"
	}
	fmt.Fprintf(r.Stdout, "%s\t%s\t%s\n", c.Image, source, c.Reason)
	return nil
}
