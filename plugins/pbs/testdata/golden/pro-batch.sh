#!/bin/sh
#PBS -N hpcbot-42
#PBS -S /bin/sh
#PBS -r n
#PBS -o /scratch/alice/hpcbot/1732640000_42_h2o/hpcbot-job.out
#PBS -e /scratch/alice/hpcbot/1732640000_42_h2o/hpcbot-job.err
#PBS -v HPCBOT_COMMENT=hpcbot_user_7_org_ipc
#PBS -P chem
#PBS -q workq
#PBS -l select=1:ncpus=4:mem=8gb
#PBS -l walltime=01:00:00

cd /scratch/alice/hpcbot/1732640000_42_h2o || { echo 'hpcbot: cannot enter the calculation folder' >&2; exit 1; }
# Written by hpcbot: run the program, then record its exit status atomically.
g16 h2o.gjf </dev/null
rc=$?
printf '%s %s\n' "$rc" "$(date +%s)" >.hpcbot-exitcode.tmp && mv -f .hpcbot-exitcode.tmp .hpcbot-exitcode
exit "$rc"
