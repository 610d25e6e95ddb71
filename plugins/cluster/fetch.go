package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"hpcbot/plugins"
)

// The English details Fetch gives a skipped file's code for the log
// (plugins.Skipped.Reason); the user reads the code in the user's language.
const (
	reasonNotWhitelisted = "not whitelisted"
	reasonTemporary      = "temporary file"
	reasonTooLarge       = "too large"
	reasonTotalCap       = "total size cap"
	// A symbolic link, a fifo or another special file: Fetch never follows a
	// link, it could point anywhere on the cluster.
	reasonLink    = "symbolic link (not followed)"
	reasonSpecial = "not a regular file"
	// The file grew past the size limits after it was listed; what was read
	// of it is thrown away.
	reasonGrew = "too large (grew while being fetched)"
)

func skip(f RemoteFile, code, reason string) plugins.Skipped {
	return plugins.Skipped{Path: f.Path, Size: f.Size, Code: code, Reason: reason}
}

// Own reports whether rel (slash-separated, relative to a calculation folder) is
// one of hpcbot's own bookkeeping files: any path element starting with ".hpcbot",
// and the batch script. Fetch skips them silently.
func Own(rel string) bool {
	if rel == BatchScriptName {
		return true
	}
	for _, el := range strings.Split(rel, "/") {
		if strings.HasPrefix(el, ".hpcbot") {
			return true
		}
	}
	return false
}

// Select decides which listed files Fetch copies, in path order: hpcbot's own
// files are dropped silently, links and special files, *.tmp and files outside
// the whitelist are skipped, then files above MaxSize, then (greedily) files
// that would take the total past MaxTotal.
func Select(files []RemoteFile, req plugins.FetchRequest) (take []RemoteFile, skipped []plugins.Skipped) {
	sorted := append([]RemoteFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var total int64
	for _, f := range sorted {
		switch {
		case Own(f.Path):
			continue
		case f.Mode&fs.ModeSymlink != 0:
			skipped = append(skipped, skip(f, plugins.SkipLink, reasonLink))
		case !f.Mode.IsRegular():
			skipped = append(skipped, skip(f, plugins.SkipSpecialFile, reasonSpecial+" ("+f.Mode.Type().String()+")"))
		case strings.HasSuffix(strings.ToLower(f.Path), ".tmp"):
			skipped = append(skipped, skip(f, plugins.SkipTemporary, reasonTemporary))
		case !whitelisted(f.Path, req):
			skipped = append(skipped, skip(f, plugins.SkipNotWhitelisted, reasonNotWhitelisted))
		case req.MaxSize > 0 && f.Size > req.MaxSize:
			skipped = append(skipped, skip(f, plugins.SkipTooLarge, fmt.Sprintf("%s: %d bytes, limit %d", reasonTooLarge, f.Size, req.MaxSize)))
		case req.MaxTotal > 0 && total+f.Size > req.MaxTotal:
			skipped = append(skipped, skip(f, plugins.SkipLimitReached, fmt.Sprintf("%s: %d bytes would pass %d", reasonTotalCap, total+f.Size, req.MaxTotal)))
		default:
			total += f.Size
			take = append(take, f)
		}
	}
	return take, skipped
}

// whitelisted: an extension (case-insensitive, ".out") or an exact file name
// (base name or relative path) allows a file; both lists empty allow all.
func whitelisted(rel string, req plugins.FetchRequest) bool {
	if len(req.Extensions) == 0 && len(req.Files) == 0 {
		return true
	}
	base := path.Base(rel)
	for _, name := range req.Files {
		if name == base || name == rel {
			return true
		}
	}
	ext := path.Ext(base)
	if ext == "" {
		return false
	}
	for _, e := range req.Extensions {
		if strings.EqualFold(e, ext) {
			return true
		}
	}
	return false
}

// Fetch copies the selected files into LocalDir, a few at a time.
func (s *Scheduler) Fetch(ctx context.Context, req plugins.FetchRequest) (plugins.FetchResult, error) {
	tr, upload, err := s.transport()
	if err != nil {
		return plugins.FetchResult{}, err
	}
	dir, err := remoteDir(upload, req.Folder)
	if err != nil {
		return plugins.FetchResult{}, err
	}
	if !filepath.IsAbs(req.LocalDir) {
		return plugins.FetchResult{}, plugins.Errorf(plugins.KindPermanent, "fetch %s: local folder %q is not absolute", req.Folder, req.LocalDir)
	}
	files, err := tr.List(ctx, dir)
	if err != nil {
		return plugins.FetchResult{}, fmt.Errorf("fetch %s: %w", req.Folder, err)
	}
	take, skipped := Select(files, req)
	res := plugins.FetchResult{Skipped: skipped}
	for _, f := range take {
		// A listing is remote input: never let it name a path outside LocalDir.
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return plugins.FetchResult{}, plugins.Errorf(plugins.KindPermanent, "fetch %s: remote listing gave unsafe path %q", req.Folder, f.Path)
		}
	}
	var slack int64 // what the selected files leave of MaxTotal
	if req.MaxTotal > 0 {
		slack = req.MaxTotal
		for _, f := range take {
			slack -= f.Size
		}
	}
	if err := os.MkdirAll(req.LocalDir, LocalDirMode); err != nil {
		return plugins.FetchResult{}, plugins.Errorf(plugins.KindPermanent, "fetch %s: %w", req.Folder, err)
	}
	// The folder may exist already (it held the input): results are private too.
	if err := os.Chmod(req.LocalDir, LocalDirMode); err != nil {
		return plugins.FetchResult{}, plugins.Errorf(plugins.KindPermanent, "fetch %s: %w", req.Folder, err)
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		once  sync.Once
		first error
		sem   = make(chan struct{}, s.fetchWorkers)
		got   = make([]int64, len(take)) // bytes copied; -1: skipped after all
	)
	for i, f := range take {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if ctx.Err() != nil {
				return
			}
			local := filepath.Join(req.LocalDir, filepath.FromSlash(f.Path))
			n, err := tr.Get(ctx, dir, f.Path, local, fetchLimit(req, f, slack))
			var code string
			switch {
			case errors.Is(err, ErrNotRegular):
				code = plugins.SkipSpecialFile
			case errors.Is(err, ErrTooLarge):
				code = plugins.SkipGrew
			case plugins.KindOf(err) == plugins.KindNotFound:
				code = plugins.SkipNotFound
			case errors.Is(err, fs.ErrPermission):
				code = plugins.SkipUnreadable
			case err != nil:
				once.Do(func() { first = fmt.Errorf("fetch %s: %w", f.Path, err); cancel() })
				return
			default:
				got[i] = n
				return
			}
			// Listed as a regular file of fitting size, it changed since (or
			// cannot be read): skip it (the user sees why), keep the others.
			s.log.Warn("fetch: file skipped", "folder", req.Folder, "path", f.Path, "code", code, "err", err)
			reason := err.Error()
			if code == plugins.SkipGrew {
				reason = reasonGrew + ": " + reason
			}
			mu.Lock()
			got[i] = -1
			res.Skipped = append(res.Skipped, plugins.Skipped{Path: f.Path, Size: max(n, f.Size), Code: code, Reason: reason})
			mu.Unlock()
		}()
	}
	wg.Wait()
	if first != nil {
		return plugins.FetchResult{}, first
	}
	if err := parent.Err(); err != nil {
		return plugins.FetchResult{}, fmt.Errorf("fetch %s: %w", req.Folder, err)
	}
	for i, f := range take {
		if got[i] < 0 {
			continue
		}
		res.Files = append(res.Files, f.Path)
		res.Bytes += got[i]
	}
	sort.Slice(res.Skipped, func(i, j int) bool { return res.Skipped[i].Path < res.Skipped[j].Path })
	return res, nil
}

// fetchLimit is how many bytes Get may copy of f: MaxSize, and no more than
// f's listed size plus what is left of MaxTotal after every selected file;
// NoLimit when neither is set. A file that grew past it after the listing is
// skipped (plugins.SkipGrew). A limit of 0 (an empty file with no room left) copies
// nothing more, never everything.
func fetchLimit(req plugins.FetchRequest, f RemoteFile, slack int64) int64 {
	limit := NoLimit
	if req.MaxSize > 0 {
		limit = req.MaxSize
	}
	if req.MaxTotal > 0 {
		if t := f.Size + max(slack, 0); limit == NoLimit || t < limit {
			limit = t
		}
	}
	return limit
}
