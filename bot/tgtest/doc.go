// Package tgtest is a fake Telegram Bot API server for tests (net/http/httptest).
//
// It speaks the wire protocol of https://core.telegram.org/bots/api ("Making
// requests"): POST or GET https://<server>/bot<token>/<method> with parameters as
// a query string, application/x-www-form-urlencoded, application/json (values
// may be JSON strings, as telebot sends them, or JSON numbers and objects) or
// multipart/form-data (uploads); every answer is a JSON object
// {"ok":true,"result":...} or {"ok":false,"error_code":N,"description":"...",
// "parameters":{...}}. Files are downloaded from
// https://<server>/file/bot<token>/<file_path> ("getFile").
//
// What it implements: getMe, getUpdates (offset confirmation, long-poll
// timeout, limit, and 409 for a concurrent poller), sendMessage (with the
// length and HTML checks Telegram does), sendDocument and sendPhoto (multipart
// uploads recorded with file name and bytes, or a file_id), forwardMessage,
// copyMessage, editMessageText and editMessageReplyMarkup (400 "message is
// not modified" for an edit that changes nothing, "message to edit not found"
// after a delete), deleteMessage, sendChatAction, getFile and the download
// path, leaveChat, getChat, getChatMember, setMyCommands, getMyCommands,
// deleteMyCommands, answerCallbackQuery (each query answered at most once).
// Messages keep their inline keyboard (reply_markup). Unknown methods answer
// 404 "Not Found" as Telegram does; a wrong token answers 401 "Unauthorized".
//
// Tests push updates built from the wire types here (Message, Document,
// ChatMemberUpdated) with helpers that fill in message_id, date, from and chat
// like Telegram, and callback queries (PushCallback: a user pressed a
// button; Answer, Unanswered); a user can delete a message (UserDelete).
// Every call is recorded (method, parameters, uploaded files, time) for
// assertions; faults are injected per method and chat: 429 with retry_after
// (edits included), 5xx, 403 for a chat that blocked the bot, or a dropped
// connection.
//
// Point telebot at it with tele.Settings{URL: srv.URL, Token: srv.Token}:
// telebot builds both the method URLs (URL+"/bot"+token+"/"+method) and the
// file URLs (URL+"/file/bot"+token+"/"+file_path) from Settings.URL.
package tgtest
