package cleanup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/capilab/capilab/internal/state"
)

// Journal remembers what earlier runs planned to delete and did not see
// gone. Some proof of ownership disappears while a cleanup runs — a volume
// is the lab's because the server it is attached to is, and that server is
// deleted first — so a run interrupted in between would leave the volume
// unprovable. The journal keeps the proof: a resource with a journaled ID
// is owned as the earlier plan said. IDs are unique, so this cannot claim
// anything new.
type Journal interface {
	Load() (map[string]Owned, error)
	Save(map[string]Owned) error
}

// MemoryJournal is a Journal in memory (tests, dry runs).
type MemoryJournal struct {
	mu      sync.Mutex
	entries map[string]Owned
}

func (j *MemoryJournal) Load() (map[string]Owned, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[string]Owned, len(j.entries))
	for k, v := range j.entries {
		out[k] = v
	}
	return out, nil
}

func (j *MemoryJournal) Save(m map[string]Owned) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = make(map[string]Owned, len(m))
	for k, v := range m {
		j.entries[k] = v
	}
	return nil
}

// FileJournal keeps the journal in a file of the lab's state directory.
type FileJournal string

func (f FileJournal) Load() (map[string]Owned, error) {
	data, err := os.ReadFile(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Owned{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading cleanup journal %s: %w", f, err)
	}
	var entries []Owned
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("cleanup journal %s is damaged (%w); move it away to continue", f, err)
	}
	m := make(map[string]Owned, len(entries))
	for _, e := range entries {
		m[e.Key()] = e
	}
	return m, nil
}

func (f FileJournal) Save(m map[string]Owned) error {
	if len(m) == 0 {
		if err := os.Remove(string(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing cleanup journal %s: %w", f, err)
		}
		return nil
	}
	entries := make([]Owned, 0, len(m))
	for _, e := range m {
		entries = append(entries, e)
	}
	SortOwned(entries)
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	if err := state.WriteSecretFile(string(f), data); err != nil {
		return fmt.Errorf("writing cleanup journal %s: %w", f, err)
	}
	return nil
}
