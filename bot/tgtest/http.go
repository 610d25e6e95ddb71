package tgtest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type apiError struct {
	code   int
	desc   string
	params map[string]any
}

func (e *apiError) Error() string { return e.desc }

func badRequest(format string, a ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, desc: "Bad Request: " + fmt.Sprintf(format, a...)}
}

// ServeHTTP answers one Bot API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/file/bot"); ok {
		s.serveFile(w, rest)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	i := strings.LastIndexByte(rest, '/')
	if !ok || i < 0 {
		writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error_code": 404, "description": "Not Found"})
		return
	}
	token, method := rest[:i], rest[i+1:]
	params, files, perr := parseParams(r)
	s.mu.Lock()
	idx := len(s.calls)
	s.calls = append(s.calls, Call{Method: method, Params: params, Files: files, Time: time.Now()})
	s.notifyLocked()
	var fault *Fault
	if token == s.Token && perr == nil {
		fault = s.matchFaultLocked(method, params)
	}
	s.mu.Unlock()

	var result any
	var err *apiError
	switch {
	case token != s.Token:
		err = &apiError{code: http.StatusUnauthorized, desc: "Unauthorized"}
	case perr != nil:
		err = badRequest("%v", perr)
	case fault != nil && fault.Drop:
		s.setCode(idx, -1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case fault != nil && fault.Body != "":
		s.setCode(idx, fault.Code)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(fault.Code)
		io.WriteString(w, fault.Body)
		return
	case fault != nil:
		err = &apiError{code: fault.Code, desc: fault.Description, params: map[string]any{}}
		if fault.RetryAfter > 0 {
			err.params["retry_after"] = fault.RetryAfter
		}
		if fault.MigrateTo != 0 {
			err.params["migrate_to_chat_id"] = fault.MigrateTo
		}
	default:
		result, err = s.call(r, strings.ToLower(method), params, files)
	}
	if err != nil {
		body := map[string]any{"ok": false, "error_code": err.code, "description": err.desc}
		if len(err.params) > 0 {
			body["parameters"] = err.params
		}
		s.setCode(idx, err.code)
		writeJSON(w, err.code, body)
		return
	}
	s.setCode(idx, http.StatusOK)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "result": result})
}

func (s *Server) setCode(idx, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[idx].Code = code
	s.notifyLocked()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// parseParams reads the parameters the ways https://core.telegram.org/bots/api#making-requests
// allows: query string, urlencoded form, JSON, multipart form.
func parseParams(r *http.Request) (map[string]string, map[string]Upload, error) {
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]json.RawMessage
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, nil, err
		}
		if len(strings.TrimSpace(string(body))) > 0 && string(body) != "null\n" && string(body) != "null" {
			if err := json.Unmarshal(body, &m); err != nil {
				return nil, nil, fmt.Errorf("can't parse JSON object: %v", err)
			}
		}
		for k, v := range m {
			var str string
			switch {
			case string(v) == "null":
			case json.Unmarshal(v, &str) == nil:
				params[k] = str
			default:
				params[k] = string(v)
			}
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, nil, err
		}
		for k, v := range r.PostForm {
			params[k] = v[0]
		}
	case "multipart/form-data":
		// Read part by part: a part with a filename parameter is a file even
		// when the name is empty (telebot sends photos from readers so), which
		// Request.ParseMultipartForm would take for a plain value.
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, nil, err
		}
		files := map[string]Upload{}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, nil, err
			}
			data, err := io.ReadAll(io.LimitReader(part, MaxUploadSize+1))
			if err != nil {
				return nil, nil, err
			}
			_, cd, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
			if name, isFile := cd["filename"]; isFile {
				files[part.FormName()] = Upload{Name: name, Data: data}
			} else {
				params[part.FormName()] = string(data)
			}
		}
		return params, files, nil
	}
	return params, nil, nil
}

func intParam(params map[string]string, name string, def int64) (int64, *apiError) {
	v, ok := params[name]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badRequest("invalid %s specified", name)
	}
	return n, nil
}

// call does method; method is lower case.
func (s *Server) call(r *http.Request, method string, p map[string]string, files map[string]Upload) (any, *apiError) {
	switch method {
	case "getme":
		return s.Bot, nil
	case "getupdates":
		return s.getUpdates(r, p)
	case "logout", "close", "deletewebhook", "sendchataction":
		return true, nil
	case "getwebhookinfo":
		s.mu.Lock()
		defer s.mu.Unlock()
		return map[string]any{"url": "", "has_custom_certificate": false, "pending_update_count": len(s.queue)}, nil
	case "sendmessage":
		return s.sendMessage(p)
	case "senddocument":
		return s.sendFile(p, files, "document")
	case "sendphoto":
		return s.sendFile(p, files, "photo")
	case "forwardmessage", "copymessage":
		return s.forward(p, method == "copymessage")
	case "editmessagetext":
		return s.editMessageText(p)
	case "editmessagereplymarkup":
		return s.editMessageReplyMarkup(p)
	case "answercallbackquery":
		return s.answerCallbackQuery(p)
	case "deletemessage":
		return s.deleteMessage(p)
	case "getfile":
		return s.getFile(p)
	case "leavechat":
		chat, err := s.chatParam(p)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.left[chat.ID] = true
		s.mu.Unlock()
		return true, nil
	case "getchat":
		chat, err := s.chatParam(p)
		if err != nil {
			return nil, err
		}
		return chat, nil
	case "getchatmember":
		return s.getChatMember(p)
	case "setmycommands", "getmycommands", "deletemycommands":
		return s.myCommands(method, p)
	}
	return nil, &apiError{code: http.StatusNotFound, desc: "Not Found"}
}
