// Package nextcloud delivers calculation results to a Nextcloud account: it
// uploads a result folder over WebDAV and shares it as a public read-only link
// through the OCS share API (docs/FACTS.md#nextcloud-share-api).
//
// Uploads stream from disk and never hold a whole file in memory. Files below
// Options.ChunkThreshold (10 MiB) go in one PUT through
// github.com/studio-b12/gowebdav's WriteStreamWithLength, always with a
// Content-Length (a PUT without one can store an empty file behind php-fpm).
// Larger files use Nextcloud's chunked upload v2, written here on net/http
// because no Go WebDAV library has it: MKCOL /remote.php/dav/uploads/<user>/<id>,
// PUT each chunk (10 MiB by default, Nextcloud wants 5 MiB to 5 GiB but the last),
// MOVE .file to assemble. Its Progress is saved after every chunk by the caller, so
// an upload resumes after a restart without sending finished chunks again.
//
// Sharing reuses an existing public link of the same path, so a repeat creates
// no second share, and queues creations so that no 10 minutes hold more than 20
// of them (Nextcloud's own sliding-window limit per account); a 429 pauses it.
//
// Errors are *plugins.Error: 401 and 403 are KindAuth and never retried (every
// refused login feeds Nextcloud's brute-force protection, which locks the
// account's address out for up to 25 s per attempt), 507 and other 4xx are
// KindPermanent with a message a person can act on ("upload to cloud failed: 507
// Insufficient Storage (the Nextcloud account is full)"), 5xx, 429, timeouts,
// stalls and refused connections are KindTransient. The password appears in no
// error and no log line.
//
// The subpackage nctest is a fake Nextcloud for tests: golang.org/x/net/webdav
// plus chunked upload v2 and the OCS share API, with fault injection.
package nextcloud
