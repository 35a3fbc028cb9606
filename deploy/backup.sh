#!/usr/bin/env bash
# The daily backup (coach-backup.timer): `flask --app leadform db backup` into BACKUP_DIR, keep the
# KEEP newest (14: two weeks of daily runs), then copy the folder off the machine with restic when
# RESTIC_REPOSITORY is set (deploy/README.md, "Backups").
#
# Count, not age, decides what goes: if backups stopped for a while, the last good ones stay.
# The app's settings (LEADFORM_*, RESTIC_*) come from the environment: the service reads them from
# /etc/coach/leadform.env. By hand: set -a; . /etc/coach/leadform.env; set +a; deploy/backup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BACKUP_DIR:-/var/lib/coach/backups}
keep=${BACKUP_KEEP:-14}
flask=${COACH_FLASK:-.venv/bin/flask}

mkdir -p "$dir"
chmod 700 "$dir"
"$flask" --app leadform db backup "$dir/leadform-$(date -u +%Y-%m-%dT%H%M%SZ).bak"
# Names sort by time (UTC stamps): everything after the KEEP newest goes.
find "$dir" -maxdepth 1 -name 'leadform-*.bak' -printf '%f\n' | LC_ALL=C sort -r | tail -n +"$((keep + 1))" |
  while read -r old; do rm -f -- "$dir/$old"; echo "backup: removed $old"; done

if [ -n "${RESTIC_REPOSITORY:-}" ]; then
  restic backup --quiet --tag coach "$dir"
  restic forget --quiet --tag coach --keep-daily "$keep" --prune   # the same two weeks as here (erasure)
  echo "backup: copied off the machine (restic)"
fi
