package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Knob describes one setting, read from the struct tags of Settings.
type Knob struct {
	Key    string   // YAML key
	Env    []string // environment names, the first is the canonical one
	Group  string
	Doc    string
	Secret bool
	index  int // field index in Settings
}

// Knobs lists every knob in declaration order.
func Knobs() []Knob {
	t := reflect.TypeOf(Settings{})
	knobs := make([]Knob, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		k := Knob{
			Key:    f.Tag.Get("key"),
			Group:  f.Tag.Get("group"),
			Doc:    f.Tag.Get("doc"),
			Secret: f.Tag.Get("secret") == "true",
			index:  i,
		}
		if env := f.Tag.Get("env"); env != "" {
			k.Env = strings.Split(env, ",")
		} else {
			k.Env = []string{strings.ToUpper(k.Key)}
		}
		knobs = append(knobs, k)
	}
	return knobs
}

func knobByKey() map[string]Knob {
	m := map[string]Knob{}
	for _, k := range Knobs() {
		m[k.Key] = k
	}
	return m
}

// value is the reflect.Value of the knob's field in s.
func (k Knob) value(s *Settings) reflect.Value { return reflect.ValueOf(s).Elem().Field(k.index) }

// Format renders the knob's value in s as a user would type it.
func (k Knob) Format(s *Settings) string {
	if k.Secret {
		return redacted
	}
	return formatValue(k.value(s))
}

func formatValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case time.Duration:
		if x == 0 {
			return "0"
		}
		return x.String()
	case []string:
		return "[" + strings.Join(x, ",") + "]"
	case map[string]string:
		keys := make([]string, 0, len(x))
		for key := range x {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, key := range keys {
			parts = append(parts, key+"="+x[key])
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return fmt.Sprint(v.Interface())
}

// TypeName is the knob's type as the README shows it.
func (k Knob) TypeName() string {
	switch reflect.TypeOf(Settings{}).Field(k.index).Type {
	case reflect.TypeOf(""):
		if k.Group == "addons" {
			return "true/false/version"
		}
		return "string"
	case reflect.TypeOf(true):
		return "bool"
	case reflect.TypeOf(0):
		return "int"
	case reflect.TypeOf(time.Duration(0)):
		return "duration"
	case reflect.TypeOf([]string{}):
		return "list"
	case reflect.TypeOf(map[string]string{}):
		return "map"
	}
	return "?"
}

// setFromString parses text (an environment value) into the knob's field.
// Lists are comma-separated; maps are key=value pairs separated by commas.
func (k Knob) setFromString(s *Settings, text string) error {
	v := k.value(s)
	switch v.Interface().(type) {
	case string:
		v.SetString(text)
	case bool:
		b, err := parseBool(text)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case int:
		n, err := strconv.Atoi(strings.TrimSpace(text))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", text)
		}
		v.SetInt(int64(n))
	case time.Duration:
		d, err := parseDuration(text)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case []string:
		list, err := splitListStrict(text)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(list))
	case map[string]string:
		pairs, err := splitListStrict(text)
		if err != nil {
			return err
		}
		m := map[string]string{}
		for _, pair := range pairs {
			key, val, ok := strings.Cut(pair, "=")
			if !ok || key == "" {
				return fmt.Errorf("%q is not a key=value list", text)
			}
			m[key] = val
		}
		v.Set(reflect.ValueOf(m))
	default:
		return fmt.Errorf("unsupported knob type %s", v.Type())
	}
	return nil
}

// splitListStrict is splitList that refuses empty items ("a,,b", "a,"):
// a doubled or trailing comma is a typo, not a shorter list.
func splitListStrict(text string) ([]string, error) {
	parts := strings.Split(text, ",")
	if strings.TrimSpace(text) == "" {
		return []string{}, nil
	}
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			return nil, fmt.Errorf("%q has an empty item (a doubled or trailing comma)", text)
		}
	}
	return splitList(text), nil
}

func splitList(text string) []string {
	out := []string{}
	for _, part := range strings.Split(text, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseBool(text string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", text)
}

// parseDuration accepts Go durations (90s, 24h, 1h30m), a plain 0, and days
// ("7d"), which users of age filters expect.
func parseDuration(text string) (time.Duration, error) {
	t := strings.TrimSpace(text)
	if t == "" || t == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(t, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n >= 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 90s, 24h or 7d", text)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", text)
	}
	return d, nil
}
