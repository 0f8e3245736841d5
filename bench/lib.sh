# bench/lib.sh: what the bench scripts share (sourced, not run).

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# A tool the script needs, installed from Debian when missing and running as root.
need_tool() { # command debian-package
  command -v "$1" >/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing $2 (for $1)"
    # apt-get update first: a fresh machine has no package lists.
    if ! { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; then
      die "apt-get install $2 failed"
    fi
  fi
  command -v "$1" >/dev/null || die "$1 not found: install it (Debian: apt-get install $2)"
}
