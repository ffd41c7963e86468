package certissuer

import (
	"encoding/json"
	"time"
)

// readyCondition is a Ready condition as cert-manager's API spells it
// (type, status, reason, message, observedGeneration, lastTransitionTime).
func readyCondition(ready bool, reason, msg string, generation int64) map[string]any {
	status := "False"
	if ready {
		status = "True"
	}
	return map[string]any{
		"type":               "Ready",
		"status":             status,
		"reason":             reason,
		"message":            msg,
		"observedGeneration": generation,
	}
}

// setCondition puts c into the conditions list, keeping the transition time
// when the status did not change.
func setCondition(existing any, c map[string]any, now time.Time) []any {
	list, _ := existing.([]any)
	out := make([]any, 0, len(list)+1)
	c["lastTransitionTime"] = now.UTC().Format(time.RFC3339)
	replaced := false
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok || m["type"] != c["type"] {
			out = append(out, item)
			continue
		}
		if m["status"] == c["status"] {
			if t, ok := m["lastTransitionTime"].(string); ok {
				c["lastTransitionTime"] = t
			}
		}
		if !replaced {
			out = append(out, c)
			replaced = true
		}
	}
	if !replaced {
		out = append(out, c)
	}
	return out
}

// conditionStatus returns the status and reason of condition typ.
func conditionStatus(obj map[string]any, typ string) (status, reason, msg string) {
	st, _ := obj["status"].(map[string]any)
	list, _ := st["conditions"].([]any)
	for _, item := range list {
		m, ok := item.(map[string]any)
		if ok && m["type"] == typ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return s, r, msg
		}
	}
	return "", "", ""
}

// normalise round-trips v through JSON so numbers compare equal whatever Go
// type they were decoded or set as.
func normalise(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}
