#!/usr/bin/env bash
# Render an llmbench HTML report in headless Chromium and save a screenshot.
#   scripts/screenshot_report.sh REPORT.html OUT.png [WIDTH,HEIGHT]
# Needs Debian's `chromium` (apt-get install -y chromium) or $CHROMIUM pointing at a Chromium binary.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]" >&2
  exit 2
fi
report=$1
out=$2
size=${3:-1400,2400}
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [[ -z "$chromium" ]]; then
  echo "error: chromium not found (apt-get install -y chromium, or set CHROMIUM)" >&2
  exit 2
fi
if [[ ! -f "$report" ]]; then
  echo "error: no report at $report" >&2
  exit 2
fi

report_abs=$(realpath "$report")
out_abs=$(realpath -m "$out")
mkdir -p "$(dirname "$out_abs")"
rm -f "$out_abs"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

# The report is self-contained, so the browser gets no network access at all.
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars \
  --screenshot="$out_abs" --window-size="$size" "file://$report_abs" >/dev/null 2>&1 || true

if [[ ! -s "$out_abs" ]]; then
  echo "error: chromium wrote no screenshot to $out" >&2
  exit 1
fi
echo "$out"
