package pbs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
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

// parseJSON reads one or more concatenated qstat JSON documents (the user-wide
// poll runs qstat once per xargs batch). PBS Pro has printed invalid JSON in
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

var (
	// scanJob is a job's opening line: 8 spaces (level 2: document, "Jobs", job).
	scanJob = regexp.MustCompile(`^ {8}"([^"]+)":\{\s*$`)
	// scanAttr is a scalar attribute of the job (level 3) or of one of its
	// resource lists (level 4).
	scanAttr = regexp.MustCompile(`^( {12}| {16})"([A-Za-z_][A-Za-z0-9_.]*)":(.*?),?\s*$`)
	// scanObj opens a level-3 object such as "resources_used":{.
	scanObj = regexp.MustCompile(`^ {12}"([A-Za-z_][A-Za-z0-9_.]*)":\{\s*$`)
)

// scanJSONLines reads qstat's JSON by its layout (PBS prints one member per
// line, indented by four spaces per level) and only the scalar members the
// dialect needs, so a malformed value elsewhere (typically in Variable_List)
// does no harm. It reports false when it found no job at all.
func scanJSONLines(out []byte) ([]record, bool) {
	var (
		recs []record
		cur  *record
		obj  string // level-3 object being read ("resources_used"), "" for none
	)
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if m := scanJob.FindStringSubmatch(line); m != nil {
			recs = append(recs, record{ID: m[1]})
			cur = &recs[len(recs)-1]
			obj = ""
			continue
		}
		if cur == nil {
			continue
		}
		if m := scanObj.FindStringSubmatch(line); m != nil {
			obj = m[1]
			continue
		}
		if strings.HasPrefix(line, "            }") && !strings.HasPrefix(line, "             ") {
			obj = ""
			continue
		}
		m := scanAttr.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, value := m[2], scanValue(m[3])
		if len(m[1]) == 16 {
			if obj == "" {
				continue
			}
			name = obj + "." + name
		}
		cur.set(name, value)
	}
	return recs, len(recs) > 0
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
