#!/bin/sh
#PBS -N hpcbot-43
#PBS -S /bin/sh
#PBS -r n
#PBS -o /home/bob/hpcbot/1732640000_43_benzene/hpcbot-job.out
#PBS -e /home/bob/hpcbot/1732640000_43_benzene/hpcbot-job.err
#PBS -v HPCBOT_COMMENT=hpcbot_user_8_org_ipc
#PBS -A chem01
#PBS -l mem=4gb
#PBS -l nodes=1:ppn=4
#PBS -l walltime=02:00:00

cd /home/bob/hpcbot/1732640000_43_benzene || { echo 'hpcbot: cannot enter the calculation folder' >&2; exit 1; }
# Written by hpcbot: run the program, then record its exit status atomically.
orca benzene.inp </dev/null
rc=$?
printf '%s %s\n' "$rc" "$(date +%s)" >.hpcbot-exitcode.tmp && mv -f .hpcbot-exitcode.tmp .hpcbot-exitcode
exit "$rc"
