package devcloudtest

import "testing"

func TestRetryable(t *testing.T) {
	const (
		cut = "Unable to establish connection to http://127.0.0.1:9876/v2/lbaas/loadbalancers: " +
			"('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"
		refused = "Unable to establish connection to http://127.0.0.1:9876/v2/lbaas/loadbalancers: " +
			"HTTPConnectionPool(host='127.0.0.1', port=9876): Max retries exceeded (Caused by " +
			"NewConnectionError(': Failed to establish a new connection: [Errno 111] Connection refused'))"
		auth = "Unable to establish connection to http://127.0.0.1:5000/v3/auth/tokens: " +
			"('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"
	)
	lbCreate := []string{"loadbalancer", "create", "--name", "lb", "--vip-subnet-id", "sub", "--wait"}
	tests := []struct {
		name   string
		args   []string
		stderr string
		want   bool
	}{
		{"create cut after it was sent may have been done", lbCreate, cut, false},
		{"delete cut after it was sent may have been done", []string{"network", "delete", "net"}, cut, false},
		{"add cut after it was sent may have been done", []string{"router", "add", "subnet", "r", "s"}, cut, false},
		{"create that never connected", lbCreate, refused, true},
		{"create whose authentication was cut", lbCreate, auth, true},
		{"show cut", []string{"loadbalancer", "show", "lb", "-f", "json"}, cut, true},
		{"list cut", []string{"server", "list", "--name", "show"}, cut, true},
		{"set cut", []string{"floating", "ip", "set", "--port", "p", "f"}, cut, true},
		{"a verb after the first flag is a value", []string{"server", "create", "--name", "list"}, cut, false},
		{"a refusal by the API is not retried", []string{"network", "show", "n"}, "No Network found for n", false},
		{"a conflict is not retried", lbCreate, "Conflict (HTTP 409)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryable(tt.args, tt.stderr); got != tt.want {
				t.Errorf("retryable(%q, %q) = %v, want %v", tt.args, tt.stderr, got, tt.want)
			}
		})
	}
}
