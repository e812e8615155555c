#!/bin/sh
# Refresh the browser players shipped in srspy/www/js from npm: mpegts.js (HTTP-FLV,
# HTTP-TS, WS-FLV, WS-TS), hls.js (HLS) and flv.js (HTTP-FLV, WS-FLV: what many pages
# still embed; the tests check srspy with it too), all Apache-2.0. Pin the versions here, run
#   sh tools/update-players.sh
# from the repository's root, check the pages (tests/e2e/test_pages_browser.py), commit.
set -eu

MPEGTS_VERSION=1.8.2
HLS_VERSION=1.7.4
FLVJS_VERSION=1.6.2

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/srspy/www/js"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "mpegts.js@$MPEGTS_VERSION" "hls.js@$HLS_VERSION" "flv.js@$FLVJS_VERSION" >/dev/null
mkdir mpegts hls flvjs
tar xzf "mpegts.js-$MPEGTS_VERSION.tgz" -C mpegts
tar xzf "hls.js-$HLS_VERSION.tgz" -C hls
tar xzf "flv.js-$FLVJS_VERSION.tgz" -C flvjs

mkdir -p "$dest"
cp mpegts/package/dist/mpegts.js "$dest/mpegts.js"
cp mpegts/package/dist/mpegts.js.LICENSE.txt "$dest/mpegts.js.LICENSE.txt"
cp mpegts/package/LICENSE "$dest/LICENSE.mpegts.js.txt"
cp hls/package/dist/hls.min.js "$dest/hls.min.js"
cp hls/package/LICENSE "$dest/LICENSE.hls.js.txt"
cp flvjs/package/dist/flv.min.js "$dest/flv.min.js"
cp flvjs/package/LICENSE "$dest/LICENSE.flv.js.txt"
cat > "$dest/VERSIONS.txt" <<VERSIONS
mpegts.js $MPEGTS_VERSION (npm), Apache-2.0: mpegts.js, mpegts.js.LICENSE.txt, LICENSE.mpegts.js.txt
hls.js $HLS_VERSION (npm), Apache-2.0: hls.min.js, LICENSE.hls.js.txt
flv.js $FLVJS_VERSION (npm), Apache-2.0: flv.min.js, LICENSE.flv.js.txt
Updated by tools/update-players.sh; do not edit these files by hand.
VERSIONS
echo "srspy/www/js: mpegts.js $MPEGTS_VERSION, hls.js $HLS_VERSION, flv.js $FLVJS_VERSION"
