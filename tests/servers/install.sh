#!/usr/bin/env bash
# Install the FHIR test peers and the HL7 validator (docs/testing.md). Idempotent: a part whose lock file (or
# pom.xml and sources) is unchanged since its last successful install is skipped, so a second run takes well
# under a second.
#
#   bash tests/servers/install.sh            # everything
#   bash tests/servers/install.sh medplum    # or only one: medplum | sekmet | hapi | hl7-validator
#   FORCE=1 bash tests/servers/install.sh    # reinstall from scratch
#
# Needs: node >= 20 with npm (Medplum peer), python >= 3.11 (sekmet peer; BH_SEKMET_PYTHON picks another
# interpreter), Java >= 17 and Maven (HAPI peer, HL7 validator). Uses only the npm registry, PyPI and Maven
# Central (artifacts cached in ~/.m2).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
want="${1:-all}"
force="${FORCE:-0}"

log() { printf '[install.sh] %s\n' "$*"; }
die() { printf '[install.sh] ERROR: %s\n' "$*" >&2; exit 1; }
fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

install_medplum() {
  local dir="$here/medplum" stamp="$here/medplum/node_modules/.bh-install-stamp"
  command -v node >/dev/null || die "node not found (Node >= 20 needed for the Medplum peer)"
  command -v npm >/dev/null || die "npm not found"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node $(node --version) is too old for the Medplum peer (need >= 20)"
  local want_stamp
  want_stamp="$(fingerprint "$dir/package-lock.json") node$major"
  if [ "$force" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
    log "medplum: up to date"
    return
  fi
  log "medplum: npm ci (Node $(node --version))"
  local start=$SECONDS
  # Medplum 5.x declares node ^22.18; on Node 20 npm only warns (EBADENGINE) and the server runs with
  # --experimental-websocket (tests/servers/peers.py adds it).
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s\n' "$want_stamp" >"$stamp"
  log "medplum: installed in $((SECONDS - start)) s"
}

install_sekmet() {
  local dir="$here/sekmet" venv="$here/sekmet/.venv"
  local python="${BH_SEKMET_PYTHON:-python3}"
  command -v "$python" >/dev/null || die "$python not found (Python >= 3.11 needed for the sekmet peer)"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$("$python" --version) is too old for sekmet-fhir (need >= 3.11); set BH_SEKMET_PYTHON"
  local stamp="$venv/.bh-install-stamp" want_stamp
  want_stamp="$(fingerprint "$dir/requirements.txt") $("$python" -c 'import sys; print(sys.version.split()[0])')"
  if [ "$force" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] && [ -x "$venv/bin/python" ]; then
    log "sekmet: up to date"
    return
  fi
  log "sekmet: creating $venv ($("$python" --version))"
  local start=$SECONDS
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv \
    -r "$dir/requirements.txt"
  "$venv/bin/python" -c 'import sekmet.main, uvicorn' || die "sekmet: import check failed"
  printf '%s\n' "$want_stamp" >"$stamp"
  log "sekmet: installed in $((SECONDS - start)) s"
}

# A Maven project under tests/servers/<name>/ built to target/<jar> with its dependencies in target/lib/.
install_maven_project() {
  local name="$1" jar="$2" dir="$here/$1"
  command -v java >/dev/null || die "java not found (Java >= 17 needed for $name)"
  command -v mvn >/dev/null || die "mvn not found (Maven needed to build $name)"
  local major
  major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
  [ "${major:-0}" -ge 17 ] || die "Java ${major:-?} is too old for $name (need >= 17)"
  local stamp="$dir/target/.bh-install-stamp" want_stamp
  want_stamp="$(fingerprint "$dir/pom.xml" $(find "$dir/src" -type f | sort)) java$major"
  if [ "$force" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] && [ -f "$dir/target/$jar" ]; then
    log "$name: up to date"
    return
  fi
  log "$name: mvn package (Java $major)"
  local start=$SECONDS
  # -q -B: errors only, no download progress; `clean` so a removed dependency leaves no jar in target/lib.
  # The output is shown only on failure: Debian's mvn prints stray ANSI resets even with -q.
  local output
  if ! output="$(cd "$dir" && mvn -q -B clean package 2>&1)"; then
    printf '%s\n' "$output" >&2
    die "$name: maven build failed (output above)"
  fi
  [ -f "$dir/target/$jar" ] || die "$name: build produced no target/$jar"
  printf '%s\n' "$want_stamp" >"$stamp"
  log "$name: built in $((SECONDS - start)) s"
}

install_hapi() { install_maven_project hapi bh-hapi-server.jar; }
install_hl7_validator() { install_maven_project hl7-validator bh-hl7-validator.jar; }

case "$want" in
  all) install_medplum; install_sekmet; install_hl7_validator; install_hapi ;;
  medplum) install_medplum ;;
  sekmet) install_sekmet ;;
  hapi) install_hapi ;;
  hl7-validator) install_hl7_validator ;;
  *) die "unknown part '$want' (medplum | sekmet | hapi | hl7-validator)" ;;
esac
