#!/usr/bin/env bash
# First-frame time of the pages of an older commit (default 4c9f11e: the plain ES-module
# pages) against this tree's, alternated: `benchmarks/first_frame_side_by_side.sh [commit]`.
# The old tree is a plain copy (git archive) in a temporary folder with its own npm ci; both
# run tests/e2e/test_browser_loop.py -k first_frame with this tree's .venv.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
commit="${1:-4c9f11e}"
old="$(mktemp -d)"
trap 'rm -rf "$old"' EXIT
git -C "$here" archive "$commit" | tar -x -C "$old"
(cd "$old/web" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
if [ -f "$old/web/vite.config.ts" ]; then (cd "$old/web" && npm run build --silent >/dev/null); fi
for round in 1 2; do
  for side in old new; do
    dir="$here"; [ "$side" = old ] && dir="$old"
    log="$(cd "$dir" && PYTHONPATH="$dir" "$here/.venv/bin/pytest" tests/e2e/test_browser_loop.py \
      -q -k first_frame -p no:cacheprovider 2>&1 || true)"
    echo "$side ($([ "$side" = old ] && echo "$commit" || echo "this tree")) round $round: $(grep -o 'median [0-9]* ms; runs .*' <<<"$log")"
  done
done
