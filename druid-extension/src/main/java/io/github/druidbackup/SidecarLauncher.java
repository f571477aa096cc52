package io.github.druidbackup;

import com.google.inject.Inject;
import org.apache.druid.guice.ManageLifecycle;
import org.apache.druid.java.util.common.lifecycle.LifecycleStart;
import org.apache.druid.java.util.common.lifecycle.LifecycleStop;
import org.apache.druid.java.util.common.logger.Logger;

import javax.annotation.Nullable;
import java.io.File;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

/**
 * Runs the node's sidecar as a child process in Druid's lifecycle: started before Druid opens its port, restarted
 * with back-off when it dies, stopped (SIGTERM, then SIGKILL) after Druid closed its port. The child reads the same
 * runtime.properties as this service and gets the token in its environment, never on its command line.
 */
@ManageLifecycle
public class SidecarLauncher
{
  private static final Logger log = new Logger(SidecarLauncher.class);
  private static final Duration STOP_GRACE = Duration.ofSeconds(15);

  private final SidecarConfig config;
  private final SidecarToken token;
  private final Properties properties;
  private final Object lock = new Object();
  @Nullable
  private Thread supervisor;
  @Nullable
  private Process child;
  private volatile boolean stopping;

  private final SidecarRole role;

  @Inject
  public SidecarLauncher(SidecarConfig config, SidecarToken token, Properties properties, SidecarRole role)
  {
    this.config = config;
    this.token = token;
    this.properties = properties;
    this.role = role;
  }

  @LifecycleStart
  public void start()
  {
    final Path extensionDir = extensionDir();
    final boolean cluster = role == SidecarRole.CLUSTER;
    final AutostartPlan.Decision decision = AutostartPlan.decide(new AutostartPlan.Facts(
        config.getAutostart(),
        config.baseUri(role),
        extensionDir,
        Files.isRegularFile(extensionDir.resolve(AutostartPlan.SIDECAR_JS)),
        Files.isRegularFile(extensionDir.resolve(AutostartPlan.PARENT_WATCH)),
        config.getNode(),
        AutostartPlan.findExecutable(config.getNode(), System.getenv("PATH"), AutostartPlan::isExecutableFile),
        runtimePropertiesFile(),
        hasSegmentCache(properties),
        bindAddressSet(properties, System.getenv("DRUID_BACKUP_BIND_ADDRESS")),
        cluster,
        cluster ? coordinatorFlag(properties, System.getenv("DRUID_BACKUP_COORDINATOR")) : Optional.empty()
    ));
    if (!decision.start()) {
      if (decision.error()) {
        log.error("%s", decision.reason());
      } else {
        log.info("%s", decision.reason());
      }
      return;
    }
    final String bearer = token.isConfigured() ? token.current() : token.generate();
    final ProcessBuilder builder = new ProcessBuilder(decision.command())
        .redirectOutput(ProcessBuilder.Redirect.INHERIT)
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .redirectInput(ProcessBuilder.Redirect.PIPE);
    builder.environment().put("DRUID_BACKUP_TOKEN", bearer);
    log.info("%s", decision.reason());
    synchronized (lock) {
      supervisor = new Thread(() -> supervise(builder), "druid-backup-sidecar-supervisor");
      supervisor.setDaemon(true);
      supervisor.start();
    }
  }

  @LifecycleStop
  public void stop()
  {
    final Thread thread;
    final Process running;
    synchronized (lock) {
      stopping = true;
      thread = supervisor;
      running = child;
      lock.notifyAll();
    }
    if (running != null) {
      log.info("stopping the druid-backup sidecar (pid %d)", running.pid());
      running.destroy();
      try {
        if (!running.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
          log.warn("the druid-backup sidecar (pid %d) did not stop within %s: killing it", running.pid(), STOP_GRACE);
          running.destroyForcibly();
          running.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS);
        }
      }
      catch (InterruptedException e) {
        running.destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
    if (thread != null) {
      thread.interrupt();
    }
  }

  private void supervise(ProcessBuilder builder)
  {
    final RestartBackoff backoff = new RestartBackoff(Duration.ofSeconds(1), Duration.ofMinutes(1), Duration.ofMinutes(1));
    while (true) {
      final long started = System.nanoTime();
      final Process process;
      synchronized (lock) {
        if (stopping) {
          return;
        }
        try {
          process = builder.start();
        }
        catch (java.io.IOException e) {
          log.error("cannot start the druid-backup sidecar (%s): %s", String.join(" ", builder.command()), e.getMessage());
          return;
        }
        child = process;
      }
      log.info("druid-backup sidecar started (pid %d)", process.pid());
      final int status;
      try {
        status = process.waitFor();
      }
      catch (InterruptedException e) {
        return;
      }
      final Duration uptime = Duration.ofNanos(System.nanoTime() - started);
      synchronized (lock) {
        child = null;
        if (stopping) {
          log.info("druid-backup sidecar (pid %d) stopped with status %d", process.pid(), status);
          return;
        }
        final Duration delay = backoff.after(uptime);
        log.warn(
            "druid-backup sidecar (pid %d) exited with status %d after %d s; restarting in %d s",
            process.pid(),
            status,
            uptime.toSeconds(),
            delay.toSeconds()
        );
        try {
          lock.wait(delay.toMillis());
        }
        catch (InterruptedException e) {
          return;
        }
      }
    }
  }

  /**
   * The Coordinator the cluster sidecar reads: none to give when druid.backup.coordinator is set (the sidecar reads it
   * from the same file or environment), else this Coordinator on loopback at its plaintext port.
   */
  static Optional<String> coordinatorFlag(Properties properties, @Nullable String environment)
  {
    if (!properties.getProperty("druid.backup.coordinator", "").isBlank() || (environment != null && !environment.isBlank())) {
      return Optional.empty();
    }
    return Optional.of("http://127.0.0.1:" + properties.getProperty("druid.plaintextPort", "8081").trim());
  }

  /** druid.backup.bindAddress in the configuration, or its environment variable (the sidecar reads both). */
  static boolean bindAddressSet(Properties properties, String environment)
  {
    return !properties.getProperty("druid.backup.bindAddress", "").isBlank()
           || (environment != null && !environment.isBlank());
  }

  /** An Indexer or a MiddleManager has no segment cache; a sidecar started there would only refuse to run. */
  static boolean hasSegmentCache(Properties properties)
  {
    final String locations = properties.getProperty("druid.segmentCache.locations", "").replaceAll("\\s", "");
    return !locations.isEmpty() && !locations.equals("[]");
  }

  /** The folder this jar was loaded from: Druid's extensions/druid-backup/. */
  private static Path extensionDir()
  {
    try {
      final Path location = Path.of(SidecarLauncher.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      return Files.isDirectory(location) ? location : location.getParent();
    }
    catch (URISyntaxException | SecurityException | NullPointerException e) {
      return Path.of(".").toAbsolutePath();
    }
  }

  /** Where Druid read this service's runtime.properties: the classpath first, then druid.properties.file. */
  private static Optional<Path> runtimePropertiesFile()
  {
    final URL resource = ClassLoader.getSystemResource("runtime.properties");
    if (resource != null && "file".equals(resource.getProtocol())) {
      try {
        return Optional.of(Path.of(resource.toURI()));
      }
      catch (URISyntaxException e) {
        return Optional.empty();
      }
    }
    final File working = new File(System.getProperty("druid.properties.file", "runtime.properties"));
    return working.isFile() ? Optional.of(working.toPath().toAbsolutePath()) : Optional.empty();
  }
}
