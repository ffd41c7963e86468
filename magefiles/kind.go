//go:build mage

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/capilab/capilab/internal/kindimage"
	"github.com/capilab/capilab/internal/versions"
)

// Kind builds the kind node image locally for machines without a registry.
type Kind mg.Namespace

// Image builds kindest/node:<pinned>-local from source (cached by content; a no-op when current).
func (Kind) Image(ctx context.Context) error {
	p, err := versions.Load()
	if err != nil {
		return err
	}
	b, err := kindBuilder()
	if err != nil {
		return err
	}
	img, err := b.Ensure(ctx, p.KindNode)
	if err != nil {
		return err
	}
	fmt.Println(img)
	return nil
}

// NodeImage prints the node image kind clusters use here (KIND_NODE_IMAGE, else upstream when reachable, else local) and why.
func (Kind) NodeImage(ctx context.Context) error {
	p, err := versions.Load()
	if err != nil {
		return err
	}
	c, err := kindimage.Select(ctx, os.Getenv("KIND_NODE_IMAGE"), p, kindimage.CLI{}, kindimage.DefaultResolver)
	if err != nil {
		return err
	}
	source := "upstream"
	if c.Local {
		source = "local"
	}
	fmt.Printf("%s\t%s\t%s\n", c.Image, source, c.Reason)
	return nil
}

func kindBuilder() (*kindimage.Builder, error) {
	root, err := os.Getwd() // mage runs in the repository root
	if err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	return &kindimage.Builder{
		RepoRoot: root,
		CacheDir: os.Getenv("CAPILAB_KIND_CACHE"),
		Log:      slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Output:   os.Stderr,
	}, nil
}
