// Package bot is hpcbot's Telegram front end: it receives what users send,
// decides who may do what, hands input files to the scheduler, and sends every
// message, to users and to the admins' log chat, under Telegram's limits.
//
// # Updates in
//
// A Poller (poller.go) long-polls getUpdates through Client (api.go: every
// Bot API call goes through it) and stores each answer in the store's inbox
// before the next getUpdates confirms it to Telegram, so an update is handled
// even when the bot dies right after receiving it, and one redelivered by
// Telegram is not handed over again. A crash in the middle of a handler runs it
// again after the restart, so handlers are idempotent on the update id. The
// Poller runs the handlers one at a time per chat, in order, and concurrently
// across chats. gopkg.in/telebot.v3 is used only to
// route an update to its handler (Bot.routes), with the Poller in place of
// telebot's own, which confirms updates as soon as it receives them, and for
// its types; it makes no call itself (router.go: its transport refuses them).
// Button presses (callback queries) go to one dispatcher (callback.go).
//
// # Handlers and authorization
//
// Every handler is wrapped (Bot.wrap, auth.go): the request carries the
// sender's registered user, if any, and language, and a panic or an error
// becomes a generic answer plus a line in the log chat. Users register with
// /access in an allowed group (one an admin added the bot to, allowed with
// /groups add, or listed in bot.groups; handlers_group.go), then work in a
// private chat; commands of registered users pass needUser, admin commands pass
// Bot.admin. Admins are the numeric ids in bot.admins and nobody else
// (bot.admin_name is only the contact users are shown). Updates from a group
// the bot refused, from bots and from anonymous senders change nothing. A
// stranger can read /help and is told how to ask for access, nothing more.
// onDocument (intake.go) checks an
// input file's name, size, runner (Calculations.Route), quota and submission
// rate, downloads it and creates its calculation once per update.
//
// # Messages out
//
// Sender (sender.go) is the one way out: a FIFO and a worker per chat, paced
// by token buckets per chat, per group and overall, waiting out retry_after on
// a 429, following a group that became a supergroup, and splitting texts over
// Telegram's length limit. Replies to an update are sent directly; messages
// that must survive a restart (notifications, log chat lines) are put in the
// store's outbox under a key that cannot repeat, and Sender.DrainOutbox sends
// them and marks them done once Telegram has accepted them.
//
// Every text a person reads comes from the catalogs locales/en.json and
// locales/ru.json (catalog.go), rendered in Telegram's HTML mode in the
// reader's language; both catalogs hold the same keys and placeholders.
//
// # The log chat
//
// bot.log_chat_id names a group where admins see what happens: the bot's own
// events (registrations, refused commands, submissions with a copy of the
// input, calculation outcomes), rendered from the catalogs, and, through
// LogHandler (loghandler.go), the warnings and errors other components log
// (a plugin that crashed, a cluster refusing the login), at most ten a minute
// and without repeats. Every secret of the configuration is scrubbed from all
// of it.
//
// # The scheduler
//
// The bot reaches the scheduler only through the Calculations interface
// (Route, Accept, Clusters, Wake, Cancel, ...), which
// *scheduler.Scheduler implements; the scheduler reaches users only through
// Notify (notifier.go), which implements scheduler.Notifier by queueing the
// message in the outbox, keyed so that a repeat after a crash is dropped.
//
// See docs/ARCHITECTURE.md for how a calculation travels through the bot, the
// scheduler and the plugins, and docs/FACTS.md for the Telegram limits the
// code follows. The subpackage tgtest is a fake Bot API server for tests.
package bot
