#!/bin/sh
#PBS -N hbot-1234567890
#PBS -S /bin/sh
#PBS -r n
#PBS -o hpcbot-job.out
#PBS -e hpcbot-job.err

cd "${PBS_O_WORKDIR:?}" || { echo 'hpcbot: cannot enter the calculation folder' >&2; exit 1; }
# Written by hpcbot: run the program, then record its exit status atomically.
'/opt/bin/run me' 'it'\''s.inp' '$(id)' 'a
b' </dev/null
rc=$?
printf '%s %s\n' "$rc" "$(date +%s)" >.hpcbot-exitcode.tmp && mv -f .hpcbot-exitcode.tmp .hpcbot-exitcode
exit "$rc"
