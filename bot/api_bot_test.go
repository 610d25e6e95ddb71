package bot

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	tele "gopkg.in/telebot.v3"

	"hpcbot/bot/tgtest"
)

func TestClientBotMethods(t *testing.T) {
	srv := tgtest.New(t)
	c := NewClient(srv.URL, srv.Token, nil)
	ctx := context.Background()
	noToken := func(err error) {
		t.Helper()
		if err != nil && strings.Contains(err.Error(), srv.Token) {
			t.Fatalf("the token is in an error: %v", err)
		}
	}

	me, err := c.GetMe(ctx)
	if err != nil || me.Username != srv.Bot.Username || !me.IsBot {
		t.Fatalf("GetMe: %+v %v", me, err)
	}
	_, err = NewClient(srv.URL, "1:wrong", nil).GetMe(ctx)
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("GetMe with a wrong token: %v", err)
	}

	doc := srv.AddFile("in.sh", []byte("echo hi\n"))
	f, err := c.GetFile(ctx, doc.FileID)
	if err != nil || f.FilePath == "" || f.FileSize != 8 {
		t.Fatalf("GetFile: %+v %v", f, err)
	}
	body, err := c.DownloadFile(ctx, f.FilePath)
	if err != nil {
		t.Fatalf("DownloadFile: %v", err)
	}
	data, _ := io.ReadAll(body)
	body.Close()
	if string(data) != "echo hi\n" {
		t.Fatalf("downloaded %q", data)
	}
	_, err = c.GetFile(ctx, "nope")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != 400 {
		t.Fatalf("GetFile of an unknown file: %v", err)
	}
	_, err = c.DownloadFile(ctx, "documents/missing.sh")
	if !errors.As(err, &ae) || ae.Code != 404 {
		t.Fatalf("DownloadFile of a missing file: %v", err)
	}
	noToken(err)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.DownloadFile(cancelled, f.FilePath)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("DownloadFile with a cancelled context: %v", err)
	}
	noToken(err)

	cmds := []tele.Command{{Text: "help", Description: "Справка"}}
	scope := tele.CommandScope{Type: tele.CommandScopeChat, ChatID: 42}
	if err := c.SetMyCommands(ctx, cmds, scope, "ru"); err != nil {
		t.Fatalf("SetMyCommands: %v", err)
	}
	got, ok := srv.Commands(tgtest.CommandScope{Type: "chat", ChatID: 42}, "ru")
	if !ok || len(got) != 1 || got[0].Command != "help" || got[0].Description != "Справка" {
		t.Fatalf("commands set: %+v %v", got, ok)
	}
	if err := c.SetMyCommands(ctx, []tele.Command{{Text: "Bad-Name", Description: "x"}}, tele.CommandScope{Type: tele.CommandScopeDefault}, ""); err == nil {
		t.Fatal("an invalid command was accepted")
	}

	if err := c.LeaveChat(ctx, -900); err != nil || !srv.Left(-900) {
		t.Fatalf("LeaveChat: %v", err)
	}

	// The server is gone: a network error, without the token.
	srv.Close()
	_, err = c.DownloadFile(ctx, f.FilePath)
	if err == nil || !isNetError(err) {
		t.Fatalf("DownloadFile from a closed server: %v", err)
	}
	noToken(err)
	_, err = c.GetFile(ctx, doc.FileID)
	if err == nil {
		t.Fatal("GetFile from a closed server")
	}
	noToken(err)
}
