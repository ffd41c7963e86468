package cli

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/magefile/mage/mage"
	"github.com/magefile/mage/parse"
)

// MagefilesDir is where capilab's targets are, relative to the repository root.
const MagefilesDir = "magefiles"

// Targets reads the targets of the magefiles in dir with Mage's own file
// selection and parser (no go command runs), so the bootstrap accepts
// exactly what the compiled targets binary would run.
func Targets(dir string) ([]Target, error) {
	files, err := mage.Magefiles(dir, "", "", filepath.Base(dir) == MagefilesDir)
	if err != nil {
		return nil, fmt.Errorf("reading the targets in %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no magefiles in %s: run capilab from the repository root", dir)
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	info, err := parse.Package(dir, names, false)
	if err != nil {
		return nil, fmt.Errorf("reading the targets in %s: %w", dir, err)
	}
	out := make([]Target, 0, len(info.Funcs))
	for _, f := range info.Funcs {
		out = append(out, Target{Name: strings.ToLower(f.TargetName()), Args: f.NumRequiredArgs()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
