#!/bin/sh
# Local demo: a real Tyk Gateway + Redis + an upstream on loopback, a git
# repository made from examples/config-repo, and tyk-gitops reconciling it.
# Everything lives in a temp directory and stops on Ctrl-C.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
exec /usr/bin/python3 "$root/examples/demo.py" "$@"
