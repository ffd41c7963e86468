package cloudinit

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Header is the first line that makes cloud-init render user data as a
// jinja template (Cluster API's kubeadm bootstrap data starts with it).
const Header = "## template: jinja"

// Render renders a jinja template with vars, the subset cloud-init's
// instance-data templates use: {{ expressions }} that are variable paths
// (a.b.c, a['b'], a["b"]) or string literals, with whitespace control
// ({{- -}}), {# comments #} and {% raw %}…{% endraw %}. Anything else — a
// filter, a statement, an undefined variable — is an error naming the line,
// never silently rendered.
func Render(tmpl string, vars map[string]any) (string, error) {
	var out strings.Builder
	i := 0
	line := func(pos int) int { return strings.Count(tmpl[:pos], "\n") + 1 }
	for i < len(tmpl) {
		j := strings.Index(tmpl[i:], "{")
		if j < 0 {
			out.WriteString(tmpl[i:])
			break
		}
		j += i
		if j+1 >= len(tmpl) {
			out.WriteString(tmpl[i:])
			break
		}
		switch tmpl[j+1] {
		case '{', '%', '#':
		default:
			out.WriteString(tmpl[i : j+2])
			i = j + 2
			continue
		}
		open := tmpl[j : j+2]
		closeTag := map[string]string{"{{": "}}", "{%": "%}", "{#": "#}"}[open]
		k := strings.Index(tmpl[j+2:], closeTag)
		if k < 0 {
			return "", fmt.Errorf("line %d: %q without %q", line(j), open, closeTag)
		}
		k += j + 2
		inner := tmpl[j+2 : k]
		end := k + 2
		text := tmpl[i:j]
		if strings.HasPrefix(inner, "-") {
			text = strings.TrimRight(text, " \t\r\n")
			inner = inner[1:]
		}
		trimAfter := strings.HasSuffix(inner, "-")
		if trimAfter {
			inner = inner[:len(inner)-1]
		}
		out.WriteString(text)
		switch open {
		case "{#":
		case "{{":
			v, err := eval(strings.TrimSpace(inner), vars)
			if err != nil {
				return "", fmt.Errorf("line %d: {{%s}}: %w", line(j), inner, err)
			}
			out.WriteString(v)
		case "{%":
			stmt := strings.TrimSpace(inner)
			if stmt != "raw" {
				return "", fmt.Errorf("line %d: {%%%s%%}: jinja statements are not supported by devcloud's cloud-init (only {%% raw %%})", line(j), inner)
			}
			// Everything up to {% endraw %} is literal.
			rest := tmpl[end:]
			idx := -1
			for off := 0; ; {
				p := strings.Index(rest[off:], "{%")
				if p < 0 {
					break
				}
				p += off
				q := strings.Index(rest[p:], "%}")
				if q < 0 {
					break
				}
				body := strings.Trim(strings.TrimSpace(rest[p+2:p+q]), "-")
				if strings.TrimSpace(body) == "endraw" {
					idx = p
					out.WriteString(rest[:p])
					end = end + p + q + 2
					break
				}
				off = p + 2
			}
			if idx < 0 {
				return "", fmt.Errorf("line %d: {%% raw %%} without {%% endraw %%}", line(j))
			}
		}
		i = end
		if trimAfter {
			for i < len(tmpl) && strings.ContainsRune(" \t\r\n", rune(tmpl[i])) {
				i++
			}
		}
	}
	return out.String(), nil
}

// eval evaluates one expression.
func eval(expr string, vars map[string]any) (string, error) {
	if expr == "" {
		return "", fmt.Errorf("empty expression")
	}
	if s, ok := stringLiteral(expr); ok {
		return s, nil
	}
	if strings.ContainsAny(expr, "|(+~") {
		return "", fmt.Errorf("only variables and string literals are supported by devcloud's cloud-init (no filters, calls or operators)")
	}
	path, err := parsePath(expr)
	if err != nil {
		return "", err
	}
	var cur any = vars
	for n, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", fmt.Errorf("%s is not a mapping", strings.Join(path[:n], "."))
		}
		v, ok := m[p]
		if !ok {
			return "", fmt.Errorf("undefined variable %s (known here: %s)", strings.Join(path[:n+1], "."), keys(m))
		}
		cur = v
	}
	switch v := cur.(type) {
	case string:
		return v, nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case bool:
		if v {
			return "True", nil
		}
		return "False", nil
	case nil:
		return "None", nil
	default:
		return "", fmt.Errorf("%s is a %T, not a value to print", expr, cur)
	}
}

func keys(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func stringLiteral(s string) (string, bool) {
	if len(s) < 2 {
		return "", false
	}
	q := s[0]
	if (q != '\'' && q != '"') || s[len(s)-1] != q {
		return "", false
	}
	body := s[1 : len(s)-1]
	if strings.IndexByte(body, q) >= 0 {
		return "", false
	}
	return body, true
}

// parsePath splits a.b['c']["d"] into [a b c d].
func parsePath(expr string) ([]string, error) {
	var out []string
	i := 0
	ident := func() (string, error) {
		j := i
		for j < len(expr) && (expr[j] == '_' || expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= 'A' && expr[j] <= 'Z' || (j > i && expr[j] >= '0' && expr[j] <= '9')) {
			j++
		}
		if j == i {
			return "", fmt.Errorf("%q is not a variable name", expr)
		}
		s := expr[i:j]
		i = j
		return s, nil
	}
	first, err := ident()
	if err != nil {
		return nil, err
	}
	out = append(out, first)
	for i < len(expr) {
		switch expr[i] {
		case '.':
			i++
			s, err := ident()
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		case '[':
			k := strings.IndexByte(expr[i:], ']')
			if k < 0 {
				return nil, fmt.Errorf("%q: [ without ]", expr)
			}
			key, ok := stringLiteral(strings.TrimSpace(expr[i+1 : i+k]))
			if !ok {
				return nil, fmt.Errorf("%q: only quoted keys are supported in [ ]", expr)
			}
			out = append(out, key)
			i += k + 1
		default:
			return nil, fmt.Errorf("%q is not a variable path", expr)
		}
	}
	return out, nil
}
