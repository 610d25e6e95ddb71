package bot

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"hpcbot/scheduler"
	"hpcbot/store"
)

// cmdRedeliver (admin): /redeliver N delivers the held results of calculation
// N again, at once (after the cloud's password was fixed, for example).
func (b *Bot) cmdRedeliver(r *request) error {
	id, err := strconv.ParseUint(strings.TrimPrefix(r.payload(), "#"), 10, 64)
	if err != nil || id == 0 {
		r.reply("redeliver.usage", nil)
		return nil
	}
	err = b.calcs.Redeliver(r.ctx, id)
	switch {
	case err == nil:
		r.log.Info("redelivery requested", "calc", id)
		r.reply("redeliver.ok", P{"id": id})
		b.toLogChat(slog.LevelInfo, r.logKey("redeliver"), "log.redeliver", P{"who": r.who(), "id": id})
	case errors.Is(err, store.ErrNotFound):
		r.reply("redeliver.not_found", P{"id": id})
	case errors.Is(err, scheduler.ErrNotHeld):
		c, cerr := b.st.Calc(id)
		if cerr != nil {
			return fmt.Errorf("read calc %d: %w", id, cerr)
		}
		r.reply("redeliver.not_held", P{"id": id, "state": stateName(r.lang, c.State)})
	default:
		return fmt.Errorf("redeliver %d: %w", id, err)
	}
	return nil
}
