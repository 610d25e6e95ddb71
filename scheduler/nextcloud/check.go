package nextcloud

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

const opCheck = "cloud storage check failed"

// Check proves that the account can deliver results: it creates BasePath if
// it is missing, writes a small file in it and deletes the file again. It
// returns the path of the file below the account's root, and the first
// failure (classified like an upload's: KindAuth for a refused login).
func (c *Client) Check(ctx context.Context) (string, error) {
	if err := c.mkdirAll(ctx, c.remote("")); err != nil {
		return "", err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := c.remote(".hpcbot-check-" + hex.EncodeToString(rnd[:]))
	body := []byte("written by hpcbot check; safe to delete\n")
	resp, err := c.do(ctx, opCheck, request{method: http.MethodPut, url: c.filesURL(name), body: bytes.NewReader(body), size: int64(len(body))})
	if err != nil {
		return name, err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return name, c.statusError(opCheck, http.MethodPut, name, resp)
	}
	drain(resp)
	resp, err = c.do(ctx, opCheck, request{method: http.MethodDelete, url: c.filesURL(name)})
	if err != nil {
		return name, err
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return name, c.statusError(opCheck, http.MethodDelete, name, resp)
	}
	drain(resp)
	return name, nil
}
