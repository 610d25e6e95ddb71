// Package qc reads the output of a quantum-chemistry program (ORCA, Gaussian,
// xtb) and gives a Digest: a short structured summary of the results, for the
// program-aware runners to report when a calculation ends.
//
// # What a Digest says
//
// Program and version; how the run ended (Termination: Normal, Failed with
// the program's own error line, Unfinished when the output has no
// termination line at all, NoSummary when the output is not recognised);
// the final energy in hartree with the printed text and, when the output
// makes it clear, the method ("SCF", "RB3LYP", "MP2", "xtb total"); the
// state of a geometry optimization (converged or not, cycles); the number
// of imaginary frequencies and the lowest frequency; the wall time; the
// geometry file the program said it wrote.
//
// The rule is cclib's lesson: parse what is certain and leave the rest
// unset. A Digest never guesses a number. A field that was not printed, or
// printed in a form the parser does not know (NaN, "******", a truncated
// line), stays nil or empty. FinalEnergy is set only for a run that
// terminated normally; a run that failed or was cut short keeps its last
// energy in LastEnergy, never as final. A block of frequencies with one
// unreadable value is dropped whole.
//
// # Per program
//
// ORCA (orca.go): termination "****ORCA TERMINATED NORMALLY****", failure
// "ORCA finished by error termination in <module>", an INPUT ERROR's reason,
// or "aborting the run"; the final energy is the last "FINAL SINGLE POINT
// ENERGY", named "SCF" or "MP2" when it equals the SCF or MP2 total printed
// just before it; optimization cycles and "THE OPTIMIZATION HAS CONVERGED";
// the "VIBRATIONAL FREQUENCIES" list; "TOTAL RUN TIME". ORCA does not print
// the name of the geometry file it writes (<basename>.xyz), so
// GeometryFile stays empty.
//
// Gaussian (gaussian.go): "Normal termination of Gaussian" and "Error
// termination ..." per step of a multi-step job (the last step decides);
// the final energy is the last "SCF Done" or "EUMP2" unless the route names
// a method whose final energy is printed elsewhere (coupled cluster, MP3/4,
// composite, double hybrids, TD, ONIOM...), in which case FinalEnergy is
// left unset; optimization steps only for a route with Opt (a frequency
// job's stationary-point test is not an optimization); "Frequencies --";
// the sum of the steps' "Elapsed time".
//
// xtb (xtb.go): xtb prints "normal termination of xtb" or "abnormal
// termination of xtb" on standard error; give Parse stdout followed by
// stderr (or a 2>&1 log). Standard output alone still ends a finished run
// with "* finished run on" and a failed one with an "[ERROR] Program
// stopped due to fatal error" block, whose "-1-" line (the root cause) is
// the TerminationLine. The final energy is the "TOTAL ENERGY" summary box;
// "optimized geometry written to: xtbopt.xyz" (or "last geometry written
// to: xtblast.xyz") gives GeometryFile.
//
// # Hostile output
//
// Parse streams the output through a bufio.Reader with a bounded line
// (MaxLineLen): longer lines are skipped without being buffered, so a 1 GB
// output or a 10 MB line costs a fixed amount of memory. Text fields are
// made valid UTF-8, without control characters, at most MaxTextLen bytes;
// GeometryFile is only ever a plain file name (no directory, no "..").
// Binary garbage, an empty file or a file of another program has no summary.
//
// Nothing here is shown to users as is: rendering a Digest into a message
// is the bot's job, through its message catalogs.
package qc
