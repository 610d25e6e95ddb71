package tgtest

import (
	"fmt"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

type storedFile struct {
	File
	data []byte
}

// AddFile stores data as a file Telegram holds, for getFile and the download path.
func (s *Server) AddFile(name string, data []byte) Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addFileLocked(name, data, "documents")
}

func (s *Server) addFileLocked(name string, data []byte, dir string) Document {
	s.nextFile++
	id := fmt.Sprintf("BQACAgIAAxkBAAI%06d", s.nextFile)
	f := &storedFile{
		File: File{FileID: id, FileUniqueID: fmt.Sprintf("AgAD%06d", s.nextFile), FileSize: int64(len(data)),
			FilePath: fmt.Sprintf("%s/file_%d%s", dir, s.nextFile, path.Ext(name))},
		data: slices.Clone(data),
	}
	s.files[id] = f
	s.paths[f.FilePath] = f
	mt := mime.TypeByExtension(path.Ext(name))
	if mt == "" {
		mt = "application/octet-stream"
	}
	return Document{FileID: id, FileUniqueID: f.FileUniqueID, FileName: name, MimeType: mt, FileSize: int64(len(data))}
}

// SetMaxDownload sets getFile's size limit (MaxDownloadLen at first); 0 lifts
// it, as a local Bot API server does.
func (s *Server) SetMaxDownload(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxDown = n
}

func (s *Server) serveFile(w http.ResponseWriter, rest string) {
	token, fpath, _ := strings.Cut(rest, "/")
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: "file", Params: map[string]string{"file_path": fpath}, Time: time.Now()})
	idx := len(s.calls) - 1
	f := s.paths[fpath]
	s.mu.Unlock()
	if token != s.Token || f == nil {
		s.setCode(idx, http.StatusNotFound)
		http.NotFound(w, nil)
		return
	}
	s.setCode(idx, http.StatusOK)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	w.Write(f.data)
}

// getFile: https://core.telegram.org/bots/api#getfile ("bots can download
// files of up to 20MB in size").
func (s *Server) getFile(p map[string]string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[p["file_id"]]
	if !ok {
		return nil, badRequest("invalid file_id")
	}
	if s.maxDown > 0 && f.FileSize > s.maxDown {
		return nil, badRequest("file is too big")
	}
	return f.File, nil
}
