package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRedactionEveryPath(t *testing.T) {
	const secret = "app-cred-secret-123456"
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		secrets := NewSecrets()
		secrets.Add(secret, "no") // too short to be treated as a secret
		log, err := New(&buf, Options{Format: format, Level: "debug", Secrets: secrets})
		if err != nil {
			t.Fatal(err)
		}
		log.Info("message with " + secret)
		log.Info("short value: no")
		log.Debug("attr", "value", "x"+secret+"y")
		log.Warn("error attr", "error", fmt.Errorf("wrapped: %w", errors.New(secret)))
		log.Info("stringer", "v", stringer(secret))
		log.Info("sensitive key", "password", "unregistered-but-a-password", "application_credential_secret", "also-unregistered")
		log.With("ctx", secret).WithGroup("g").Info("grouped", "k", secret)
		out := buf.String()
		if strings.Contains(out, secret) || strings.Contains(out, "unregistered") {
			t.Fatalf("%s: secret leaked:\n%s", format, out)
		}
		if strings.Count(out, Redacted) < 7 {
			t.Fatalf("%s: expected redaction markers:\n%s", format, out)
		}
		if !strings.Contains(out, "short value: no") {
			t.Fatalf("short values must not be redacted")
		}
	}
}

type stringer string

func (s stringer) String() string { return "str:" + string(s) }

func TestRedactErrorKeepsChainAndExitCode(t *testing.T) {
	secrets := NewSecrets()
	secrets.Add("hunter2-hunter2")
	base := exitErr{errors.New("auth failed for hunter2-hunter2")}
	err := secrets.RedactError(fmt.Errorf("cloud x: %w", base))
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("not redacted: %v", err)
	}
	var e exitErr
	if !errors.As(err, &e) {
		t.Fatal("chain lost")
	}
	if c, ok := err.(interface{ ExitStatus() int }); !ok || c.ExitStatus() != 7 {
		t.Fatal("exit status lost")
	}
	if secrets.RedactError(nil) != nil {
		t.Fatal("nil must stay nil")
	}
}

type exitErr struct{ error }

func (exitErr) ExitStatus() int { return 7 }

func TestLongestSecretFirst(t *testing.T) {
	s := NewSecrets()
	s.Add("abcdef", "abcdefghij")
	if got := s.Redact("x abcdefghij y"); got != "x "+Redacted+" y" {
		t.Fatalf("got %q", got)
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, Options{Format: "xml"}); err == nil {
		t.Fatal("want error for format")
	}
	if _, err := New(&bytes.Buffer{}, Options{Level: "loud"}); err == nil {
		t.Fatal("want error for level")
	}
}

// TestDurationsAreReadable: JSON logs carry durations as "1.5s", not as
// integer nanoseconds; a failed step's line does not repeat the error
// (the error is reported once, by whoever handles it).
func TestDurationsAreReadableAndStepsDoNotRepeatErrors(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, Options{Format: "json", Secrets: NewSecrets()})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("waited", "elapsed", 1500*time.Millisecond)
	step := StartStep(log, "image x")
	step.Done(errors.New("sha256 mismatch: the file has abc"))
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.Split(buf.String(), "\n")[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["elapsed"] != "1.5s" {
		t.Errorf("elapsed = %#v, want \"1.5s\"", rec["elapsed"])
	}
	if strings.Contains(buf.String(), "sha256 mismatch") || !strings.Contains(buf.String(), "image x failed") {
		t.Errorf("step end line:\n%s", buf.String())
	}
}
