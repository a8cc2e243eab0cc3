#!/bin/sh
# The programs the test suite drives (real clients and servers on loopback, independent oracles), checked before
# `npm test` runs (package.json "pretest") and by .ci/run. A fresh machine should not fail thirty tests one by
# one because dnsmasq is missing: when something is missing and we are root with apt-get, it is installed;
# otherwise we stop at once and print the one command that installs it.
#
# Usage: scripts/ensure-test-deps.sh [binary:debian-package ...]   (extra pairs, e.g. the compiler for npm ci)
# EGRESS_TEST_DEPS=skip skips the check (for running a few unit tests on a machine without these tools).
#
# Fast when everything is present (a `command -v` per binary, no apt-get): well under a second.
set -eu

# binary:Debian package. Keep in step with the tests that spawn them (grep test/ for execFile/spawn):
#   curl, openssl (TLS fixtures, s_server), redis-server (shared hint/baseline store), dnsmasq + dig (real DNS
#   upstream and client), tshark (independent JA3S oracle), promtool (Prometheus rules and metric lint),
#   systemd-analyze + logrotate (test/unit/deploy: the shipped unit file and logrotate config), python3 (an
#   origin that answers any method, test/helpers/any-method-origin.py), pgrep (workers test: finding worker processes),
#   chromium (the console's browser tests, driven by playwright-core: test/integration/console-browser.test.ts).
DEPS="curl:curl openssl:openssl redis-server:redis-server dnsmasq:dnsmasq dig:bind9-dnsutils tshark:tshark
promtool:prometheus systemd-analyze:systemd logrotate:logrotate python3:python3 pgrep:procps chromium:chromium"

if [ "${EGRESS_TEST_DEPS:-}" = skip ]; then exit 0; fi

# Daemons live in sbin, which a non-root PATH often lacks; the test helpers look there too.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing_bins=""
missing_pkgs=""
for pair in $DEPS "$@"; do
  bin=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$bin" >/dev/null 2>&1; then
    missing_bins="$missing_bins $bin"
    case " $missing_pkgs " in *" $pkg "*) ;; *) missing_pkgs="$missing_pkgs $pkg" ;; esac
  fi
done
[ -z "$missing_pkgs" ] && exit 0

missing_pkgs=${missing_pkgs# }
echo "ensure-test-deps: missing:$missing_bins" >&2

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "ensure-test-deps: the tests need them; install with:" >&2
    echo "  sudo apt-get install -y $missing_pkgs" >&2
  else
    echo "ensure-test-deps: the tests need them (Debian packages: $missing_pkgs); install them with your package manager." >&2
  fi
  echo "(or EGRESS_TEST_DEPS=skip npm test … to run tests that do not need them)" >&2
  exit 1
fi

# Root with apt-get: install without starting the packages' services (redis-server, dnsmasq and prometheus
# start daemons on install; the tests start their own). A policy-rc.d that exits 101 forbids that
# (Debian policy §9.3.3.1, invoke-rc.d); it is removed afterwards only if we created it.
POLICY_RC=${EGRESS_POLICY_RC:-/usr/sbin/policy-rc.d} # the variable is for the script's own test
created_policy=""
cleanup() { if [ -n "$created_policy" ]; then rm -f "$POLICY_RC"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ ! -e "$POLICY_RC" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$POLICY_RC"
  chmod 0755 "$POLICY_RC"
  created_policy=1
  echo "ensure-test-deps: created $POLICY_RC so that no service starts (removed afterwards)" >&2
fi
echo "ensure-test-deps: apt-get update" >&2
apt-get update -qq
echo "ensure-test-deps: apt-get install -y --no-install-recommends $missing_pkgs" >&2
# shellcheck disable=SC2086 # the package list is meant to split into words
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing_pkgs >/dev/null
echo "ensure-test-deps: installed $missing_pkgs" >&2
