#!/usr/bin/env bash
# README command 1: install everything, then run the main job, `guestlens df`,
# on the images given, or on a sample guest image built here when none is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ $# -eq 0 ]; then
  sample=.scratch/sample/guest.qcow2
  [ -f "$sample" ] || bash scripts/make-sample-image.sh "$sample" >/dev/null
  set -- "$sample"
fi
echo "+ guestlens df $*" >&2
exec cli/bin/guestlens df "$@"
