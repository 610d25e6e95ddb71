// Package scheduler drives every calculation from an accepted input file to a user
// holding its results: the lifecycle state machine's side effects, one worker per
// cluster, batched polling, retries with backoff, recovery after a restart, and
// delivery of results (Nextcloud, or Telegram files). It talks to clusters only
// through plugins.Scheduler and to users only through Notifier.
package scheduler
