package nctest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// serveUploads is chunked upload v2, /remote.php/dav/uploads/<user>/<id>/<n>, as
// Nextcloud's developer manual describes it (docs/FACTS.md#nextcloud-chunked-upload):
//   - MKCOL <id> with a Destination header creates the upload folder;
//   - PUT <id>/<n> stores chunk n, a number from 1 to 10000; every request carries
//     Destination; OC-Total-Length lets the server check the quota at once;
//   - PROPFIND lists the folder (x/net/webdav does it);
//   - MOVE <id>/.file assembles the chunks in the order of their names into the
//     Destination, checking that all but the last hold at least 5 MB, honours
//     X-OC-Mtime, and removes the folder;
//   - DELETE <id> aborts; chunks cannot be downloaded.
func (s *Server) serveUploads(w http.ResponseWriter, r *http.Request) {
	rel := strings.Trim(strings.TrimPrefix(r.URL.Path, s.uploadsPrefix()), "/")
	parts := strings.Split(rel, "/")
	if rel == "" {
		parts = nil
	}
	needsDest := r.Method == "MKCOL" || r.Method == http.MethodPut || r.Method == "MOVE"
	if needsDest && r.Header.Get("Destination") == "" {
		sabreError(w, http.StatusBadRequest, "Sabre\\DAV\\Exception\\BadRequest", "Destination header is required for chunked upload v2")
		return
	}
	switch {
	case r.Method == "MKCOL" && len(parts) == 1:
		s.uploads.ServeHTTP(w, r)
	case r.Method == http.MethodPut && len(parts) == 2:
		s.putChunk(w, r, parts[0], parts[1])
	case r.Method == "MOVE" && len(parts) == 2 && parts[1] == ".file":
		s.assemble(w, r, parts[0])
	case r.Method == "PROPFIND" || r.Method == http.MethodDelete || r.Method == http.MethodOptions:
		s.uploads.ServeHTTP(w, r)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		sabreError(w, http.StatusForbidden, "Sabre\\DAV\\Exception\\Forbidden", "Chunks cannot be downloaded")
	default:
		sabreError(w, http.StatusMethodNotAllowed, "Sabre\\DAV\\Exception\\MethodNotAllowed", r.Method+" is not allowed here")
	}
}

func (s *Server) uploadFolder(id string) string {
	return filepath.Join(s.upDir, filepath.Base(filepath.Clean("/"+id)))
}

func (s *Server) putChunk(w http.ResponseWriter, r *http.Request, id, name string) {
	n, err := strconv.Atoi(name)
	if err != nil || n < 1 || n > 10000 {
		sabreError(w, http.StatusBadRequest, "Sabre\\DAV\\Exception\\BadRequest", "chunk name must be a number between 1 and 10000")
		return
	}
	dir := s.uploadFolder(id)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		sabreError(w, http.StatusNotFound, "Sabre\\DAV\\Exception\\NotFound", "Upload folder "+id+" not found")
		return
	}
	if !s.checkPutLength(w, r) {
		return
	}
	if r.ContentLength > 5<<30 {
		sabreError(w, http.StatusBadRequest, "Sabre\\DAV\\Exception\\BadRequest", "chunk larger than 5 GB")
		return
	}
	if total := r.Header.Get("OC-Total-Length"); total != "" {
		t, err := strconv.ParseInt(total, 10, 64)
		if err != nil || t < 0 {
			sabreError(w, http.StatusBadRequest, "Sabre\\DAV\\Exception\\BadRequest", "bad OC-Total-Length")
			return
		}
		if !s.checkQuota(w, t) {
			return
		}
	}
	if err := writeExactly(filepath.Join(dir, name), r.Body, r.ContentLength); err != nil {
		sabreError(w, http.StatusBadRequest, "Sabre\\DAV\\Exception\\BadRequest", err.Error())
		return
	}
	s.mu.Lock()
	hook := s.chunkHook
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) assemble(w http.ResponseWriter, r *http.Request, id string) {
	dir := s.uploadFolder(id)
	entries, err := os.ReadDir(dir)
	if err != nil {
		sabreError(w, http.StatusNotFound, "Sabre\\DAV\\Exception\\NotFound", "Upload folder "+id+" not found")
		return
	}
	dest, ok := s.destination(r)
	if !ok {
		sabreError(w, http.StatusBadGateway, "Sabre\\DAV\\Exception\\BadGateway", "Destination is not this account's files")
		return
	}
	type chunk struct {
		n    int
		name string
		size int64
	}
	var chunks []chunk
	var total int64
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		chunks = append(chunks, chunk{n, e.Name(), info.Size()})
		total += info.Size()
	}
	sort.Slice(chunks, func(i, j int) bool { return chunks[i].n < chunks[j].n })
	s.mu.Lock()
	minChunk := s.minChunk
	s.mu.Unlock()
	for i, c := range chunks[:max(0, len(chunks)-1)] {
		if c.size < minChunk {
			sabreError(w, http.StatusBadRequest, "Sabre\\DAV\\Exception\\BadRequest",
				fmt.Sprintf("chunk %d (number %d of %d) holds %d bytes, less than the minimum of %d", c.n, i+1, len(chunks), c.size, minChunk))
			return
		}
	}
	if v := r.Header.Get("OC-Total-Length"); v != "" {
		if want, err := strconv.ParseInt(v, 10, 64); err != nil || want != total {
			sabreError(w, http.StatusBadRequest, "Sabre\\DAV\\Exception\\BadRequest",
				fmt.Sprintf("Chunks on server do not sum up to %s but to %d bytes", v, total))
			return
		}
	}
	if st, err := os.Stat(filepath.Dir(dest)); err != nil || !st.IsDir() {
		sabreError(w, http.StatusConflict, "Sabre\\DAV\\Exception\\Conflict", "The destination node is not found")
		return
	}
	if !s.checkQuota(w, total) {
		return
	}
	readers := make([]io.Reader, 0, len(chunks))
	for _, c := range chunks {
		f, err := os.Open(filepath.Join(dir, c.name))
		if err != nil {
			sabreError(w, http.StatusInternalServerError, "Sabre\\DAV\\Exception", err.Error())
			return
		}
		defer f.Close()
		readers = append(readers, f)
	}
	_, existed := os.Stat(dest)
	if err := writeExactly(dest, io.MultiReader(readers...), total); err != nil {
		sabreError(w, http.StatusInternalServerError, "Sabre\\DAV\\Exception", err.Error())
		return
	}
	if !setMtime(w, r, dest) {
		return
	}
	_ = os.RemoveAll(dir)
	if existed == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// destination maps the Destination header (a URL or an absolute path) to a file
// below the account's root.
func (s *Server) destination(r *http.Request) (string, bool) {
	u, err := url.Parse(r.Header.Get("Destination"))
	if err != nil {
		return "", false
	}
	p := u.Path
	if !strings.HasPrefix(p, s.filesPrefix()+"/") {
		return "", false
	}
	return s.Path(strings.TrimPrefix(p, s.filesPrefix())), true
}
