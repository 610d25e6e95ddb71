// Problems located in hpcbot.toml: the line of every key path, and each
// problem prefixed with file:line.

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// located prefixes each problem with file:line where the key can be found.
func located(path string, lines map[string]int, err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = flatten(j.Unwrap())
	} else {
		list = []error{err}
	}
	var out []error
	for _, e := range list {
		msg := e.Error()
		key := keyPrefix.FindString(msg)
		if n := lookupLine(lines, key); n > 0 {
			out = append(out, fmt.Errorf("%s:%d: %s", path, n, msg))
		} else {
			out = append(out, fmt.Errorf("%s: %s", path, msg))
		}
	}
	return errors.Join(out...)
}

func flatten(errs []error) []error {
	var out []error
	for _, e := range errs {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			out = append(out, flatten(j.Unwrap())...)
		} else if e != nil {
			out = append(out, e)
		}
	}
	return out
}

var (
	trailingIndex = regexp.MustCompile(`\[\d+\]$`)
	keyPrefix     = regexp.MustCompile(`^[A-Za-z0-9_\-]+(\[\d+\])?(\.[A-Za-z0-9_\-]+(\[\d+\])?)*`)
)

// lookupLine finds the line of a key path such as clusters[1].runners[0].allowed_args[2],
// trying shorter paths when the exact one is not a line of its own.
func lookupLine(lines map[string]int, key string) int {
	for key != "" {
		if n, ok := lines[key]; ok {
			return n
		}
		if trailingIndex.MatchString(key) {
			key = trailingIndex.ReplaceAllString(key, "")
			continue
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

var (
	headerRE = regexp.MustCompile(`^\s*(\[\[?)\s*([A-Za-z0-9_.\-"' ]+?)\s*\]\]?\s*(#.*)?$`)
	keyRE    = regexp.MustCompile(`^\s*([A-Za-z0-9_\-]+|"[^"]*")\s*=`)
)

// indexKeys maps every key path of a TOML document to its line: both with array
// indices ("clusters[1].connection.host") and without ("clusters.connection.host",
// first occurrence), the form toml.MetaData.Undecoded uses. It understands the
// layout hpcbot.toml uses (tables, arrays of tables, key = value); anything
// fancier simply gets no line number.
func indexKeys(data []byte) map[string]int {
	lines := map[string]int{}
	counts := map[string]int{} // array-of-tables path (no indices) → entries so far
	var cur, curPlain string
	put := func(k string, n int) {
		if _, ok := lines[k]; !ok {
			lines[k] = n
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if m := headerRE.FindStringSubmatch(line); m != nil && !strings.Contains(line, "=") {
			parts := strings.Split(m[2], ".")
			var idx, plain []string
			for i := range parts {
				p := strings.Trim(strings.TrimSpace(parts[i]), `"'`)
				plain = append(plain, p)
				pp := strings.Join(plain, ".")
				if m[1] == "[[" && i == len(parts)-1 {
					counts[pp]++
					idx = append(idx, fmt.Sprintf("%s[%d]", p, counts[pp]-1))
					// a new parent entry restarts its children's numbering
					for k := range counts {
						if strings.HasPrefix(k, pp+".") {
							delete(counts, k)
						}
					}
				} else if c, ok := counts[pp]; ok {
					idx = append(idx, fmt.Sprintf("%s[%d]", p, c-1))
				} else {
					idx = append(idx, p)
				}
			}
			cur, curPlain = strings.Join(idx, "."), strings.Join(plain, ".")
			put(cur, n)
			put(curPlain, n)
			continue
		}
		if m := keyRE.FindStringSubmatch(line); m != nil {
			k := strings.Trim(m[1], `"`)
			put(join(cur, k), n)
			put(join(curPlain, k), n)
		}
	}
	return lines
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}
