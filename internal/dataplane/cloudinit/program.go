package cloudinit

import (
	"fmt"
	"regexp"
	"strings"
)

// StateRoot is where a node keeps its cloud-init state, per instance: the
// staged files, the generated scripts, the status and the output log. It
// is under /var, so it survives a restart of the node container (and is
// removed with its /var volume).
const StateRoot = "/var/lib/capilab-cloud-init"

// BootRoot is the per-boot state (tmpfs /run: empty after a restart).
const BootRoot = "/run/capilab-cloud-init"

// Status values a node's status file holds.
const (
	StatusDone    = "done"
	StatusFailed  = "failed"  // "failed: <stage> [<stage>…]"
	StatusRunning = "running" // "running <stage>"
)

// Program is what the agent puts into a node container: Files (paths
// relative to Dir) and the entry script Dir/run.sh, which the agent starts
// detached on every boot of the container; the script itself runs bootcmd
// once per boot and everything else once per instance.
type Program struct {
	Dir   string
	Files map[string]StagedFile
}

// StagedFile is one file of a Program.
type StagedFile struct {
	Data []byte
	Mode int64
}

// Entry is the script to run.
func (p *Program) Entry() string { return p.Dir + "/run.sh" }

// StatusFile holds the outcome: StatusDone, "failed: …" or "running …".
func (p *Program) StatusFile() string { return p.Dir + "/status" }

// OutputFile is the log of every stage.
func (p *Program) OutputFile() string { return p.Dir + "/output.log" }

var safeID = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Program builds the program for an instance, with its state under
// StateRoot and BootRoot.
func (c *Config) Program(instanceID string) (*Program, error) {
	return c.ProgramAt(instanceID, StateRoot, BootRoot)
}

// ProgramAt is Program with other state directories (tests run programs
// in a temporary directory).
func (c *Config) ProgramAt(instanceID, stateRoot, bootRoot string) (*Program, error) {
	if !safeID.MatchString(instanceID) {
		return nil, fmt.Errorf("instance id %q: not usable as a directory name", instanceID)
	}
	dir := stateRoot + "/" + instanceID
	p := &Program{Dir: dir, Files: map[string]StagedFile{}}
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format+"\n", args...) }
	w("#!/bin/sh")
	w("# devcloud data plane: cloud-init of instance %s (generated)", instanceID)
	w("S=%s", ShellQuote(dir))
	w("B=%s", ShellQuote(bootRoot))
	w(`export HOME=/root INSTANCE_ID=%s`, ShellQuote(instanceID))
	w(`export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`)
	w(`mkdir -p "$B" || exit 1`)
	w(`# one runner at a time; a lock whose runner is gone is stale`)
	w(`if ! mkdir "$B/lock" 2>/dev/null; then`)
	w(`  pid=$(cat "$B/lock/pid" 2>/dev/null)`)
	w(`  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then exit 0; fi`)
	w(`  rm -rf "$B/lock"; mkdir "$B/lock" || exit 0`)
	w(`fi`)
	w(`echo $$ >"$B/lock/pid"`)
	w(`trap 'rm -rf "$B/lock"' EXIT`)
	w(`exec >>"$S/output.log" 2>&1`)
	w(`failed=""`)
	w(`stage() { echo "running $1" >"$S/status.tmp" && mv "$S/status.tmp" "$S/status"; echo "=== $1 $(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)"; }`)
	w(`fail() { failed="$failed $1"; echo "=== $1 FAILED: $2"; }`)
	w(`# cloud-init's final stage runs late in boot: wait (bounded) until systemd has booted`)
	w(`# (is-system-running fails while systemd is not yet reachable, so ask until it answers)`)
	w(`if [ -d /run/systemd/system ] || [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then`)
	w(`  i=0`)
	w(`  while :; do`)
	w(`    st=$(systemctl is-system-running 2>/dev/null)`)
	w(`    case "$st" in running|degraded) break ;; esac`)
	w(`    i=$((i + 1)); if [ $i -ge 360 ]; then echo "=== systemd still ${st:-unreachable} after 180s"; break; fi`)
	w(`    sleep 0.5`)
	w(`  done`)
	w(`fi`)
	if len(c.BootCmd) > 0 {
		p.Files["bootcmd.sh"] = StagedFile{Data: []byte(shellify(c.BootCmd)), Mode: 0o700}
		w(`if [ ! -e "$B/boot.done" ]; then`)
		w(`  if [ -e "$S/instance.done" ]; then echo "=== bootcmd (boot of a done instance)"; else stage bootcmd; fi`)
		w(`  /bin/sh "$S/bootcmd.sh" || fail bootcmd "exit $?"`)
		w(`fi`)
	}
	w(`: >"$B/boot.done"`)
	w(`if [ -e "$S/instance.done" ]; then exit 0; fi`)
	write := func(stageName string, deferred bool) {
		var files []int
		for i, f := range c.WriteFiles {
			if f.Defer == deferred {
				files = append(files, i)
			}
		}
		if len(files) == 0 {
			return
		}
		w(`stage %s`, stageName)
		for _, i := range files {
			f := c.WriteFiles[i]
			name := fmt.Sprintf("files/%03d", i)
			p.Files[name] = StagedFile{Data: f.Content, Mode: 0o600}
			redirect := ">"
			if f.Append {
				redirect = ">>"
			}
			q := ShellQuote(f.Path)
			w(`{ mkdir -p "$(dirname %s)" && cat "$S/%s" %s%s && chmod %o %s && chown %s %s; } || fail %s %s`,
				q, name, redirect, q, f.Permissions, q, ShellQuote(f.Owner), q, stageName, q)
		}
	}
	write("write_files", false)
	write("write_files_deferred", true)
	if len(c.RunCmd) > 0 {
		p.Files["runcmd.sh"] = StagedFile{Data: []byte(shellify(c.RunCmd)), Mode: 0o700}
		w(`stage runcmd`)
		w(`/bin/sh "$S/runcmd.sh" || fail runcmd "exit $?"`)
	}
	if len(c.Script) > 0 {
		p.Files["user-script"] = StagedFile{Data: c.Script, Mode: 0o700}
		w(`stage user-script`)
		w(`"$S/user-script" || fail user-script "exit $?"`)
	}
	w(`if [ -n "$failed" ]; then echo "failed:$failed" >"$S/status.tmp"; else echo done >"$S/status.tmp"; fi`)
	w(`mv "$S/status.tmp" "$S/status"`)
	w(`: >"$S/instance.done"`)
	w(`echo "=== finished $(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ): $(cat "$S/status")"`)
	p.Files["run.sh"] = StagedFile{Data: []byte(sb.String()), Mode: 0o700}
	return p, nil
}

// shellify writes commands as cloud-init's runcmd/bootcmd scripts: a
// #!/bin/sh header and one line per command, no `set -e` (a failing
// command does not stop the next; the script's status is the last one's).
func shellify(lines []string) string {
	return "#!/bin/sh\n" + strings.Join(lines, "\n") + "\n"
}
