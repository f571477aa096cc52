#!/usr/bin/env bash
# A nano Apache Druid cluster on this machine, for druid-backup's real-Druid tests.
#
# Druid is assembled from Maven Central (scripts/druid/pom.xml), not from a distribution tarball:
# ZooKeeper, a Coordinator running the Overlord and a Derby metadata store, a Broker, a Historical
# and an Indexer, each a JVM started from the same jars, ~1.6 GB RSS in all.
#
# Usage: scripts/druid-dev-cluster.sh COMMAND
#   fetch                 copy Druid's jars into .cache/druid/<version>/lib (once; reused afterwards)
#   start                 write the config, start every service, wait until all are healthy
#   ingest                generate the wikipedia sample, run an index_parallel task, wait until served
#   query [SQL]           SQL through the Broker (default: the count/sum over wikipedia), JSON out
#   status                every supervised service: pids, health, RSS
#   stop                  stop every service in reverse order (SIGTERM, SIGKILL after a timeout)
#   stop-service NAME     stop one supervised service (e.g. historical)
#   start-service NAME    start it again and wait until it is healthy
#   env                   print paths and ports as shell variables (eval "$(... env)")
#   all                   fetch, start, ingest
#
# DRUID_HOME ($DRUID_DEV_HOME, default <repo>/.cache/druid-dev) is laid out like a Druid distribution:
#   bin/run-druid                          launches one service from its conf folder
#   conf/druid/_common/common.runtime.properties, conf/druid/<service>/{runtime.properties,jvm.config,main.config}
#   conf/supervise/nano.conf               one line per service, "name command", as bin/supervise reads
#   lib -> <repo>/.cache/druid/<version>/lib
#   var/ (zk, metadata, deep storage, segment cache, tasks), log/<name>.log, run/<name>.pid
#
# Environment:
#   DRUID_VERSION (33.0.0)  DRUID_DEV_HOME  DRUID_CACHE_ROOT (<repo>/.cache/druid)
#   DRUID_PORT_OFFSET (0)   added to every port: ZooKeeper 2181, Derby 1527, Coordinator 8081,
#                           Broker 8082, Historical 8083, Indexer 8091
#   DRUID_EXTENSIONS_DIR    a folder of extension folders, all loaded (druid.extensions.loadList)
#   DRUID_COMMON_EXTRA      lines appended to _common/common.runtime.properties
#   DRUID_HISTORICAL_EXTRA  lines appended to historical/runtime.properties
#   DRUID_BACKUP_SIDECAR_CMD  a command supervised as one more service, "backup", beside the Historical
#   DRUID_START_TIMEOUT (240 s)  DRUID_STOP_TIMEOUT (30 s)  DRUID_INGEST_TIMEOUT (600 s)
#   MVN (mvn)  JAVA_HOME
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
POM="$SCRIPT_DIR/druid/pom.xml"

DRUID_VERSION=${DRUID_VERSION:-33.0.0}
CACHE_ROOT=${DRUID_CACHE_ROOT:-$REPO_ROOT/.cache/druid}
LIB_DIR="$CACHE_ROOT/$DRUID_VERSION/lib"
DRUID_HOME=${DRUID_DEV_HOME:-$REPO_ROOT/.cache/druid-dev}
mkdir -p "$DRUID_HOME"
DRUID_HOME=$(cd "$DRUID_HOME" && pwd -P)

OFFSET=${DRUID_PORT_OFFSET:-0}
[[ $OFFSET =~ ^[0-9]+$ ]] || { echo "DRUID_PORT_OFFSET must be a number, got '$OFFSET'" >&2; exit 2; }
ZK_PORT=$((2181 + OFFSET))
DERBY_PORT=$((1527 + OFFSET))
declare -A PORT=(
  [coordinator]=$((8081 + OFFSET)) [broker]=$((8082 + OFFSET))
  [historical]=$((8083 + OFFSET)) [indexer]=$((8091 + OFFSET))
)
declare -A HEAP=([zk]=128m [coordinator]=384m [broker]=384m [historical]=384m [indexer]=512m)
DRUID_SERVICES=(coordinator broker historical indexer)

CONF="$DRUID_HOME/conf/druid"
SUPERVISE_CONF="$DRUID_HOME/conf/supervise/nano.conf"
VAR="$DRUID_HOME/var"
LOG_DIR="$DRUID_HOME/log"
RUN_DIR="$DRUID_HOME/run"
DEEP_STORAGE="$VAR/druid/segments"
SEGMENT_CACHE="$VAR/druid/segment-cache"
DATA_DIR="$VAR/data"
DATA_SOURCE=wikipedia

START_TIMEOUT=${DRUID_START_TIMEOUT:-240}
STOP_TIMEOUT=${DRUID_STOP_TIMEOUT:-30}
INGEST_TIMEOUT=${DRUID_INGEST_TIMEOUT:-600}
MVN=${MVN:-mvn}
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

say() { printf '[druid-dev] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s; }
url() { printf 'http://127.0.0.1:%s%s' "${PORT[$1]}" "${2:-}"; }

# ---------------------------------------------------------------------------------------------- fetch
lib_ready() { [ -f "$LIB_DIR/.complete" ]; }

cmd_fetch() {
  if lib_ready; then
    say "Druid $DRUID_VERSION jars already in $LIB_DIR ($(cat "$LIB_DIR/.complete") jars)"
    return 0
  fi
  command -v "$MVN" >/dev/null || die "Maven ($MVN) is needed to fetch Druid's jars"
  local tmp="$LIB_DIR.partial.$$" t0 n
  t0=$(now)
  rm -rf "$tmp"
  mkdir -p "$tmp"
  say "fetching Druid $DRUID_VERSION from Maven Central into $LIB_DIR"
  if ! "$MVN" -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      "-Ddruid.version=$DRUID_VERSION" "-Ddruid.lib.dir=$tmp" >&2; then
    rm -rf "$tmp"
    die "Maven could not resolve org.apache.druid:druid-services:$DRUID_VERSION with all its dependencies"
  fi
  n=$(find "$tmp" -maxdepth 1 -name '*.jar' | wc -l)
  [ "$n" -gt 100 ] || { rm -rf "$tmp"; die "only $n jars were copied; Druid needs about 200"; }
  echo "$n" >"$tmp/.complete"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
  say "fetched $n jars ($(du -sh "$LIB_DIR" | cut -f1)) in $(($(now) - t0)) s"
}

# --------------------------------------------------------------------------------------------- config
# Extension folders of DRUID_EXTENSIONS_DIR as a JSON list, e.g. ["druid-backup"].
extensions_load_list() {
  local dir=$1 d names=()
  for d in "$dir"/*/; do
    [ -d "$d" ] && names+=("\"$(basename "$d")\"")
  done
  local IFS=,
  printf '[%s]' "${names[*]}"
}

write_jvm_config() { # service heap
  local svc=$1 heap=$2
  {
    echo "-server"
    echo "-Xms64m"
    echo "-Xmx$heap"
    [ "$svc" = zk ] || echo "-XX:MaxDirectMemorySize=256m"
    echo "-XX:+ExitOnOutOfMemoryError"
    echo "-Duser.timezone=UTC"
    echo "-Dfile.encoding=UTF-8"
    echo "-Djava.io.tmpdir=$VAR/tmp"
    echo "-Djava.util.logging.manager=org.apache.logging.log4j.jul.LogManager"
    echo "-Dlog4j.configurationFile=$CONF/_common/log4j2.xml"
    # The module flags Druid's bin/run-java adds on Java 17 (memory mapping, direct buffers, JMX).
    echo "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED"
    echo "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED"
    echo "--add-opens=java.base/java.nio=ALL-UNNAMED"
    echo "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED"
    echo "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED"
    echo "--add-opens=java.base/java.io=ALL-UNNAMED"
    echo "--add-opens=java.base/java.lang=ALL-UNNAMED"
    echo "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED"
  } >"$CONF/$svc/jvm.config"
}

write_config() {
  local ext_dir=${DRUID_EXTENSIONS_DIR:-} load='[]' svc
  if [ -n "$ext_dir" ]; then
    [ -d "$ext_dir" ] || die "DRUID_EXTENSIONS_DIR=$ext_dir is not a folder"
    ext_dir=$(cd "$ext_dir" && pwd)
    load=$(extensions_load_list "$ext_dir")
  fi
  mkdir -p "$CONF/_common" "$CONF/zk" "$DRUID_HOME/bin" "$DRUID_HOME/conf/supervise" \
    "$VAR/tmp" "$VAR/zk" "$VAR/druid" "$DATA_DIR" "$LOG_DIR" "$RUN_DIR"
  for svc in "${DRUID_SERVICES[@]}"; do mkdir -p "$CONF/$svc"; done
  ln -sfn "$LIB_DIR" "$DRUID_HOME/lib"

  cat >"$CONF/_common/common.runtime.properties" <<EOF
# Written by scripts/druid-dev-cluster.sh (Druid $DRUID_VERSION, port offset $OFFSET).
druid.extensions.loadList=$load
${ext_dir:+druid.extensions.directory=$ext_dir}
druid.host=localhost
druid.zk.service.host=localhost:$ZK_PORT
druid.zk.paths.base=/druid

# Metadata: Derby, served by the Coordinator
druid.metadata.storage.type=derby
druid.metadata.storage.connector.connectURI=jdbc:derby://localhost:$DERBY_PORT/$VAR/druid/metadata.db;create=true
druid.metadata.storage.connector.host=localhost
druid.metadata.storage.connector.port=$DERBY_PORT

# Deep storage: local; with the segment cache on the same filesystem its files are hard links
druid.storage.type=local
druid.storage.storageDirectory=$DEEP_STORAGE
druid.indexer.logs.type=file
druid.indexer.logs.directory=$VAR/druid/indexing-logs

druid.selectors.indexing.serviceName=druid/overlord
druid.selectors.coordinator.serviceName=druid/coordinator
druid.emitter=noop
druid.sql.enable=true

# Nano sizing: 32 MiB processing buffers, one processing thread
druid.processing.buffer.sizeBytes=32MiB
druid.processing.numMergeBuffers=2
druid.processing.numThreads=1
druid.processing.tmpDir=$VAR/druid/processing
druid.server.http.numThreads=8

# Without these a service waits ~60 s for lookups on start and long on stop
druid.lookup.enableLookupSyncOnStartup=false
druid.server.http.gracefulShutdownTimeout=PT1S
${DRUID_COMMON_EXTRA:-}
EOF

  cat >"$CONF/_common/log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="Console" target="SYSTEM_OUT">
      <PatternLayout pattern="%d{ISO8601} %p [%t] %c - %m%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="Console"/></Root>
  </Loggers>
</Configuration>
EOF

  cat >"$CONF/coordinator/runtime.properties" <<EOF
druid.service=druid/coordinator
druid.plaintextPort=${PORT[coordinator]}
druid.coordinator.startDelay=PT5S
druid.coordinator.period=PT5S
druid.manager.segments.pollDuration=PT5S
# The Overlord runs inside the Coordinator; tasks go to the Indexer
druid.coordinator.asOverlord.enabled=true
druid.coordinator.asOverlord.overlordService=druid/overlord
druid.indexer.queue.startDelay=PT1S
druid.indexer.storage.type=metadata
druid.indexer.runner.type=remote
EOF

  cat >"$CONF/broker/runtime.properties" <<EOF
druid.service=druid/broker
druid.plaintextPort=${PORT[broker]}
druid.broker.http.numConnections=5
EOF

  cat >"$CONF/historical/runtime.properties" <<EOF
druid.service=druid/historical
druid.plaintextPort=${PORT[historical]}
druid.segmentCache.locations=[{"path":"$SEGMENT_CACHE","maxSize":"5g"}]
druid.server.maxSize=5g
${DRUID_HISTORICAL_EXTRA:-}
EOF

  cat >"$CONF/indexer/runtime.properties" <<EOF
druid.service=druid/indexer
druid.plaintextPort=${PORT[indexer]}
druid.worker.capacity=2
druid.indexer.task.baseTaskDir=$VAR/druid/task
EOF

  for svc in "${DRUID_SERVICES[@]}"; do
    write_jvm_config "$svc" "${HEAP[$svc]}"
    echo "org.apache.druid.cli.Main server $svc" >"$CONF/$svc/main.config"
  done

  # ZooKeeper from the same jars, listening on the loopback only.
  cat >"$CONF/zk/zoo.cfg" <<EOF
tickTime=2000
dataDir=$VAR/zk
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
EOF
  write_jvm_config zk "${HEAP[zk]}"
  echo "org.apache.zookeeper.server.ZooKeeperServerMain $CONF/zk/zoo.cfg" >"$CONF/zk/main.config"

  # bin/run-druid SERVICE CONF_DIR: one service in the foreground (exec), from DRUID_HOME.
  cat >"$DRUID_HOME/bin/run-druid" <<'EOF'
#!/usr/bin/env bash
# Written by scripts/druid-dev-cluster.sh. Usage: bin/run-druid SERVICE CONF_DIR (run from DRUID_HOME)
set -euo pipefail
svc=$1 conf=${2:-conf/druid}
mapfile -t jvm < <(grep -v -e '^[[:space:]]*$' -e '^#' "$conf/$svc/jvm.config")
read -r -a main <"$conf/$svc/main.config"
exec "${JAVA:-java}" "${jvm[@]}" -cp "$conf/_common:$conf/$svc:lib/*" "${main[@]}"
EOF
  chmod +x "$DRUID_HOME/bin/run-druid"

  {
    echo "# Written by scripts/druid-dev-cluster.sh: the services of the nano cluster, in start order."
    echo "# Format of Druid's bin/supervise: 'name command' (an optional '!pNN' after the name is ignored)."
    echo "# Each command runs with bash -c from $DRUID_HOME, is restarted 2 s after it exits and logs to log/<name>.log."
    echo "zk bin/run-druid zk conf/druid"
    echo "coordinator bin/run-druid coordinator conf/druid"
    echo "broker bin/run-druid broker conf/druid"
    echo "historical bin/run-druid historical conf/druid"
    [ -z "${DRUID_BACKUP_SIDECAR_CMD:-}" ] || echo "backup $DRUID_BACKUP_SIDECAR_CMD"
    echo "indexer bin/run-druid indexer conf/druid"
  } >"$SUPERVISE_CONF"
}

# ----------------------------------------------------------------------------------------- supervise
# Lines of nano.conf as "name<TAB>command".
supervise_lines() {
  local name rest
  [ -f "$SUPERVISE_CONF" ] || return 0
  while read -r name rest; do
    case "$name" in '' | '#'* | ':'*) continue ;; esac
    [[ $rest =~ ^\!p[0-9]+[[:space:]]+(.*)$ ]] && rest=${BASH_REMATCH[1]}
    printf '%s\t%s\n' "$name" "$rest"
  done <"$SUPERVISE_CONF"
}
service_names() { supervise_lines | cut -f1; }
service_command() { supervise_lines | awk -F'\t' -v n="$1" '$1 == n { print $2; exit }'; }

# A pid that runs; a zombie (exited, not yet reaped: a container's init can take seconds) does not.
alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}
read_pid() { if [ -f "$1" ]; then cat "$1"; fi; }
sup_pid() { # the supervisor's pid, only if it is really ours
  local pid
  pid=$(read_pid "$RUN_DIR/$1.supervise.pid")
  alive "$pid" || return 0
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
  if [[ $cmdline == *" _supervise $1 "* ]]; then echo "$pid"; fi
}
child_pid() { # the service's pid, only if it is ours: in its supervisor's process group or run from DRUID_HOME
  local pid stat fields
  pid=$(read_pid "$RUN_DIR/$1.pid")
  alive "$pid" || return 0
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
  read -r -a fields <<<"${stat##*) }" # state ppid pgrp ...
  if [ "${fields[2]:-}" = "$(read_pid "$RUN_DIR/$1.supervise.pid")" ] ||
    [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$DRUID_HOME" ]; then echo "$pid"; fi
}

# Internal: "_supervise NAME COMMAND", the restart loop of one service (runs detached, in its own session).
cmd_supervise() {
  local name=$1 cmd=$2 child='' stopping=0 rc log
  cd "$DRUID_HOME"
  log="$LOG_DIR/$name.log"
  echo $$ >"$RUN_DIR/$name.supervise.pid"
  trap 'stopping=1; if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi' TERM INT HUP
  while [ "$stopping" = 0 ]; do
    # bash runs a simple command (variable assignments and "cd dir &&" included) in its own
    # process, so the pid is the service's and SIGTERM reaches it
    bash -c "$cmd" </dev/null >>"$log" 2>&1 &
    child=$!
    echo "$child" >"$RUN_DIR/$name.pid"
    echo "==== supervise: started $name pid $child at $(date -u +%FT%TZ): $cmd" >>"$log"
    rc=0
    wait "$child" || rc=$?
    # a trapped signal interrupts wait: wait again until the service has really exited
    while alive "$child"; do rc=0; wait "$child" || rc=$?; done
    rm -f "$RUN_DIR/$name.pid"
    echo "==== supervise: $name pid $child exited with $rc at $(date -u +%FT%TZ)" >>"$log"
    [ "$stopping" = 0 ] || break
    echo "==== supervise: restarting $name in 2 s" >>"$log"
    sleep 2 &
    wait $! || true
  done
  rm -f "$RUN_DIR/$name.supervise.pid"
}

launch() { # name: start the supervisor of one nano.conf line unless it runs
  local name=$1 cmd
  [ -z "$(sup_pid "$name")" ] || return 0
  cmd=$(service_command "$name")
  [ -n "$cmd" ] || die "no service '$name' in $SUPERVISE_CONF (have: $(service_names | xargs))"
  check_port_free "$name"
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.supervise.pid"
  local runner=()
  command -v setsid >/dev/null && runner=(setsid)
  DRUID_DEV_HOME=$DRUID_HOME JAVA=$JAVA "${runner[@]}" "$SELF" _supervise "$name" "$cmd" \
    </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  local i
  for i in $(seq 1 50); do [ -f "$RUN_DIR/$name.supervise.pid" ] && break; sleep 0.1; done
  say "started $name (supervisor $(read_pid "$RUN_DIR/$name.supervise.pid"))"
}

halt() { # name: SIGTERM, then SIGKILL after STOP_TIMEOUT
  local name=$1 sup child t0
  sup=$(sup_pid "$name")
  child=$(child_pid "$name")
  [ -n "$sup$child" ] || { rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.supervise.pid"; return 0; }
  t0=$(now)
  # the supervisor forwards SIGTERM to its service and does not restart it
  if [ -n "$sup" ]; then kill -TERM "$sup" 2>/dev/null || true; else kill -TERM "$child" 2>/dev/null || true; fi
  while { alive "$sup" || alive "$child"; } && [ $(($(now) - t0)) -lt "$STOP_TIMEOUT" ]; do sleep 0.2; done
  if alive "$sup" || alive "$child"; then
    say "$name did not stop within $STOP_TIMEOUT s: SIGKILL"
    if [ -n "$sup" ]; then kill -KILL -- "-$sup" 2>/dev/null || kill -KILL "$sup" 2>/dev/null || true; fi
    if [ -n "$child" ]; then kill -KILL "$child" 2>/dev/null || true; fi
    sleep 0.5
  fi
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.supervise.pid"
  say "stopped $name in $(($(now) - t0)) s"
}

# ------------------------------------------------------------------------------------------- health
port_of() {
  case "$1" in
    zk) echo "$ZK_PORT" ;;
    coordinator | broker | historical | indexer) echo "${PORT[$1]}" ;;
    *) echo "" ;;
  esac
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
check_port_free() {
  local port p
  port=$(port_of "$1")
  for p in $port $([ "$1" = coordinator ] && echo "$DERBY_PORT"); do
    ! port_open "$p" || die "port $p (for $1) is already in use: another Druid? set DRUID_PORT_OFFSET"
  done
}
zk_ok() { # ZooKeeper's four-letter "ruok" answered by "imok"
  local reply
  reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && printf ruok >&3 && { read -r -t 2 r <&3 || true; } && printf %s "$r") 2>/dev/null) || true
  [ "$reply" = imok ]
}
healthy() { # name
  case "$1" in
    zk) zk_ok ;;
    historical)
      local load
      curl -sf -m 2 "$(url historical /status/health)" >/dev/null &&
        load=$(curl -sf -m 2 "$(url historical /druid/historical/v1/loadstatus)") &&
        [[ $load == *'"cacheInitialized":true'* ]] ;;
    coordinator | broker | indexer) curl -sf -m 2 "$(url "$1" /status/health)" >/dev/null ;;
    *) [ -n "$(child_pid "$1")" ] ;;
  esac
}
wait_healthy() { # name...
  local name t0
  t0=$(now)
  for name in "$@"; do
    until healthy "$name"; do
      [ -n "$(sup_pid "$name")" ] || die "$name is not running; see $LOG_DIR/$name.log"
      [ $(($(now) - t0)) -lt "$START_TIMEOUT" ] || die "$name not healthy after $START_TIMEOUT s; see $LOG_DIR/$name.log"
      sleep 0.5
    done
    say "$name healthy ($(($(now) - t0)) s)"
  done
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# ------------------------------------------------------------------------------------------ commands
cmd_start() {
  local t0 name names
  t0=$(now)
  cmd_fetch
  write_config
  launch zk
  wait_healthy zk
  mapfile -t names < <(service_names)
  for name in "${names[@]}"; do launch "$name"; done
  wait_healthy "${names[@]}"
  say "Druid $DRUID_VERSION up in $(($(now) - t0)) s: Broker $(url broker), Coordinator $(url coordinator)"
}

cmd_stop() {
  local names=() name i
  mapfile -t names < <(service_names)
  for ((i = ${#names[@]} - 1; i >= 0; i--)); do halt "${names[$i]}"; done
  # supervisors of lines no longer in nano.conf
  for name in "$RUN_DIR"/*.supervise.pid; do
    [ -e "$name" ] || continue
    name=$(basename "$name" .supervise.pid)
    halt "$name"
  done
}

cmd_stop_service() {
  [ -n "${1:-}" ] || die "usage: stop-service NAME"
  halt "$1"
}

cmd_start_service() {
  [ -n "${1:-}" ] || die "usage: start-service NAME"
  [ -f "$SUPERVISE_CONF" ] || die "no cluster configured yet: run start"
  local t0
  t0=$(now)
  launch "$1"
  wait_healthy "$1"
  say "$1 up in $(($(now) - t0)) s"
}

cmd_status() {
  local name sup child rss total=0 health rc=0
  [ -f "$SUPERVISE_CONF" ] || { say "not configured: $SUPERVISE_CONF is missing"; return 1; }
  printf '%-12s %-10s %-8s %-8s %8s\n' SERVICE SUPERVISOR PID HEALTH RSS_MB
  while read -r name; do
    sup=$(sup_pid "$name")
    child=$(child_pid "$name")
    rss=0
    [ -z "$child" ] || rss=$(rss_kb "$child")
    total=$((total + rss))
    if healthy "$name"; then health=ok; else health=down; rc=1; fi
    printf '%-12s %-10s %-8s %-8s %8s\n' "$name" "${sup:--}" "${child:--}" "$health" "$((rss / 1024))"
  done < <(service_names)
  printf '%-12s %-10s %-8s %-8s %8s\n' total '' '' '' "$((total / 1024))"
  return "$rc"
}

cmd_env() {
  local k v
  while IFS='=' read -r k v; do
    printf "%s='%s'\n" "$k" "${v//\'/\'\\\'\'}"
  done <<EOF
DRUID_VERSION=$DRUID_VERSION
DRUID_HOME=$DRUID_HOME
DRUID_LIB_DIR=$LIB_DIR
DRUID_CONF_DIR=$CONF
DRUID_COMMON_CONF_DIR=$CONF/_common
DRUID_HISTORICAL_CONF_DIR=$CONF/historical
DRUID_HISTORICAL_RUNTIME_PROPERTIES=$CONF/historical/runtime.properties
DRUID_SUPERVISE_CONF=$SUPERVISE_CONF
DRUID_SEGMENT_CACHE_DIR=$SEGMENT_CACHE
DRUID_INFO_DIR=$SEGMENT_CACHE/info_dir
DRUID_DEEP_STORAGE_DIR=$DEEP_STORAGE
DRUID_LOG_DIR=$LOG_DIR
DRUID_RUN_DIR=$RUN_DIR
DRUID_HISTORICAL_LOG=$LOG_DIR/historical.log
DRUID_DATA_SOURCE=$DATA_SOURCE
DRUID_PORT_OFFSET=$OFFSET
DRUID_ZK_PORT=$ZK_PORT
DRUID_DERBY_PORT=$DERBY_PORT
DRUID_COORDINATOR_PORT=${PORT[coordinator]}
DRUID_BROKER_PORT=${PORT[broker]}
DRUID_HISTORICAL_PORT=${PORT[historical]}
DRUID_INDEXER_PORT=${PORT[indexer]}
DRUID_COORDINATOR_URL=$(url coordinator)
DRUID_OVERLORD_URL=$(url coordinator)
DRUID_BROKER_URL=$(url broker)
DRUID_HISTORICAL_URL=$(url historical)
DRUID_INDEXER_URL=$(url indexer)
EOF
}

# SQL through the Broker; prints the JSON answer, fails on an HTTP error (e.g. 400 "Object not found").
cmd_query() {
  local sql=${1:-"SELECT COUNT(*) AS c, SUM(added) AS s FROM $DATA_SOURCE"} body out code
  body=$(node -e 'process.stdout.write(JSON.stringify({query: process.argv[1]}))' "$sql")
  out=$(curl -s -m 60 -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "$body" "$(url broker /druid/v2/sql)") || die "the Broker at $(url broker) does not answer"
  code=${out##*$'\n'}
  printf '%s\n' "${out%$'\n'*}"
  [ "$code" = 200 ]
}

# A deterministic Wikipedia-like edit stream: 39,244 rows (the size of Druid's wikiticker sample) over
# five days from 2015-09-12, the first day busier (14,000 rows) so that it needs two segments.
generate_data() {
  DATA_FILE="$DATA_DIR/wikipedia-2015-09-12.json" EXPECTED_FILE="$DATA_DIR/wikipedia.expected.json" node <<'JS'
const fs = require('fs');
let seed = 0x5eed2015;
const rand = () => { // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const skewed = (n) => Math.floor(Math.pow(rand(), 3) * n); // a few values are frequent
const channels = ['#en.wikipedia', '#vi.wikipedia', '#de.wikipedia', '#fr.wikipedia', '#it.wikipedia',
  '#ja.wikipedia', '#ru.wikipedia', '#es.wikipedia', '#zh.wikipedia', '#pl.wikipedia', '#nl.wikipedia'];
const namespaces = ['Main', 'Main', 'Main', 'Talk', 'User', 'User talk', 'Wikipedia', 'Template', 'Category', 'File'];
const words = ['River', 'Battle', 'Station', 'Museum', 'Saint', 'Island', 'Church', 'List', 'Football',
  'Mountain', 'Village', 'Railway', 'Palace', 'Lake', 'Festival', 'Bridge', 'Castle', 'Valley', 'Album', 'Party'];
const places = ['of Paris', 'of Hanoi', 'in Berlin', '(film)', '(album)', 'of 1914', 'County', 'FC',
  'of Kyoto', 'Street', 'Cup', 'Park', '(band)', 'of Rome', 'Line', 'Prize'];
const rowsPerDay = [14000, 7000, 6500, 6000, 5744];
const lines = [];
let sumAdded = 0, sumDeleted = 0;
rowsPerDay.forEach((n, day) => {
  const start = Date.UTC(2015, 8, 12 + day);
  const times = Array.from({ length: n }, () => start + Math.floor(rand() * 86400) * 1000).sort((a, b) => a - b);
  for (const t of times) {
    const robot = rand() < 0.25, anonymous = !robot && rand() < 0.2;
    const p = skewed(4000);
    const page = `${words[p % words.length]} ${places[Math.floor(p / words.length) % places.length]} ${Math.floor(p / 320) || ''}`.trim();
    const user = anonymous ? `${1 + skewed(223)}.${skewed(255)}.${skewed(255)}.${skewed(255)}` : robot ? `Bot${skewed(40)}` : `User${skewed(2500)}`;
    const added = rand() < 0.15 ? 0 : skewed(3000);
    const deleted = rand() < 0.7 ? 0 : skewed(1500);
    sumAdded += added; sumDeleted += deleted;
    lines.push(JSON.stringify({
      time: new Date(t).toISOString().replace('.000Z', 'Z'), channel: pick(channels), namespace: pick(namespaces),
      page, user, isRobot: String(robot), isAnonymous: String(anonymous), isNew: String(rand() < 0.1),
      isMinor: String(rand() < 0.3), added, deleted, delta: added - deleted, commentLength: skewed(120),
    }));
  }
});
fs.writeFileSync(process.env.DATA_FILE, lines.join('\n') + '\n');
fs.writeFileSync(process.env.EXPECTED_FILE, JSON.stringify({ c: lines.length, s: sumAdded, deleted: sumDeleted }) + '\n');
JS
}

ingest_spec() {
  DATA_DIR=$DATA_DIR DATA_SOURCE=$DATA_SOURCE node <<'JS'
const spec = {
  type: 'index_parallel',
  spec: {
    dataSchema: {
      dataSource: process.env.DATA_SOURCE,
      timestampSpec: { column: 'time', format: 'iso' },
      dimensionsSpec: {
        dimensions: ['channel', 'namespace', 'page', 'user', 'isRobot', 'isAnonymous', 'isNew', 'isMinor',
          { type: 'long', name: 'commentLength' }],
      },
      metricsSpec: [
        { type: 'longSum', name: 'added', fieldName: 'added' },
        { type: 'longSum', name: 'deleted', fieldName: 'deleted' },
        { type: 'longSum', name: 'delta', fieldName: 'delta' },
      ],
      granularitySpec: { type: 'uniform', segmentGranularity: 'day', queryGranularity: 'none', rollup: false },
    },
    ioConfig: {
      type: 'index_parallel',
      inputSource: { type: 'local', baseDir: process.env.DATA_DIR, filter: 'wikipedia-*.json' },
      inputFormat: { type: 'json' },
      appendToExisting: false,
    },
    tuningConfig: {
      type: 'index_parallel',
      partitionsSpec: { type: 'dynamic', maxRowsPerSegment: 10000 },
      maxNumConcurrentSubTasks: 1,
    },
  },
};
process.stdout.write(JSON.stringify(spec));
JS
}

json_field() { # JS expression on the parsed stdin as `j`, e.g. 'j.status.status'
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);const v=eval(process.argv[1]);console.log(v===undefined?"":typeof v==="object"?JSON.stringify(v):v)}catch{console.log("")}})' "$1"
}

# Percentage of the data source's used segments that are loaded, as the Coordinator sees it after
# re-reading the metadata store (the interval covers all time: the default is only recent weeks).
loaded_percent() {
  curl -sf -m 10 "$(url coordinator "/druid/coordinator/v1/datasources/$DATA_SOURCE/loadstatus?forceMetadataRefresh=true&interval=1000-01-01_3000-01-01")" |
    json_field "j['$DATA_SOURCE']" || true
}

cmd_ingest() {
  local t0 id status expected answer deadline
  t0=$(now)
  if ! healthy coordinator || ! healthy indexer; then die "the cluster is not up: run start"; fi
  generate_data
  expected=$(cat "$DATA_DIR/wikipedia.expected.json")
  say "generated $(wc -l <"$DATA_DIR/wikipedia-2015-09-12.json") rows in $DATA_DIR; expecting $expected"
  ingest_spec >"$DATA_DIR/ingest-spec.json"
  id=$(curl -sf -m 30 -X POST -H 'Content-Type: application/json' --data-binary @"$DATA_DIR/ingest-spec.json" \
    "$(url coordinator /druid/indexer/v1/task)" | json_field 'j.task')
  [ -n "$id" ] || die "the Overlord refused the task (spec in $DATA_DIR/ingest-spec.json)"
  say "task $id submitted"
  deadline=$(($(now) + INGEST_TIMEOUT))
  while :; do
    status=$(curl -sf -m 10 "$(url coordinator "/druid/indexer/v1/task/$id/status")" | json_field 'j.status.status') || true
    case "$status" in
      SUCCESS) break ;;
      FAILED) die "task $id failed; see $VAR/druid/indexing-logs and $LOG_DIR/indexer.log" ;;
    esac
    [ "$(now)" -lt "$deadline" ] || die "task $id still ${status:-unknown} after $INGEST_TIMEOUT s"
    sleep 1
  done
  say "task $id SUCCESS after $(($(now) - t0)) s; waiting for the Historical to serve every row"
  # Every used segment loaded (the new version included: on a re-ingest the old one answers the same
  # count until then), and the Broker's count is the generated one.
  deadline=$(($(now) + START_TIMEOUT))
  until [ "$(loaded_percent)" = 100 ] &&
    [ "$(cmd_query 2>/dev/null | json_field 'j[0].c')" = "$(json_field 'j.c' <<<"$expected")" ]; do
    [ "$(now)" -lt "$deadline" ] || die "SQL does not answer $expected after $START_TIMEOUT s"
    sleep 1
  done
  answer=$(cmd_query)
  say "served after $(($(now) - t0)) s in all"
  printf '%s\n' "$answer"
}

usage() { sed -n '2,/^set -euo/p' "$SELF" | sed -e '$d' -e 's/^# \{0,1\}//'; }

main() {
  local cmd=${1:-help}
  [ $# -eq 0 ] || shift
  case "$cmd" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    ingest) cmd_ingest ;;
    query) cmd_query "$@" ;;
    status) cmd_status ;;
    stop) cmd_stop ;;
    stop-service) cmd_stop_service "$@" ;;
    start-service) cmd_start_service "$@" ;;
    env) cmd_env ;;
    all) cmd_start && cmd_ingest ;;
    _supervise) cmd_supervise "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
