package nextcloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/studio-b12/gowebdav"

	"hpcbot/plugins"
)

const opUpload = "upload to cloud failed"

// Progress is the resumable state of one chunked upload. The caller persists it
// (save is called before the upload folder is created and after every chunk) and
// hands it back after a restart; the zero Progress means "nothing started".
type Progress struct {
	UploadID   string    `json:"id,omitempty"`    // folder below /remote.php/dav/uploads/<user>/
	ChunkSize  int64     `json:"chunk,omitempty"` // chunk size the upload was started with
	ChunksDone int       `json:"done,omitempty"`  // chunks 1..ChunksDone are on the server
	Size       int64     `json:"size,omitempty"`  // size of the local file when it started
	ModTime    time.Time `json:"mtime,omitzero"`  // mtime of the local file when it started
}

// matches reports whether p belongs to an upload of a file of this size and mtime
// in chunks of this size.
func (p Progress) matches(size int64, mtime time.Time, chunk int64) bool {
	return p.UploadID != "" && p.Size == size && p.ModTime.Equal(mtime) && p.ChunkSize == chunk
}

// UploadState is the resumable state of a folder upload: the Progress of every
// chunked file not finished yet, by slash-separated path relative to the local
// folder. Encode gives the JSON the store keeps in the calculation's Progress.
type UploadState map[string]Progress

// Encode returns s as compact JSON (nil for an empty state).
func (s UploadState) Encode() json.RawMessage {
	if len(s) == 0 {
		return nil
	}
	b, _ := json.Marshal(s) // a map of plain structs cannot fail
	return b
}

// DecodeUploadState parses what Encode returned; nil is an empty state.
func DecodeUploadState(v json.RawMessage) (UploadState, error) {
	s := UploadState{}
	if len(v) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("decode upload state: %w", err)
	}
	return s, nil
}

// UploadDir uploads every regular file below localDir to BasePath/remoteDir,
// keeping the tree, and creates the folders (and their parents) it needs.
//
// It is safe to call again after any failure or crash: a file already on the
// server with the same size and modification time (to the second; uploads set
// the server's mtime from the local file) is skipped, and a chunked upload in
// state resumes where it stopped. state may be nil; it is updated in place and
// save (may be nil) is called with it after every change, before the step it
// records counts as done. A finished file leaves state. Symbolic links and other
// non-regular files are skipped.
func (c *Client) UploadDir(ctx context.Context, localDir, remoteDir string, state UploadState, save func(UploadState) error) error {
	if state == nil {
		state = UploadState{}
	}
	if err := c.mkdirAll(ctx, c.remote(remoteDir)); err != nil {
		return err
	}
	return c.uploadTree(ctx, localDir, "", remoteDir, state, save)
}

func (c *Client) uploadTree(ctx context.Context, localDir, rel, remoteDir string, state UploadState, save func(UploadState) error) error {
	dir := filepath.Join(localDir, filepath.FromSlash(rel))
	local, err := os.ReadDir(dir)
	if err != nil {
		return &plugins.Error{Kind: plugins.KindPermanent, Msg: opUpload, Err: fmt.Errorf("read result folder: %w", err)}
	}
	remoteRel := path.Join(remoteDir, rel)
	there, err := c.list(ctx, opUpload, c.remote(remoteRel), c.filesURL(c.remote(remoteRel)), "1")
	if err != nil {
		return err
	}
	have := make(map[string]entry, len(there))
	for _, e := range there {
		have[e.Name] = e
	}
	sort.Slice(local, func(i, j int) bool { return local[i].Name() < local[j].Name() })
	for _, d := range local {
		if err := ctx.Err(); err != nil {
			return &plugins.Error{Kind: plugins.KindTransient, Msg: opUpload, Err: err}
		}
		childRel := path.Join(rel, d.Name())
		switch {
		case d.IsDir():
			if e, ok := have[d.Name()]; !ok || !e.Dir {
				if err := c.mkcol(ctx, c.remote(path.Join(remoteDir, childRel))); err != nil {
					return err
				}
			}
			if err := c.uploadTree(ctx, localDir, childRel, remoteDir, state, save); err != nil {
				return err
			}
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return &plugins.Error{Kind: plugins.KindPermanent, Msg: opUpload, Err: fmt.Errorf("stat result file: %w", err)}
			}
			if e, ok := have[d.Name()]; ok && !e.Dir && e.Size == info.Size() && e.ModTime.Unix() == info.ModTime().Unix() {
				c.log.Debug("already uploaded", "path", childRel)
				if _, ok := state[childRel]; ok {
					delete(state, childRel)
					if err := saveState(save, state); err != nil {
						return err
					}
				}
				continue
			}
			p := state[childRel]
			err = c.UploadFile(ctx, filepath.Join(dir, d.Name()), path.Join(remoteDir, childRel), &p, func(p Progress) error {
				if p == (Progress{}) {
					delete(state, childRel)
				} else {
					state[childRel] = p
				}
				return saveState(save, state)
			})
			if err != nil {
				return err
			}
		default:
			c.log.Warn("not uploading a file that is not regular", "path", childRel, "mode", d.Type().String())
		}
	}
	return nil
}

func saveState(save func(UploadState) error, s UploadState) error {
	if save == nil {
		return nil
	}
	if err := save(s); err != nil {
		return fmt.Errorf("save upload progress: %w", err)
	}
	return nil
}

// UploadFile uploads one local file to BasePath/remotePath; the folder must exist.
// Files smaller than ChunkThreshold go in one PUT (with a Content-Length and
// X-OC-Mtime); larger ones use Nextcloud's chunked upload v2, streamed from disk
// one chunk at a time.
//
// Resuming: progress (must not be nil) is the state of an earlier attempt, the zero
// value for a first one. The upload id is derived from the destination, the file's
// size and mtime and the chunk size, and progress is saved with it before the
// upload folder is created, so an attempt that crashed at any point finds its
// folder again. save is called after every chunk; on a resume the server's
// listing of the upload folder decides which chunks are sent again (only those
// missing or of the wrong size). A folder that expired (Nextcloud removes it after
// 24 h without activity) starts over. A file whose size or mtime changed since
// progress was saved starts over too, and its stale folder is removed. When the
// file is complete, progress is reset to the zero value and saved.
func (c *Client) UploadFile(ctx context.Context, localPath, remotePath string, progress *Progress, save func(Progress) error) error {
	f, err := os.Open(localPath)
	if err != nil {
		return &plugins.Error{Kind: plugins.KindPermanent, Msg: opUpload, Err: fmt.Errorf("open result file: %w", err)}
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return &plugins.Error{Kind: plugins.KindPermanent, Msg: opUpload, Err: fmt.Errorf("stat result file: %w", err)}
	}
	if !info.Mode().IsRegular() {
		return &plugins.Error{Kind: plugins.KindPermanent, Msg: opUpload, Err: fmt.Errorf("%s is not a regular file", filepath.Base(localPath))}
	}
	if progress == nil {
		progress = &Progress{}
	}
	if save == nil {
		save = func(Progress) error { return nil }
	}
	remote := c.remote(remotePath)
	size, mtime := info.Size(), info.ModTime().Truncate(time.Second)
	if size < c.opts.ChunkThreshold {
		if progress.UploadID != "" { // the threshold went up since: drop the old folder
			c.abort(ctx, progress.UploadID)
			*progress = Progress{}
			if err := save(*progress); err != nil {
				return fmt.Errorf("save upload progress: %w", err)
			}
		}
		return c.put(ctx, f, size, mtime, remote)
	}
	return c.putChunked(ctx, f, size, mtime, remote, progress, save)
}

// put sends a small file in one PUT through gowebdav. WriteStreamWithLength
// streams the reader with the given Content-Length (WriteStream would read a
// non-seekable stream into memory first; docs/FACTS.md#gowebdav-streaming).
func (c *Client) put(ctx context.Context, f *os.File, size int64, mtime time.Time, remote string) error {
	wctx, w := watch(ctx, c.opts.IdleTimeout)
	defer w.stop()
	d := c.dav(wctx)
	d.SetInterceptor(func(method string, rq *http.Request) {
		if method == http.MethodPut {
			rq.Header.Set("X-OC-Mtime", strconv.FormatInt(mtime.Unix(), 10))
		}
	})
	var body io.Reader = http.NoBody // Content-Length: 0, never chunked transfer encoding
	if size > 0 {
		body = w.reader(io.NewSectionReader(f, 0, size))
	}
	if err := d.WriteStreamWithLength(remote, body, size, 0o644); err != nil {
		return c.davError(wctx, "PUT", remote, err)
	}
	c.log.Debug("uploaded", "path", remote, "size", size)
	return nil
}

// davError classifies an error from gowebdav: a status it met comes back as an
// *fs.PathError holding a gowebdav.StatusError; anything else is the transport's.
func (c *Client) davError(ctx context.Context, method, remote string, err error) error {
	var se gowebdav.StatusError
	if errors.As(err, &se) {
		return classify(opUpload, &StatusError{Method: method, Path: remote, Status: se.Status})
	}
	return transportError(ctx, opUpload, err)
}

// mkcol creates one folder; one that exists already (405) is fine.
func (c *Client) mkcol(ctx context.Context, remote string) error {
	resp, err := c.do(ctx, opUpload, request{method: "MKCOL", url: c.filesURL(remote)})
	if err != nil {
		return err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusMethodNotAllowed:
		return nil
	}
	return c.statusError(opUpload, "MKCOL", remote, resp)
}

// mkdirAll creates remote and its parents: one MKCOL when only the last level is
// missing, else one per level from the top (409 says a parent is missing).
func (c *Client) mkdirAll(ctx context.Context, remote string) error {
	if remote == "" {
		return nil
	}
	resp, err := c.do(ctx, opUpload, request{method: "MKCOL", url: c.filesURL(remote)})
	if err != nil {
		return err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusMethodNotAllowed:
		return nil
	case http.StatusConflict:
	default:
		return c.statusError(opUpload, "MKCOL", remote, resp)
	}
	p := ""
	for _, seg := range splitPath(remote) {
		p = path.Join(p, seg)
		if err := c.mkcol(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func splitPath(p string) []string {
	var out []string
	for p != "" && p != "." && p != "/" {
		out = append([]string{path.Base(p)}, out...)
		p = path.Dir(p)
	}
	return out
}

// uploadID names the upload folder: the same destination, size, mtime and chunk
// size always give the same id, so an attempt that crashed before its progress
// was saved still finds its folder.
func (c *Client) uploadID(remote string, size int64, mtime time.Time, chunk int64) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%d", c.opts.User, remote, size, mtime.Unix(), chunk)
	return "hpcbot-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// putChunked is chunked upload v2 (docs/FACTS.md#nextcloud-chunked-upload):
// MKCOL the upload folder with a Destination header, PUT chunks named 00001.. in
// order, each with Destination and OC-Total-Length (the server checks the quota
// with it at once), then MOVE .file to assemble, with X-OC-Mtime.
func (c *Client) putChunked(ctx context.Context, f *os.File, size int64, mtime time.Time, remote string, p *Progress, save func(Progress) error) error {
	chunk := c.opts.ChunkSize
	n := int((size + chunk - 1) / chunk)
	if n > MaxChunks {
		chunk = (size + MaxChunks - 1) / MaxChunks
		n = int((size + chunk - 1) / chunk)
	}
	dest := c.filesURL(remote)
	hdr := func() http.Header {
		return http.Header{"Destination": {dest}, "OC-Total-Length": {strconv.FormatInt(size, 10)}}
	}
	resumed := p.matches(size, mtime, chunk)
	if !resumed {
		if p.UploadID != "" {
			c.log.Info("local file changed since the upload started: starting over", "path", remote)
			c.abort(ctx, p.UploadID)
		}
		*p = Progress{UploadID: c.uploadID(remote, size, mtime, chunk), ChunkSize: chunk, Size: size, ModTime: mtime}
		if err := save(*p); err != nil {
			return fmt.Errorf("save upload progress: %w", err)
		}
	}
	id := p.UploadID
	log := c.log.With("path", remote, "upload", id)

	// What does the server hold? A fresh id usually answers 404 (not created yet).
	have := map[int]int64{}
	entries, err := c.list(ctx, opUpload, "uploads/"+id, c.uploadsURL(id), "1")
	switch {
	case err == nil:
		for _, e := range entries {
			if k, convErr := strconv.Atoi(e.Name); convErr == nil && !e.Dir {
				have[k] = e.Size
			}
		}
		if resumed {
			log.Info("resuming chunked upload", "chunks_on_server", len(have), "chunks", n)
		}
	case plugins.KindOf(err) == plugins.KindNotFound:
		if resumed {
			// Expired (24 h without activity) or already assembled by a MOVE whose
			// answer we never saw: check the destination before starting over.
			if done, _ := c.sameFile(ctx, remote, size, mtime); done {
				log.Info("upload was already assembled")
				*p = Progress{}
				return save(*p)
			}
			log.Info("upload folder expired: starting over")
			p.ChunksDone = 0
			if err := save(*p); err != nil {
				return fmt.Errorf("save upload progress: %w", err)
			}
		}
		if err := c.mkUploadDir(ctx, id, dest); err != nil {
			return err
		}
	default:
		return err
	}

	for k := 1; k <= n; k++ {
		off := int64(k-1) * chunk
		length := min(chunk, size-off)
		if have[k] != length {
			if err := c.putChunk(ctx, f, id, k, off, length, hdr()); err != nil {
				return err
			}
		}
		if k > p.ChunksDone {
			p.ChunksDone = k
			if err := save(*p); err != nil {
				return fmt.Errorf("save upload progress: %w", err)
			}
		}
	}

	h := hdr()
	h.Set("X-OC-Mtime", strconv.FormatInt(mtime.Unix(), 10))
	h.Set("Overwrite", "T")
	resp, err := c.do(ctx, opUpload, request{method: "MOVE", url: c.uploadsURL(id, ".file"), header: h, timeout: c.opts.AssembleTimeout})
	if err != nil {
		return err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusNoContent, http.StatusOK:
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed:
		// The server refused to assemble (chunks missing or not adding up, folder
		// gone): start over on the next attempt rather than failing the calculation.
		c.abort(ctx, id)
		*p = Progress{}
		if err := save(*p); err != nil {
			return fmt.Errorf("save upload progress: %w", err)
		}
		return &plugins.Error{Kind: plugins.KindTransient, Msg: opUpload,
			Err: fmt.Errorf("assembling the chunks failed, the upload starts over: %w", &StatusError{Method: "MOVE", Path: remote, Status: resp.StatusCode})}
	default:
		return c.statusError(opUpload, "MOVE", remote, resp)
	}
	log.Debug("uploaded in chunks", "size", size, "chunks", n)
	*p = Progress{}
	return save(*p)
}

// mkUploadDir creates the upload folder; one that exists already (405) is fine.
func (c *Client) mkUploadDir(ctx context.Context, id, dest string) error {
	resp, err := c.do(ctx, opUpload, request{method: "MKCOL", url: c.uploadsURL(id), header: http.Header{"Destination": {dest}}})
	if err != nil {
		return err
	}
	drain(resp)
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusMethodNotAllowed {
		return nil
	}
	return c.statusError(opUpload, "MKCOL", "uploads/"+id, resp)
}

// putChunk streams one chunk from disk (never the whole file in memory).
func (c *Client) putChunk(ctx context.Context, f *os.File, id string, k int, off, length int64, hdr http.Header) error {
	name := fmt.Sprintf("%05d", k)
	resp, err := c.do(ctx, opUpload, request{
		method: http.MethodPut,
		url:    c.uploadsURL(id, name),
		header: hdr,
		body:   io.NewSectionReader(f, off, length),
		size:   length,
	})
	if err != nil {
		return err
	}
	drain(resp)
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return c.statusError(opUpload, http.MethodPut, "uploads/"+id+"/"+name, resp)
}

// abort deletes an upload folder, best effort (it expires by itself after 24 h).
func (c *Client) abort(ctx context.Context, id string) {
	resp, err := c.do(ctx, opUpload, request{method: http.MethodDelete, url: c.uploadsURL(id)})
	if err != nil {
		c.log.Debug("could not remove an upload folder", "upload", id, "err", err)
		return
	}
	drain(resp)
}

// sameFile reports whether remote exists with this size and mtime (to the second).
func (c *Client) sameFile(ctx context.Context, remote string, size int64, mtime time.Time) (bool, error) {
	es, err := c.list(ctx, opUpload, remote, c.filesURL(remote), "0")
	if err != nil || len(es) != 1 {
		return false, err
	}
	return !es[0].Dir && es[0].Size == size && es[0].ModTime.Unix() == mtime.Unix(), nil
}
