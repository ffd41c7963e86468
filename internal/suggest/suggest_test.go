package suggest

import "testing"

func TestDidYouMean(t *testing.T) {
	known := []string{"create", "create_cluster", "delete", "fullclean", "check-conformance"}
	tests := []struct {
		word, want string
	}{
		{"craete", " (did you mean create?)"},
		{"fulclean", " (did you mean fullclean?)"},
		{"create_clustr", " (did you mean create_cluster?)"},
		{"check-conformace", " (did you mean check-conformance?)"},
		{"CLUSTER=demo1", ""},
		{"xyz", ""},
		{"", ""},
		{"delte", " (did you mean delete?)"},
	}
	for _, tt := range tests {
		if got := DidYouMean(tt.word, known); got != tt.want {
			t.Errorf("DidYouMean(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
	if got := DidYouMean("ab", []string{"ax", "ay"}); got != " (did you mean ax?)" {
		t.Errorf("a tie goes to the alphabetically first: got %q", got)
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"same", "same", 0},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := distance(tt.b, tt.a); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}
