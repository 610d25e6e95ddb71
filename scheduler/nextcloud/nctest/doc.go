// Package nctest is a small, honest fake Nextcloud for tests: one account whose
// files are served by golang.org/x/net/webdav (a real WebDAV implementation) from
// a temporary folder behind Basic auth at /remote.php/dav/files/<user>/, plus:
//
//   - chunked upload v2 at /remote.php/dav/uploads/<user>/<id>/ (MKCOL, PUT chunks,
//     PROPFIND, MOVE .file, DELETE), with Nextcloud's rules: Destination on every
//     request, chunk names 1 to 10000 assembled in name order, chunks of at least
//     5 MiB but the last, OC-Total-Length checked against the quota and the sum
//     (docs/FACTS.md#nextcloud-chunked-upload);
//   - the OCS share API for public links at /ocs/v{1,2}.php/apps/files_sharing/api/v1/shares,
//     answering JSON or XML per Accept and format, v1 and v2 status conventions,
//     and Nextcloud's limit of 20 share creations per 10 minutes (429 beyond)
//     (docs/FACTS.md#nextcloud-share-api, docs/FACTS.md#nextcloud-share-rate-limit);
//   - the public share page /s/<token>[?path=/sub] and read-only public WebDAV at
//     /public.php/dav/files/<token>/;
//   - a quota (507 Insufficient Storage), upload expiry on demand, and fault
//     injection: fail or hang matching requests, count requests, record the
//     largest request body.
//
// Uploads go through part files and are refused without a Content-Length, so a
// client that truncates a body or streams without a length is caught.
package nctest
