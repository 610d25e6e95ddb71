// Package sshc is the SSH/SFTP client the scheduler plugins share: a
// cluster.Transport over golang.org/x/crypto/ssh and github.com/pkg/sftp that is
// polite to HPC centres by construction.
//
// HPC centres ban source addresses that open many connections or fail
// authentication repeatedly (fail2ban, connection-rate firewalls), and OpenSSH
// 9.8+ penalises a source after a few failed logins (PerSourcePenalties), which
// would lock out every user of a shared bot. So a Client:
//
//   - verifies the host key against a known_hosts file or a pinned key and never
//     skips the check; an unknown or changed key is refused at once, with the
//     presented key's SHA256 fingerprint and the fix in the error (kind auth),
//     and the client never dials that host again;
//   - offers exactly one credential per handshake (the private key, else the
//     password) and treats a refusal as permanent: a second attempt is allowed
//     after the usual backoff, and after Options.AuthFailLimit (2) refusals within
//     Options.AuthFailWindow (30 min) the client refuses every call until it is
//     recreated (the admin fixes the credentials and restarts);
//   - keeps ONE connection, dialled lazily and reused by every command and
//     transfer, with one SFTP session on it; at most Options.MaxChannels (8)
//     channels are open at once (sshd's MaxSessions defaults to 10), the SFTP
//     session included; a server refusing a channel (MaxSessions reached:
//     "administratively prohibited" from older OpenSSH, "open failed" from 9.x)
//     makes the caller wait and retry, it never drops the connection;
//   - sends keepalive@openssh.com every Options.KeepaliveInterval (15 s) and
//     closes the connection when one reply has not come within the next interval,
//     so a dead link is noticed within two intervals (30 s, inside the 45 s that
//     OpenSSH's ServerAliveInterval 15 / ServerAliveCountMax 3 allows); callers
//     then fail fast with a transient error and the next call redials;
//   - redials after failures with exponential backoff (15 s doubling to 10 min,
//     ±20 % jitter), and never starts more than Options.HandshakeLimit (5)
//     handshakes in any Options.HandshakeWindow (60 s). While it backs off, calls
//     fail at once with a transient error that says when the next attempt is.
//
// Every method honours its context: a command still running when the context
// ends is signalled (KILL) and its session closed; a transfer stops at the next
// packet. Errors carry a plugins.Kind: transient for connection trouble and
// timeouts, auth for refused credentials and host keys, not found for a missing
// remote path, permanent for everything retrying cannot fix (permission denied,
// output too large, a local file missing). Secrets never appear in errors or logs.
//
// Remote paths are used as given: absolute, or relative to the login folder. A
// leading "~/" is expanded with the login folder, asked once per connection
// through SFTP. Commands given to Run are NOT expanded or quoted here: they reach
// the user's login shell verbatim, see Run.
package sshc
