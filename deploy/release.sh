#!/usr/bin/env bash
# On the server, from its checkout: make releases/ID live (deploy/deploy.sh runs it over ssh).
#
#   deploy/release.sh ID FINGERPRINT
#
# FINGERPRINT is the hash of the app's code and settings (leadform/, site_config/, pyproject.toml,
# deploy/gunicorn.conf.py). When it differs from the one last started (.deployed-app), the app's
# dependencies are installed (make setup: only when pyproject.toml changed), the database migrated,
# the checklist PDFs rebuilt, and the app restarted: migrations first, so the restarted app starts on
# the new schema. A release of pages only does none of that. Then `site` switches to the release.
#
# Reads the server's settings file (LEADFORM_ENV_FILE, default /etc/coach/leadform.env), which may
# also set COACH_RESTART (how to restart the app; default: sudo systemctl restart coach-leadform).
set -euo pipefail
cd "$(dirname "$0")/.."
id=${1:?release id} fingerprint=${2:?app fingerprint}

env_file=${LEADFORM_ENV_FILE:-/etc/coach/leadform.env}
[ -r "$env_file" ] || { echo "release: cannot read the settings file $env_file" >&2; exit 1; }
set -a
# shellcheck source=/dev/null
. "$(realpath "$env_file")"
set +a
python=${COACH_PYTHON:-.venv/bin/python}
restart=${COACH_RESTART:-sudo systemctl restart coach-leadform.service}

[ -d "releases/$id" ] || { echo "release: releases/$id is missing" >&2; exit 1; }
app_changed=0
[ "$(cat .deployed-app 2>/dev/null || true)" = "$fingerprint" ] || app_changed=1

if [ "$app_changed" = 1 ]; then
  [ -n "${COACH_PYTHON:-}" ] || make --no-print-directory setup
  echo "release: app changed: migrating"
  "$python" -m flask --app leadform db upgrade
  "$python" -m leadform.pdf "${LEADFORM_PDF_DIR:-${LEADFORM_INSTANCE_PATH:-instance}/pdfs}" >/dev/null
  echo "release: restarting the app"
  sh -c "$restart"
  echo "$fingerprint" > .deployed-app
else
  echo "release: app unchanged: no restart"
fi
"$python" -m site_config.publish activate "releases/$id"
echo "release: $id is live"
