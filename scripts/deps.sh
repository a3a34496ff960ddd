#!/usr/bin/env bash
# deps.sh GROUP... - install the Debian packages a make target needs, only
# those missing. Groups: build, test, bench, fuzz. Idempotent and quiet when
# everything is present, so every make target can call it.
set -euo pipefail

declare -A groups=(
  [build]="libuv1-dev zlib1g-dev libhttp-parser-dev libjansson-dev libcurl4-openssl-dev libinih-dev pkg-config"
  [test]="libuv1-dev zlib1g-dev libhttp-parser-dev libjansson-dev libcurl4-openssl-dev libinih-dev pkg-config php-fpm libcmocka-dev python3 python3-pytest beanstalkd php-cli phpunit php-pda-pheanstalk netcat-openbsd procps"
  [bench]="libuv1-dev zlib1g-dev libhttp-parser-dev libjansson-dev libcurl4-openssl-dev libinih-dev pkg-config php-fpm beanstalkd procps util-linux php-cli php-pda-pheanstalk redis-server redis-tools wrk"
  [fuzz]="libuv1-dev zlib1g-dev libhttp-parser-dev libjansson-dev libcurl4-openssl-dev libinih-dev pkg-config clang libclang-rt-14-dev"
)

want=()
for g in "$@"; do
  [[ -n "${groups[$g]:-}" ]] || { echo "deps.sh: unknown group '$g' (build, test, bench, fuzz)" >&2; exit 2; }
  for p in ${groups[$g]}; do want+=("$p"); done
done

missing=()
for p in $(printf '%s\n' "${want[@]}" | sort -u); do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root to install: apt-get install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Package lists may be absent on a fresh machine, or stale: refresh once if
# the install cannot find something.
if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
