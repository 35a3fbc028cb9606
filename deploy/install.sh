#!/usr/bin/env bash
# A server from nothing: Debian 12, as root, run from the repository copied to its final folder.
#
#   COACH_DOMAIN=www.mijn-coaching.be deploy/install.sh
#
# Installs the packages, the `coach` user, a PostgreSQL database reached over its Unix socket (no
# password anywhere), the settings file /etc/coach/leadform.env (once, with a fresh secret key), the
# app's virtualenv, the first release of the site, the systemd units (app, purge and backup timers)
# and Caddy, which gets the HTTPS certificate by itself at its first start. Safe to run again: it never
# overwrites the settings file. The checkout folder is wherever this script lies (/srv/coach by
# default in the docs); every installed path follows it.
#
# Optional: COACH_BARE_DOMAIN (default: COACH_DOMAIN without www.), COACH_MAIL_FROM, and the SMTP
# settings COACH_SMTP_HOST, COACH_SMTP_PORT (587), COACH_SMTP_USER, COACH_SMTP_PASSWORD. Without SMTP
# settings the app refuses to start and says which LEADFORM_SMTP_* to add to the settings file.
set -euo pipefail
coach_dir=$(cd "$(dirname "$0")/.." && pwd)
domain=${COACH_DOMAIN:?usage: COACH_DOMAIN=www.mijn-coaching.be deploy/install.sh}
bare=${COACH_BARE_DOMAIN:-${domain#www.}}
env_file=/etc/coach/leadform.env
[ "$(id -u)" = 0 ] || { echo "install: run as root" >&2; exit 1; }

echo "install: packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3-venv make git rsync sudo caddy postgresql postgresql-client redis-server restic >/dev/null

echo "install: user coach owns $coach_dir"
id -u coach >/dev/null 2>&1 || adduser --system --group --home /home/coach --shell /bin/bash coach
chown -R coach:coach "$coach_dir"
install -d -m 700 -o coach -g coach /home/coach/.ssh   # the deploy key goes in authorized_keys
# The deploy restarts the app when its code changed (deploy/release.sh), and nothing else as root.
echo "coach ALL=(root) NOPASSWD: /usr/bin/systemctl restart coach-leadform.service" > /etc/sudoers.d/coach-deploy
chmod 440 /etc/sudoers.d/coach-deploy

echo "install: PostgreSQL database coach"
systemctl enable --now postgresql redis-server
runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname = 'coach'" | grep -q 1 ||
  runuser -u postgres -- createuser coach
runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname = 'coach'" | grep -q 1 ||
  runuser -u postgres -- createdb --owner coach coach

install -d -m 750 -o root -g coach /etc/coach
if [ ! -e "$env_file" ]; then
  echo "install: settings file $env_file (a new secret key)"
  (
    umask 027
    {
      echo "# The app's settings: read by coach-leadform.service and the timers (EnvironmentFile=), by"
      echo "# \`make leads\` & co. on the server and by the deploy. KEY=value, a value with spaces in '...'."
      echo "LEADFORM_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
      echo "LEADFORM_PUBLIC_URL=https://$domain/"
      echo "LEADFORM_PUBLIC_HTTPS=true"
      echo "LEADFORM_DATABASE_URL=postgresql+psycopg://coach@/coach?host=/var/run/postgresql"
      echo "LEADFORM_MIGRATE_ON_START=false"
      echo "LEADFORM_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0"
      echo "LEADFORM_PROXY_FIX_X_FOR=1"
      echo "GUNICORN_WORKERS=2"
      if [ -n "${COACH_MAIL_FROM:-}" ]; then echo "LEADFORM_MAIL_FROM=$COACH_MAIL_FROM"; fi
      if [ -n "${COACH_SMTP_HOST:-}" ]; then
        echo "LEADFORM_MAIL_BACKEND=smtp"
        echo "LEADFORM_SMTP_HOST=$COACH_SMTP_HOST"
        echo "LEADFORM_SMTP_PORT=${COACH_SMTP_PORT:-587}"
        echo "LEADFORM_SMTP_SECURITY=starttls"
        if [ -n "${COACH_SMTP_USER:-}" ]; then echo "LEADFORM_SMTP_USER=$COACH_SMTP_USER"; fi
        if [ -n "${COACH_SMTP_PASSWORD:-}" ]; then echo "LEADFORM_SMTP_PASSWORD='$COACH_SMTP_PASSWORD'"; fi
      else
        echo "# LEADFORM_MAIL_BACKEND=smtp, LEADFORM_SMTP_HOST=..., _PORT, _SECURITY, _USER, _PASSWORD"
      fi
      echo "# Off-site backups (deploy/README.md, \"Backups\"):"
      echo "# RESTIC_REPOSITORY=sftp:backup@second-host:/srv/restic/coach"
      echo "# RESTIC_PASSWORD_FILE=/etc/coach/restic-password"
    } > "$env_file"
  )
  chgrp coach "$env_file"
fi

echo "install: virtualenv, first release, database schema"
install -d -m 700 -o coach -g coach "$coach_dir/instance"
runuser -u coach -- make -C "$coach_dir" --no-print-directory setup
[ -L "$coach_dir/site" ] || runuser -u coach -- make -C "$coach_dir" --no-print-directory build
runuser -u coach -- sh -c "set -a && . $env_file && set +a && cd '$coach_dir' && .venv/bin/flask --app leadform db upgrade"

echo "install: systemd units"
for unit in "$coach_dir"/deploy/systemd/*; do
  sed "s#/srv/coach#$coach_dir#g" "$unit" > "/etc/systemd/system/$(basename "$unit")"
done

echo "install: Caddy for $domain (and $bare)"
printf 'COACH_DOMAIN=%s\nCOACH_BARE_DOMAIN=%s\n' "$domain" "$bare" > /etc/caddy/coach.env
install -d /etc/systemd/system/caddy.service.d
printf '[Service]\nEnvironmentFile=/etc/caddy/coach.env\n' > /etc/systemd/system/caddy.service.d/coach.conf
printf '# deploy/install.sh: the coach site\nimport %s/deploy/Caddyfile\n' "$coach_dir" > /etc/caddy/Caddyfile

systemctl daemon-reload
systemctl enable --now coach-purge.timer coach-backup.timer
systemctl enable coach-leadform.service caddy.service
systemctl restart coach-leadform.service caddy.service
echo "install: done. https://$domain/ (journalctl -u coach-leadform -u caddy)"
grep -q '^LEADFORM_MAIL_BACKEND=smtp' "$env_file" ||
  echo "install: add the SMTP settings to $env_file, then: systemctl restart coach-leadform"
