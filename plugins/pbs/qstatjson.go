package pbs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// jsonDoc is one document printed by `qstat -f -F json` (PBS Pro 18 and later,
// OpenPBS). Only the fields the dialect reads are decoded. Scalars are kept raw:
// qstat prints any value that looks like a number without quotes (a job named
// "123" has "Job_Name":123), so a string field could receive a number.
type jsonDoc struct {
	PBSVersion string             `json:"pbs_version"`
	Jobs       map[string]jsonJob `json:"Jobs"`
}

type jsonJob struct {
	JobState      json.RawMessage `json:"job_state"`
	Substate      json.RawMessage `json:"substate"`
	ExitStatus    json.RawMessage `json:"Exit_status"`
	Comment       json.RawMessage `json:"comment"`
	Stime         json.RawMessage `json:"stime"`
	Obittime      json.RawMessage `json:"obittime"`
	Mtime         json.RawMessage `json:"mtime"`
	ExecHost      json.RawMessage `json:"exec_host"`
	ResourcesUsed struct {
		Walltime json.RawMessage `json:"walltime"`
	} `json:"resources_used"`
	ResourceList struct {
		Walltime json.RawMessage `json:"walltime"`
	} `json:"Resource_List"`
}

// errJSON is wrapped when qstat's JSON could be read neither strictly nor by
// the line scanner.
var errJSON = errors.New("unreadable qstat JSON")

// parseJSON reads one or more concatenated qstat JSON documents. PBS Pro has printed invalid JSON in
// several releases (unescaped quotes, backslashes, control characters and
// numbers with leading zeros in Variable_List: openpbs/openpbs#830, #1255,
// #2049, #2541); when strict decoding fails the output is read again line by
// line (scanJSONLines), which relies only on the pretty-printer's layout.
func parseJSON(out []byte) ([]record, error) {
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, nil
	}
	recs, err := decodeJSON(out)
	if err == nil {
		return recs, nil
	}
	recs, ok := scanJSONLines(out)
	if !ok {
		return nil, fmt.Errorf("%w: %v", errJSON, err)
	}
	return recs, nil
}

func decodeJSON(out []byte) ([]record, error) {
	dec := json.NewDecoder(bytes.NewReader(out))
	var recs []record
	for {
		var doc jsonDoc
		err := dec.Decode(&doc)
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
		for id, j := range doc.Jobs {
			recs = append(recs, record{
				ID:       id,
				State:    rawString(j.JobState),
				Substate: rawString(j.Substate),
				Exit:     rawString(j.ExitStatus),
				Comment:  rawString(j.Comment),
				Start:    rawString(j.Stime),
				End:      rawString(j.Obittime),
				Modified: rawString(j.Mtime),
				UsedWall: rawString(j.ResourcesUsed.Walltime),
				ReqWall:  rawString(j.ResourceList.Walltime),
				ExecHost: rawString(j.ExecHost),
			})
		}
	}
}

// rawString turns a raw JSON scalar into its text: a string is unquoted, a
// number or boolean kept as written, null and absent give "".
func rawString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s
		}
		return strings.Trim(string(raw), `"`)
	}
	if raw[0] == '{' || raw[0] == '[' {
		return ""
	}
	return string(raw)
}

// scanJSONLines reads qstat's JSON by its layout (PBS prints one member per
// line, indented by four spaces per level: document, "Jobs", job at 8 spaces,
// its attributes at 12, the members of resources_used and Resource_List at 16)
// and only the scalar members the dialect needs, so a malformed value elsewhere
// (typically in Variable_List) does no harm. It reports false when it found no
// job at all.
func scanJSONLines(out []byte) ([]record, bool) {
	var (
		recs []record
		cur  *record
		obj  string // level-3 object being read ("resources_used"), "" for none
	)
	s := string(out)
	for len(s) > 0 {
		var line string
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			line, s = s, ""
		}
		line = strings.TrimRight(line, " \t\r")
		n := 0
		for n < len(line) && line[n] == ' ' {
			n++
		}
		rest := line[n:]
		switch n {
		case 8:
			name, value, ok := splitMember(rest)
			if ok && value == "{" {
				recs = append(recs, record{ID: name})
				cur = &recs[len(recs)-1]
				obj = ""
			}
		case 12:
			if cur == nil {
				continue
			}
			if rest == "}" || rest == "}," {
				obj = ""
				continue
			}
			name, value, ok := splitMember(rest)
			switch {
			case !ok:
			case value == "{":
				obj = name
			default:
				if i := attrIndex(name); i >= 0 {
					cur.setIndex(i, scanValue(value))
				}
			}
		case 16:
			if cur == nil || obj == "" {
				continue
			}
			if name, value, ok := splitMember(rest); ok {
				if i := attrIndex(obj + "." + name); i >= 0 {
					cur.setIndex(i, scanValue(value))
				}
			}
		}
	}
	return recs, len(recs) > 0
}

// splitMember splits `"name":value,` into name and value (without the comma).
// ok is false when the line does not start with a quoted name and a colon.
func splitMember(s string) (name, value string, ok bool) {
	if len(s) < 3 || s[0] != '"' {
		return "", "", false
	}
	end := strings.Index(s[1:], `":`)
	if end < 0 {
		return "", "", false
	}
	name = s[1 : 1+end]
	if name == "" || strings.ContainsAny(name, `"\`) {
		return "", "", false
	}
	value = strings.TrimSuffix(s[1+end+2:], ",")
	return name, value, true
}

// scanValue turns the text after "name": into a value: a quoted string is
// unquoted (leniently), anything else kept as written.
func scanValue(v string) string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, `"`) {
		var s string
		if err := json.Unmarshal([]byte(v), &s); err == nil {
			return s
		}
		if s, err := strconv.Unquote(v); err == nil {
			return s
		}
		return strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
	}
	return v
}
