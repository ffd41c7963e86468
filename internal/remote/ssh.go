package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"al.essio.dev/pkg/shellescape"

	"github.com/capilab/capilab/internal/command"
)

// SSH reaches the node as its login user with the lab's key. The node's
// host key is recorded on first contact in the lab's own known_hosts file
// (never the user's) and checked from then on.
type SSH struct {
	Client     string // the ssh command (default "ssh")
	Host       string // the floating IP
	User       string
	KeyFile    string
	KnownHosts string
	Env        []string // environment ssh starts from (nil: this process's)
}

func (s SSH) options() []string {
	return []string{
		"-i", s.KeyFile,
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + s.KnownHosts,
		"-o", "StrictHostKeyChecking=accept-new",
		"-o", "ConnectTimeout=10",
		"-o", "ServerAliveInterval=15",
		"-o", "ServerAliveCountMax=4",
		"-o", "LogLevel=ERROR",
	}
}

// Command runs a shell command line on the node (non-interactive).
func (s SSH) Command(script string) *command.Cmd {
	args := append(s.options(), "-o", "BatchMode=yes", "-T", s.User+"@"+s.Host, "--", script)
	return command.New(s.client(), args...).WithEnv(s.Env)
}

// Interactive is ssh with a terminal when stdin is one, running args on
// the node (none: a login shell).
func (s SSH) Interactive(args ...string) *command.Cmd {
	a := append(s.options(), s.User+"@"+s.Host)
	if len(args) > 0 {
		a = append(a, "--", quoteArgs(args))
	}
	return command.New(s.client(), a...).WithEnv(s.Env)
}

func (s SSH) client() string {
	if s.Client == "" {
		return "ssh"
	}
	return s.Client
}

// Line is the ssh command a person can paste (for messages).
func (s SSH) Line() string {
	return "ssh -i " + shellescape.Quote(s.KeyFile) + " -o UserKnownHostsFile=" + shellescape.Quote(s.KnownHosts) + " " + s.User + "@" + s.Host
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellescape.Quote(a)
	}
	return strings.Join(q, " ")
}

// ensureKey creates the lab's ssh key pair (ed25519, private key 0600)
// unless it exists, and returns the public key.
func ensureKey(ctx context.Context, keyFile, comment string) (string, error) {
	pub, err := os.ReadFile(keyFile + ".pub")
	if err == nil {
		if _, err := os.Stat(keyFile); err != nil {
			return "", fmt.Errorf("ssh key %s: the public half exists but the private key does not: %w", keyFile, err)
		}
		return strings.TrimSpace(string(pub)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return "", err
	}
	os.Remove(keyFile)
	if err := command.New("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", keyFile).Run(ctx); err != nil {
		return "", err
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		return "", err
	}
	pub, err = os.ReadFile(keyFile + ".pub")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(pub)), nil
}
