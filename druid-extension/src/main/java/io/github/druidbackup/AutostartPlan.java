package io.github.druidbackup;

import javax.annotation.Nullable;
import java.io.File;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * Whether this node starts its sidecar, and with which command. Decided once at start from what is on disk;
 * every reason not to start is one log line an operator can act on.
 */
final class AutostartPlan
{
  static final String SIDECAR_JS = "sidecar.js";
  /** Preloaded into the sidecar: it ends the sidecar when this JVM goes away, even by SIGKILL (its stdin closes). */
  static final String PARENT_WATCH = "parent-watch.cjs";
  /** How long a data node's sidecar waits for Druid to create the node's cache locations (sidecar --wait-for-cache). */
  static final String CACHE_WAIT = "PT10M";
  /**
   * The Node.js flags the sidecar runs with wherever it is started: those of sidecar/runtime.ts NODE_FLAGS (a young
   * generation capped at 1 MiB per semi-space keeps the sidecar's memory about 25 MB lower while it streams; an old
   * generation starting at 64 MiB spares a restore most of its full collections);
   * test/unit/runtime.test.ts checks that this list says the same.
   */
  static final List<String> NODE_FLAGS = List.of("--max-semi-space-size=1", "--initial-old-space-size=64");

  /** What was found on this host. */
  record Facts(
      @Nullable Boolean autostart,
      URI url,
      Path extensionDir,
      boolean sidecarJsExists,
      boolean parentWatchExists,
      String nodeSetting,
      Optional<Path> node,
      Optional<Path> runtimeProperties,
      boolean hasSegmentCache,
      /** Whether druid.backup.bindAddress is set (in the properties or the environment): then the sidecar binds that. */
      boolean bindAddressSet,
      /** On a Coordinator: the cluster sidecar, which has no cache and takes snapshots of the cluster. */
      boolean cluster,
      /** The Coordinator the cluster sidecar reads, given as --coordinator when the properties do not name one. */
      Optional<String> coordinatorFlag
  )
  {
  }

  /** Start with {@code command}, or do not, and why ({@code error} when autostart was asked for explicitly). */
  record Decision(boolean start, List<String> command, String reason, boolean error)
  {
    static Decision skip(String reason, boolean error)
    {
      return new Decision(false, List.of(), reason, error);
    }
  }

  private AutostartPlan()
  {
  }

  static Decision decide(Facts facts)
  {
    final String key = SidecarConfig.PREFIX + ".autostart";
    final String expecting = "; expecting a sidecar at " + facts.url();
    if (Boolean.FALSE.equals(facts.autostart())) {
      return Decision.skip(key + "=false: not starting the druid-backup sidecar" + expecting, false);
    }
    final boolean asked = Boolean.TRUE.equals(facts.autostart());
    final String notStarting = "not starting the druid-backup sidecar: ";
    if (!asked && !facts.cluster() && !facts.hasSegmentCache()) {
      return Decision.skip(
          notStarting + "this node has no druid.segmentCache.locations, so nothing for it to back up (set "
          + key + "=true to start one anyway, e.g. as a target with druid.backup.store)" + expecting,
          false
      );
    }
    if (!facts.sidecarJsExists()) {
      return Decision.skip(
          notStarting + "no " + SIDECAR_JS + " in " + facts.extensionDir()
          + " (copy the whole druid-backup extension folder, or run the sidecar as a bin/supervise line)" + expecting,
          asked
      );
    }
    if (facts.node().isEmpty()) {
      return Decision.skip(
          notStarting + "Node.js (" + SidecarConfig.PREFIX + ".node=" + facts.nodeSetting()
          + ") is not found on this node's PATH; install Node 20 or later, or set " + SidecarConfig.PREFIX
          + ".node to its path" + expecting,
          asked
      );
    }
    if (!SidecarUrls.isLocal(facts.url())) {
      return Decision.skip(
          notStarting + SidecarConfig.PREFIX + ".url=" + facts.url() + " is not on this host" + expecting,
          asked
      );
    }
    if (facts.runtimeProperties().isEmpty()) {
      return Decision.skip(
          notStarting + "this service's runtime.properties is not a file on the classpath, so the sidecar "
          + "cannot read the same configuration" + expecting,
          asked
      );
    }
    final List<String> command = new ArrayList<>();
    command.add(facts.node().get().toString());
    command.addAll(NODE_FLAGS);
    if (facts.parentWatchExists()) {
      command.add("--require");
      command.add(facts.extensionDir().resolve(PARENT_WATCH).toString());
    }
    command.add(facts.extensionDir().resolve(SIDECAR_JS).toString());
    command.add("sidecar");
    command.add("--config");
    command.add(facts.runtimeProperties().get().toString());
    if (facts.cluster() && facts.coordinatorFlag().isPresent()) {
      command.add("--coordinator");
      command.add(facts.coordinatorFlag().get());
    }
    if (!facts.cluster()) {
      // The sidecar starts before the Historical has created its cache locations on a first start: it waits for
      // them instead of exiting (and being restarted) with "cache location ... does not exist".
      command.add("--wait-for-cache");
      command.add(CACHE_WAIT);
    }
    // The port the extension calls, whatever else the file says.
    command.add("--port");
    command.add(Integer.toString(SidecarUrls.port(facts.url())));
    // Druid's port is the sidecar's only face: it listens on the loopback address the extension calls, unless the
    // operator says otherwise (a node that is also a target, or that VS Code reaches directly).
    if (!facts.bindAddressSet()) {
      command.add("--bind");
      command.add(loopbackAddress(facts.url()));
    }
    return new Decision(true, List.copyOf(command), "starting the druid-backup sidecar: " + String.join(" ", command), false);
  }

  /** The loopback address of a local sidecar URL as written ({@code ::1}, {@code 127.0.0.2}); 127.0.0.1 for localhost. */
  static String loopbackAddress(URI url)
  {
    final String host = url.getHost();
    if (host.startsWith("[") && host.endsWith("]")) {
      return host.substring(1, host.length() - 1);
    }
    return host.matches("[0-9.]+") ? host : "127.0.0.1";
  }

  /** A name is looked up on the PATH as a shell would; a value with a separator is a path. */
  static Optional<Path> findExecutable(String setting, @Nullable String pathVariable, Predicate<Path> isExecutable)
  {
    if (setting.contains(File.separator)) {
      final Path p = Path.of(setting);
      return isExecutable.test(p) ? Optional.of(p) : Optional.empty();
    }
    if (pathVariable == null) {
      return Optional.empty();
    }
    for (String dir : pathVariable.split(File.pathSeparator)) {
      if (dir.isEmpty()) {
        continue;
      }
      final Path candidate = Path.of(dir, setting);
      if (isExecutable.test(candidate)) {
        return Optional.of(candidate);
      }
    }
    return Optional.empty();
  }

  static boolean isExecutableFile(Path p)
  {
    return Files.isRegularFile(p) && Files.isExecutable(p);
  }
}
