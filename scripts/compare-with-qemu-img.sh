#!/usr/bin/env bash
# Compare guestlens's reading of IMAGE with qemu-img's (extent map, random ranges, --whole for every byte).
# usage: bash scripts/compare-with-qemu-img.sh IMAGE [--format FORMAT] [--ranges N] [--seed N] [--whole]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../node_modules/.bin/tsx" "$here/compare-with-qemu-img.ts" "$@"
