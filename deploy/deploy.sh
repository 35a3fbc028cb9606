#!/usr/bin/env bash
# `make deploy`, and the last step of the CI workflows: publish this checkout to the server.
#
#   1. build the site strictly into releases/<id> (skipped with DEPLOY_BUILD=0 when CI just built it);
#   2. rsync that release to the server's releases/ (unchanged files hard-linked to the live release)
#      and the sources (leadform/, site_config/, deploy/, docs/, pyproject.toml, Makefile, mkdocs.yml);
#   3. over ssh, deploy/release.sh on the server: when the app's code changed, install, migrate and
#      restart the app; then switch the server's `site` to the new release in one rename.
#
# Settings (environment): DEPLOY_HOST (user@server, required), DEPLOY_DIR (the server's checkout,
# /srv/coach), DEPLOY_SSH (the ssh command with its options, `ssh`), DEPLOY_ENV_FILE (the server's
# settings file when not /etc/coach/leadform.env). A failed step stops here; what is served stays as it was.
set -euo pipefail
cd "$(dirname "$0")/.."

host=${DEPLOY_HOST:?set DEPLOY_HOST=user@server (deploy/README.md, "Deploy on push")}
dir=${DEPLOY_DIR:-/srv/coach}
ssh_cmd=${DEPLOY_SSH:-ssh}
python=${PYTHON:-.venv/bin/python}
started=$(date +%s)

if [ "${DEPLOY_BUILD:-1}" = 1 ]; then
  "$python" -m site_config.publish build
fi
release=$(readlink site 2>/dev/null) || { echo "deploy: site is not a release (run: make build)" >&2; exit 1; }
id=$(basename "$release")
[ -d "releases/$id" ] || { echo "deploy: releases/$id is missing" >&2; exit 1; }

# What decides a restart: the app's code and settings, never the site's pages.
fingerprint=$(find leadform site_config pyproject.toml deploy/gunicorn.conf.py -type f \
  ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)

echo "deploy: release $id to $host:$dir"
# One ssh connection for the four steps below (each new one costs a handshake: 1-1.5 s on a busy machine).
control=$(mktemp -d)
ssh_cmd="$ssh_cmd -o ControlMaster=auto -o ControlPath=$control/ssh -o ControlPersist=120"
trap '$ssh_cmd -O exit "$host" 2>/dev/null; rm -rf "$control"' EXIT
$ssh_cmd "$host" "mkdir -p '$dir/releases'"
# Files with the same content as in the live release are hard-linked to it, not sent: every build
# writes all files anew, so content (--checksum), not times, decides (-a without -t, -o, -g).
rsync -rlpD --checksum --delete -e "$ssh_cmd" --link-dest="../../site/" "releases/$id/" "$host:$dir/releases/$id/"
rsync -a --delete -e "$ssh_cmd" --exclude=__pycache__ --exclude='*.pyc' \
  leadform site_config deploy docs pyproject.toml Makefile mkdocs.yml "$host:$dir/"

remote_env=""
[ -n "${DEPLOY_ENV_FILE:-}" ] && remote_env="LEADFORM_ENV_FILE='$DEPLOY_ENV_FILE' "
$ssh_cmd "$host" "cd '$dir' && ${remote_env}deploy/release.sh '$id' '$fingerprint'"
echo "deploy: release $id live after $(( $(date +%s) - started )) s"
