// Package logging builds capilab's loggers: text or JSON slog output,
// progress lines for long steps, and redaction of every secret the process
// knows about (passwords, application credential secrets, tokens) from log
// records and from errors before they reach a terminal or a CI log.
package logging

import (
	"errors"
	"sort"
	"strings"
	"sync"
)

// Redacted replaces a secret in output.
const Redacted = "<redacted>"

// minSecretLen keeps short values ("1", "yes") from being treated as secrets
// and wiping unrelated text; real secrets are long.
const minSecretLen = 6

// Secrets is the set of secret values the process has seen. Whoever reads a
// secret (clouds.yaml password, a new application credential) adds it; every
// logger and error printer of the run shares the set.
type Secrets struct {
	mu     sync.RWMutex
	values map[string]struct{}
	sorted []string // longest first, so a secret containing another is replaced whole
}

// NewSecrets returns an empty set.
func NewSecrets() *Secrets { return &Secrets{values: map[string]struct{}{}} }

// Add registers secret values; empty and very short values are ignored.
func (s *Secrets) Add(values ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, v := range values {
		if len(v) < minSecretLen {
			continue
		}
		if _, ok := s.values[v]; !ok {
			s.values[v] = struct{}{}
			changed = true
		}
	}
	if changed {
		s.sorted = s.sorted[:0]
		for v := range s.values {
			s.sorted = append(s.sorted, v)
		}
		sort.Slice(s.sorted, func(i, j int) bool { return len(s.sorted[i]) > len(s.sorted[j]) })
	}
}

// Redact replaces every known secret in text.
func (s *Secrets) Redact(text string) string {
	if s == nil {
		return text
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.sorted {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, Redacted)
		}
	}
	return text
}

// RedactError returns err with every known secret removed from its message,
// keeping the chain for errors.Is/As. Use it on errors that leave the process.
func (s *Secrets) RedactError(err error) error {
	if err == nil {
		return nil
	}
	msg := s.Redact(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// ExitStatus keeps an exit code chosen deeper in the chain (mage honours it).
func (e *redactedError) ExitStatus() int {
	var c interface{ ExitStatus() int }
	if errors.As(e.err, &c) {
		return c.ExitStatus()
	}
	return 1
}

// sensitiveKey reports whether a log attribute key names a secret, whatever
// its value: the value may not have been registered (a token minted by a
// library, say).
func sensitiveKey(key string) bool {
	k := strings.ToLower(key)
	for _, word := range []string{"password", "secret", "token", "credential_secret", "kubeconfig", "authorization"} {
		if strings.Contains(k, word) {
			return true
		}
	}
	return false
}
