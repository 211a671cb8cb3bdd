#!/usr/bin/env bash
# Render a quant-eval --html report in headless Chromium to PNG files, light and dark, to look
# at it (a script for people, not CI; Chromium is not a test dependency).
#   scripts/report_screenshot.sh REPORT.html [OUT_PREFIX (default: REPORT without .html)]
# Writes OUT_PREFIX-light.png and OUT_PREFIX-dark.png (1440 px wide, tall enough for the page).
# Needs the Debian package chromium (apt-get install chromium). The page loads nothing from the
# network; --no-sandbox only because this runs as root in a container.
set -euo pipefail
in=${1:?usage: report_screenshot.sh REPORT.html [OUT_PREFIX]}
[ -f "$in" ] || { echo "report_screenshot: $in: no such file" >&2; exit 2; }
out=${2:-${in%.html}}
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$chrome" ] || { echo "report_screenshot: chromium not found (apt-get install chromium)" >&2; exit 1; }
url="file://$(cd "$(dirname "$in")" && pwd)/$(basename "$in")"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
for scheme in light dark; do
  flags=()
  [ "$scheme" = dark ] && flags+=(--force-dark-mode --blink-settings=preferredColorScheme=0)
  "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
    --window-size=1440,1400 "${flags[@]}" --screenshot="$out-$scheme.png" "$url" >/dev/null 2>&1
  [ -s "$out-$scheme.png" ] || { echo "report_screenshot: no $out-$scheme.png" >&2; exit 1; }
  echo "$out-$scheme.png"
done
