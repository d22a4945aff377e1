package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// iniEntry is one key of the seed optimizer's config.ini.
type iniEntry struct {
	key, value string
	line       int
}

// iniFlag is the run flag a config.ini [main] key sets; "" for a key that
// is read and has no effect here.
func iniFlag(key string) (flag string, known bool) {
	switch key {
	case "loglevel":
		return "log-level", true
	case "api_loglevel":
		return "api-log-level", true
	case "only_test_data":
		return "only-test-data", true
	case "token":
		return "token", true
	case "enable_test_metrics":
		// The seed served /metrics only with it; nomadscalerd always does.
		return "", true
	}
	return "", false
}

// readINI parses the seed optimizer's config.ini: a [main] section of
// key=value (or key: value) lines, ';' and '#' comments. Anything else is
// an error naming the file and line, so a typo is not silently dropped.
func readINI(path string) ([]iniEntry, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config.ini: %w", err)
	}
	var out []iniEntry
	seen := map[string]int{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			if section != "main" {
				return nil, fmt.Errorf("%s:%d: section [%s]: only [main] is read", path, n, section)
			}
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("%s:%d: want key=value, got %q", path, n, line)
		}
		if section == "" {
			return nil, fmt.Errorf("%s:%d: key outside a section: put it under [main]", path, n)
		}
		key := strings.ToLower(strings.TrimSpace(line[:i]))
		if _, known := iniFlag(key); !known {
			return nil, fmt.Errorf("%s:%d: unknown key %q (known: loglevel, api_loglevel, only_test_data, token, enable_test_metrics)", path, n, key)
		}
		if first, dup := seen[key]; dup {
			return nil, fmt.Errorf("%s:%d: key %q again (first on line %d)", path, n, key, first)
		}
		seen[key] = n
		out = append(out, iniEntry{key: key, value: strings.TrimSpace(line[i+1:]), line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// iniBool reads a boolean as Python's configparser does.
func iniBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true/false, yes/no, on/off, 1/0)", v)
}

// applyINI sets every flag a config.ini key names that the command line,
// the environment and the --config file left unset.
func applyINI(c *cli.Context, path string) error {
	entries, err := readINI(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		flag, _ := iniFlag(e.key)
		v := e.value
		if e.key == "only_test_data" || e.key == "enable_test_metrics" {
			b, err := iniBool(v)
			if err != nil {
				return fmt.Errorf("%s:%d: %s: %w", path, e.line, e.key, err)
			}
			v = fmt.Sprint(b)
		}
		if e.key == "loglevel" || e.key == "api_loglevel" {
			if _, err := parseLevel(e.key, v); err != nil {
				return fmt.Errorf("%s:%d: %w", path, e.line, err)
			}
		}
		if flag == "" || given(c, flag) {
			continue
		}
		if err := c.Set(flag, v); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, e.line, e.key, err)
		}
	}
	return nil
}
