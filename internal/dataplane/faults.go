package dataplane

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// NovaDBFaults records a fault the way nova-compute records a failed
// build: a row in Nova's instance_faults table, which `openstack server
// show` prints as the server's fault once it is in ERROR. Nova's API has
// no call that records a fault (os-resetState sets the state only), and
// devcloud's compute driver never fails, so devcloud's agent writes the row
// into devcloud's own database on this machine.
type NovaDBFaults struct {
	// Command runs SQL from stdin against Nova's database, e.g.
	// ["mysql", "--protocol=socket", "-uroot", "nova"].
	Command []string
	// Host is the compute host named in the fault (devcloud's: "devcloud").
	Host string
}

// faultCode: Nova shows a fault's details to the server's owner unless the
// code is 500; the details hold the failing stage's output, which the owner
// needs (it is their own user data's output).
const faultCode = 400

// RecordFault inserts the fault. Values travel as hex literals: nothing in
// a message can change the statement.
func (f NovaDBFaults) RecordFault(ctx context.Context, serverID, message, details string) error {
	if len(f.Command) == 0 {
		return fmt.Errorf("NovaDBFaults: no command")
	}
	if len(message) > 255 {
		message = message[:252] + "..."
	}
	hexs := func(s string) string {
		if s == "" {
			return "''"
		}
		return "X'" + hex.EncodeToString([]byte(s)) + "'"
	}
	sql := fmt.Sprintf("INSERT INTO instance_faults (created_at, instance_uuid, code, message, details, host, deleted) VALUES (UTC_TIMESTAMP(), %s, %d, CONVERT(%s USING utf8mb4), CONVERT(%s USING utf8mb4), %s, 0);\n",
		hexs(serverID), faultCode, hexs(message), hexs(details), hexs(f.Host))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.Command[0], f.Command[1:]...)
	cmd.Stdin = strings.NewReader(sql)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(f.Command, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
