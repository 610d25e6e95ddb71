// Package shellquote quotes words for a POSIX shell and splits a caption into
// words the way such a shell would, without any expansion.
//
// Quote and Join build command lines for sh, bash and dash: every word is
// passed to the program exactly, byte for byte, whatever it contains (except
// NUL, which no argv can carry). Words made only of [A-Za-z0-9_@%+=:,./-] stay
// bare; everything else is put in single quotes, with a single quote written
// as the four characters quote, backslash, quote, quote:
//
//	Quote("it's") == `'it'\''s'`
//	Quote("")     == `''`
//
// Join also quotes a first word that the shell would not take as a
// plain command name (a reserved word such as "if", an assignment such as
// "a=b", a word starting with "-" that `sh -c` would take as an option). A program name starting with "%" cannot be run by bash at all
// (a job spec, even quoted); runners refuse such names.
//
// Split is the reverse for user input (a Telegram caption): words are
// separated by spaces, tabs, carriage returns and newlines; single quotes keep everything
// literally; double quotes keep everything literally except the escapes \\,
// \", \$ and \` (and a backslash before anything else stays a backslash);
// outside quotes a backslash makes the next character literal and a
// backslash-newline is removed. Nothing is expanded or interpreted: $,
// backticks, globs (* ? [), ~, #, and the operators ; | & < > ( ) are
// ordinary characters of a word, as in Python's shlex.split, which the
// original bot used. Split refuses, with an error wrapping ErrSyntax:
// unbalanced quotes, a trailing backslash, invalid UTF-8, and control or
// invisible format characters (NUL, escape, DEL, C1 controls, zero-width and
// bidi marks) anywhere except the separators themselves. A newline inside
// quotes is refused too: a caption's newlines only separate words.
package shellquote
