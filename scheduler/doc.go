// Package scheduler drives every calculation from an accepted input file to a user
// holding its results: the lifecycle state machine's side effects, one worker per
// cluster, batched polling, retries with backoff, recovery after a restart, and
// delivery of results (Nextcloud, or Telegram files). It talks to clusters only
// through plugins.Scheduler and to users only through Notifier.
//
// # Use
//
// main builds it once and runs it until SIGTERM:
//
//	s, err := scheduler.New(cfg.Scheduler(), st, schedulers, runners, bot, log)
//	go s.Run(ctx) // returns within ~5 s of ctx ending
//
// The bot, for a document:
//
//	r, err := s.Route(ctx, fileName, caption)  // *plugins.Refusal: tell the user why
//	c, err := s.Accept(ctx, scheduler.AcceptRequest{UserID: ..., UpdateID: updateID, At: sent,
//		FileName: fileName, Caption: caption, Route: r, Window: window, Limit: limit,
//		Write: func(dir, name string) error { /* download into dir/name */ }})
//
// Accept chooses the folder, has the input written into it, creates the
// record (once per update: the same update accepted again gives the same
// calculation) and wakes the cluster's worker. The card's Run again button:
//
//	c, err := s.RunAgain(ctx, scheduler.RunAgainRequest{CalcID: id, By: telegramID, Press: press, Window: window})
//
// (ErrInputGone: the input is no longer kept); and s.Cancel(ctx, id) for /cancel (ErrFinished: nothing left to stop), s.Clusters()
// for /help. Everything the user hears comes back through Notifier.Notify, keyed so
// that a repeat after a crash can be dropped.
//
// # The way of a calculation
//
// Each cluster has one worker goroutine. Wake makes it stage (received → staged) and
// submit (staged → submitted, job name hpcbot-<id>) at once, then EventAccepted.
// Every fetch_time it asks its plugin about all its active jobs in one Poll and
// records pending, running and the end (succeeded, failed, cancelled, timed_out; a
// job whose end cannot be learnt is failed with Code outcome_unknown, never
// succeeded). A pool of delivery workers then fetches the results into LocalDir
// (→ retrieved), uploads them to Nextcloud and shares them, or picks the files for
// the bot, zipping several into one (→ delivered), and sends EventFinished
// (→ notified). Failed jobs deliver their outputs too.
//
// # Failures
//
// An infrastructure failure (plugins.IsTransient: SSH down, WebDAV 5xx, disk full)
// never fails a calculation: the step is retried with exponential backoff and
// jitter (15 s doubling to 10 min), the user is told once (EventWaiting) and again
// when it goes on (EventResumed); only past give_up_after does it end in error
// (CodeGaveUp). A permanent failure (refused login, sbatch refusing the script,
// a full Nextcloud account) ends in error at once, with a Code and a Reason an
// operator can act on; EventError reaches the user and the log chat. A
// calculation whose cluster is unreachable at intake fails over to the next
// cluster with a matching runner, unless failover = false.
//
// # Crash safety
//
// Every transition is committed before the next side effect starts, and each
// step is safe to redo: Stage overwrites, Submit is idempotent (a repeat returns the
// first job), Fetch overwrites, uploads skip what is there and resume chunked
// uploads from the progress stored after every chunk, Share reuses the link, Notify
// is idempotent by key. Run resumes every calculation by redoing the step of its
// state. The scheduler's own bookkeeping lives in Calculation.Progress (a typed
// record of the store), written in the transaction of the step it records.
package scheduler
