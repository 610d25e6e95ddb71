// Package bot is hpcbot's Telegram front end (gopkg.in/telebot.v3): who may do what,
// parsing commands, documents and captions, the English and Russian message catalogs,
// and the log chat. It implements scheduler.Notifier.
package bot
