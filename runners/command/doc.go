// Package command is the "command" runner: it runs a program named in the
// configuration with arguments the administrator allowed, exactly as the
// original HPC_bot did, and nothing a user types ever reaches a shell unquoted.
//
// # Rules for administrators
//
// Each `[[clusters.runners]]` entry names a program (one command word: a name
// on the cluster's PATH or an absolute path; put arguments in default_args).
// allowed_args are regular expressions (Go RE2 syntax: no look-arounds or
// back-references) that must match a whole argument; the entry "{}" stands
// for the input file. associations are extensions with the dot (".inp"),
// matched case-insensitively, each used by at most one runner of a cluster.
// A file sent without a caption runs the program associated with its
// extension with default_args, "{}" replaced by the file as "./NAME" (a
// path, so that no name can pass for an option; names starting with "-" or
// "." are refused anyway). When
// default_args is empty it is ["{}"] if allowed_args contains "{}", and
// otherwise empty (as in the original bot): the program then runs without
// arguments and must find its input itself. When "{}" is allowed,
// default_args must mention it.
//
// A caption chooses the program and arguments: `orca_submit {} -p8`. It is
// split into words like a POSIX shell does (quotes and backslashes work) but
// nothing is expanded: $(...), backticks, ;, |, globs and ~ are plain
// characters, and newlines only separate words. The first word must be a
// configured program; every other word must match one of that program's
// allowed_args. "{}" (or the file's own name) is the input file and is only
// accepted when allowed_args contains "{}"; a "{}" inside a longer word is not
// replaced. When the program takes "{}", a caption that never mentions the
// input is refused. Two shortcuts: a caption that is only a program name
// runs it with its default_args, and a caption that starts with an option
// ("-p8 --tight") gives arguments to the program associated with the file's
// extension, with the input file put first unless the caption places "{}"
// itself, so that `-p8` on mol.inp runs `orca_submit ./mol.inp -p8`.
// When the same program has several entries, the one associated with the
// file's extension is tried first, then the others in order; the first that
// accepts every argument wins.
//
// The program is then started with every word shell-quoted
// (plugins/shellquote), so even allowed_args = [".*"] cannot inject a command.
// results adds result files to fetch: entries starting with "." are
// extensions, the others exact file names.
//
// # Differences from the original bot
//
// The original ran a caption `orca_submit -p8` or a lone `orca_submit` without
// the input file; here the first is refused (no input) and the second uses
// default_args. It accepted Python regular expressions; RE2 refuses
// look-arounds and back-references, and hpcbot says so at startup (Validate
// runs when the configuration is loaded, and every problem is reported with
// its key). It replaced a "{}" argument even where allowed_args lacked "{}";
// here that is refused. It matched associations case-sensitively.
//
// Every refusal is a *plugins.Refusal whose Detail is the offending word
// (the extension for no_program, the program for no_input, the reason for
// bad_caption), for the bot to explain in the user's language.
package command
