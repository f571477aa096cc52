# Sourced by the install scripts: `retry CMD...` runs CMD up to 3 times, 10 s then 20 s apart, so that a network
# hiccup (a registry, a module proxy) does not fail a first `npm test`; after the third failure it says so and fails.
retry() {
  local attempt
  for attempt in 1 2 3; do
    "$@" && return 0
    if [ "$attempt" -lt 3 ]; then
      echo "${0##*/}: '$*' failed, trying again in $((attempt * 10)) s" >&2
      sleep $((attempt * 10))
    fi
  done
  echo "${0##*/}: '$*' failed 3 times (see above); check the network and run this again" >&2
  return 1
}
