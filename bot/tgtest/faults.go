package tgtest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Fault makes the server answer matching calls with an error instead of doing them.
type Fault struct {
	Method string // case-insensitive; "" matches every method
	ChatID int64  // 0 matches any chat (and calls without chat_id)
	Times  int    // how many matching calls it answers; 0 means all of them, for good

	Code        int    // error_code and HTTP status
	Description string // e.g. "Too Many Requests: retry after 3"
	RetryAfter  int    // parameters.retry_after
	MigrateTo   int64  // parameters.migrate_to_chat_id
	Body        string // answer this raw body instead of JSON (a proxy's HTML error page)
	Drop        bool   // close the connection without answering
}

// TooManyRequests answers the next times calls of method with 429 and
// retry_after, as Telegram's flood control does
// (https://core.telegram.org/bots/api#responseparameters).
func TooManyRequests(method string, times, retryAfter int) Fault {
	return Fault{Method: method, Times: times, Code: http.StatusTooManyRequests,
		Description: fmt.Sprintf("Too Many Requests: retry after %d", retryAfter), RetryAfter: retryAfter}
}

// ServerError answers the next times calls of method with 500.
func ServerError(method string, times int) Fault {
	return Fault{Method: method, Times: times, Code: http.StatusInternalServerError, Description: "Internal Server Error"}
}

// BadGateway answers the next times calls of method with the HTML 502 page
// of the proxy in front of the Bot API.
func BadGateway(method string, times int) Fault {
	return Fault{Method: method, Times: times, Code: http.StatusBadGateway,
		Body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"}
}

// Blocked answers every call for chatID with 403, as when the user blocked the bot.
func Blocked(chatID int64) Fault {
	return Fault{ChatID: chatID, Code: http.StatusForbidden, Description: "Forbidden: bot was blocked by the user"}
}

// Kicked answers every call for the group chatID with 403, as when the bot was removed.
func Kicked(chatID int64) Fault {
	return Fault{ChatID: chatID, Code: http.StatusForbidden, Description: "Forbidden: bot was kicked from the group chat"}
}

// Conflict answers the next times getUpdates with 409, as when another
// process polls with the same token.
func Conflict(times int) Fault {
	return Fault{Method: "getUpdates", Times: times, Code: http.StatusConflict, Description: conflictDesc}
}

// Drop closes the connection of the next times calls of method without an answer.
func Drop(method string, times int) Fault {
	return Fault{Method: method, Times: times, Drop: true}
}

const conflictDesc = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"

// Inject adds a fault; faults are tried in the order added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Server) matchFaultLocked(method string, params map[string]string) *Fault {
	chat, _ := strconv.ParseInt(params["chat_id"], 10, 64)
	for i, f := range s.faults {
		if f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if f.ChatID != 0 && f.ChatID != chat {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f
	}
	return nil
}
