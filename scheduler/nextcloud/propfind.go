package nextcloud

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// entry is one member of a WebDAV collection.
type entry struct {
	Name    string
	Size    int64
	ModTime time.Time
	Dir     bool
}

const propfindBody = `<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:getcontentlength/><d:getlastmodified/><d:resourcetype/></d:prop></d:propfind>`

// list returns the members of the collection at rawURL (PROPFIND, Depth 1), or
// only the resource itself with depth "0". A missing collection is a KindNotFound
// error (an expired upload folder answers 404).
func (c *Client) list(ctx context.Context, op, remote, rawURL, depth string) ([]entry, error) {
	resp, err := c.do(ctx, op, request{
		method: "PROPFIND",
		url:    rawURL,
		header: http.Header{"Depth": {depth}, "Content-Type": {"application/xml; charset=utf-8"}},
		body:   strings.NewReader(propfindBody),
		size:   int64(len(propfindBody)),
	})
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusMultiStatus {
		return nil, c.statusError(op, "PROPFIND", remote, resp)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	entries, err := parseMultistatus(io.LimitReader(resp.Body, 64<<20), u.Path, depth == "0")
	if err != nil {
		return nil, fmt.Errorf("%s: PROPFIND %s: %w", op, remote, err)
	}
	return entries, nil
}

type multistatus struct {
	Responses []struct {
		Href     string `xml:"DAV: href"`
		Propstat []struct {
			Status string `xml:"DAV: status"`
			Prop   struct {
				Length       string    `xml:"DAV: getcontentlength"`
				LastModified string    `xml:"DAV: getlastmodified"`
				Type         *struct { // present for every resource
					Collection *struct{} `xml:"DAV: collection"`
				} `xml:"DAV: resourcetype"`
			} `xml:"DAV: prop"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
}

// parseMultistatus reads a PROPFIND answer for the collection at selfPath (the
// request's URL path). Without self, the collection's own entry is left out.
func parseMultistatus(r io.Reader, selfPath string, self bool) ([]entry, error) {
	var ms multistatus
	if err := xml.NewDecoder(r).Decode(&ms); err != nil {
		return nil, fmt.Errorf("bad multistatus: %w", err)
	}
	selfPath = strings.TrimSuffix(selfPath, "/")
	var out []entry
	for _, resp := range ms.Responses {
		p := resp.Href
		if u, err := url.Parse(p); err == nil {
			p = u.Path // absolute URLs and escaped paths alike
		}
		p = strings.TrimSuffix(p, "/")
		isSelf := p == selfPath
		if isSelf != self {
			continue
		}
		e := entry{Name: path.Base(p)}
		for _, ps := range resp.Propstat {
			if !strings.Contains(ps.Status, " 200") {
				continue
			}
			if ps.Prop.Length != "" {
				e.Size, _ = strconv.ParseInt(strings.TrimSpace(ps.Prop.Length), 10, 64)
			}
			if ps.Prop.LastModified != "" {
				e.ModTime, _ = http.ParseTime(strings.TrimSpace(ps.Prop.LastModified))
			}
			if ps.Prop.Type != nil && ps.Prop.Type.Collection != nil {
				e.Dir = true
			}
		}
		out = append(out, e)
	}
	return out, nil
}
