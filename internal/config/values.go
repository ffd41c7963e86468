package config

import "time"

// Value is the knob's value in s as a settings file holds it: strings,
// booleans, whole numbers, lists and maps as themselves, durations in Go's
// notation ("30m0s"). Secrets come back as they are: callers that write
// the value somewhere must keep that place as private as the value.
func (k Knob) Value(s *Settings) any {
	switch x := k.value(s).Interface().(type) {
	case time.Duration:
		if x == 0 {
			return "0"
		}
		return x.String()
	case []string:
		return append([]string{}, x...)
	case map[string]string:
		m := make(map[string]string, len(x))
		for key, v := range x {
			m[key] = v
		}
		return m
	default:
		return x
	}
}
