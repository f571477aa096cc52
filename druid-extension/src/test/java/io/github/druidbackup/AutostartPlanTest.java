package io.github.druidbackup;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AutostartPlanTest
{
  private static final Path EXT = Path.of("/opt/druid/extensions/druid-backup");
  private static final Path NODE = Path.of("/usr/bin/node");
  private static final Path PROPS = Path.of("/opt/druid/conf/druid/historical/runtime.properties");
  private static final URI LOCAL = URI.create("http://127.0.0.1:8484");

  private static AutostartPlan.Facts facts(Boolean autostart, URI url, boolean sidecarJs, Optional<Path> node, Optional<Path> props)
  {
    return new AutostartPlan.Facts(autostart, url, EXT, sidecarJs, true, "node", node, props, true, false, false, Optional.empty());
  }

  @Test
  void startsByDefaultWhenEverythingIsThere()
  {
    final AutostartPlan.Decision d = AutostartPlan.decide(facts(null, URI.create("http://localhost:8584"), true, Optional.of(NODE), Optional.of(PROPS)));
    assertTrue(d.start());
    assertEquals(
        List.of(
            "/usr/bin/node", "--max-semi-space-size=1", "--initial-old-space-size=64", "--require", EXT.resolve("parent-watch.cjs").toString(), EXT.resolve("sidecar.js").toString(),
            "sidecar", "--config", PROPS.toString(), "--wait-for-cache", "PT10M", "--port", "8584", "--bind", "127.0.0.1"
        ),
        d.command()
    );
  }

  @Test
  void withoutTheParentWatchTheSidecarStillStarts()
  {
    final AutostartPlan.Decision d = AutostartPlan.decide(
        new AutostartPlan.Facts(true, LOCAL, EXT, true, false, "node", Optional.of(NODE), Optional.of(PROPS), true, false, false, Optional.empty())
    );
    assertTrue(d.start());
    assertFalse(d.command().contains("--require"));
  }

  @Test
  void eachReasonNotToStartIsOneClearLine()
  {
    assertSkip(facts(false, LOCAL, true, Optional.of(NODE), Optional.of(PROPS)), "druid.backup.sidecar.autostart=false", false);
    assertSkip(facts(null, LOCAL, false, Optional.of(NODE), Optional.of(PROPS)), "no sidecar.js in " + EXT, false);
    assertSkip(facts(null, LOCAL, true, Optional.empty(), Optional.of(PROPS)), "is not found on this node's PATH", false);
    assertSkip(facts(null, URI.create("http://10.1.2.3:8484"), true, Optional.of(NODE), Optional.of(PROPS)), "is not on this host", false);
    assertSkip(facts(null, LOCAL, true, Optional.of(NODE), Optional.empty()), "runtime.properties is not a file", false);
  }

  @Test
  void aNodeWithoutSegmentCacheStartsNoSidecarUnlessAsked()
  {
    final AutostartPlan.Facts indexer =
        new AutostartPlan.Facts(null, LOCAL, EXT, true, true, "node", Optional.of(NODE), Optional.of(PROPS), false, false, false, Optional.empty());
    assertSkip(indexer, "this node has no druid.segmentCache.locations", false);
    final AutostartPlan.Facts asked =
        new AutostartPlan.Facts(true, LOCAL, EXT, true, true, "node", Optional.of(NODE), Optional.of(PROPS), false, false, false, Optional.empty());
    assertTrue(AutostartPlan.decide(asked).start());
  }

  @Test
  void segmentCacheLocationsAreReadAsDruidWritesThem()
  {
    final java.util.Properties p = new java.util.Properties();
    assertFalse(SidecarLauncher.hasSegmentCache(p));
    p.setProperty("druid.segmentCache.locations", " [ ] ");
    assertFalse(SidecarLauncher.hasSegmentCache(p));
    p.setProperty("druid.segmentCache.locations", "[{\"path\":\"var/druid/segment-cache\",\"maxSize\":\"300g\"}]");
    assertTrue(SidecarLauncher.hasSegmentCache(p));
  }

  @Test
  void anAutostartedSidecarListensOnLoopbackUnlessBindAddressIsSet()
  {
    final List<String> loopback = AutostartPlan.decide(facts(null, LOCAL, true, Optional.of(NODE), Optional.of(PROPS))).command();
    assertEquals(List.of("--bind", "127.0.0.1"), loopback.subList(loopback.size() - 2, loopback.size()));
    final List<String> v6 = AutostartPlan.decide(facts(null, URI.create("http://[::1]:8484"), true, Optional.of(NODE), Optional.of(PROPS))).command();
    assertEquals(List.of("--bind", "::1"), v6.subList(v6.size() - 2, v6.size()));
    // druid.backup.bindAddress set: the sidecar reads it from the same runtime.properties; no flag overrides it.
    final AutostartPlan.Decision own = AutostartPlan.decide(
        new AutostartPlan.Facts(null, LOCAL, EXT, true, true, "node", Optional.of(NODE), Optional.of(PROPS), true, true, false, Optional.empty())
    );
    assertTrue(own.start());
    assertFalse(own.command().contains("--bind"), own.command().toString());
  }

  @Test
  void theBindAddressCountsAsSetInThePropertiesOrTheEnvironment()
  {
    final java.util.Properties p = new java.util.Properties();
    assertFalse(SidecarLauncher.bindAddressSet(p, null));
    assertFalse(SidecarLauncher.bindAddressSet(p, " "));
    assertTrue(SidecarLauncher.bindAddressSet(p, "0.0.0.0"));
    p.setProperty("druid.backup.bindAddress", "0.0.0.0");
    assertTrue(SidecarLauncher.bindAddressSet(p, null));
  }

  @Test
  void anExplicitAutostartThatCannotHappenIsAnError()
  {
    assertSkip(facts(true, LOCAL, true, Optional.empty(), Optional.of(PROPS)), "Node.js", true);
    assertSkip(facts(true, LOCAL, false, Optional.of(NODE), Optional.of(PROPS)), "sidecar.js", true);
  }

  private static void assertSkip(AutostartPlan.Facts facts, String expected, boolean error)
  {
    final AutostartPlan.Decision d = AutostartPlan.decide(facts);
    assertFalse(d.start());
    assertTrue(d.reason().contains(expected), d.reason());
    assertTrue(d.reason().contains("expecting a sidecar at " + facts.url()), d.reason());
    assertFalse(d.reason().contains("\n"));
    assertEquals(error, d.error());
  }

  @Test
  void nodeIsFoundOnThePathOrByItsPath(@TempDir Path dir) throws IOException
  {
    final Path bin = Files.createDirectories(dir.resolve("bin"));
    final Path node = Files.createFile(bin.resolve("node"), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
    Files.createFile(dir.resolve("node"), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r--r--")));
    final String path = dir + File.pathSeparator + File.pathSeparator + bin;
    assertEquals(Optional.of(node), AutostartPlan.findExecutable("node", path, AutostartPlan::isExecutableFile));
    assertEquals(Optional.of(node), AutostartPlan.findExecutable(node.toString(), null, AutostartPlan::isExecutableFile));
    assertEquals(Optional.empty(), AutostartPlan.findExecutable("node", dir.toString(), AutostartPlan::isExecutableFile));
    assertEquals(Optional.empty(), AutostartPlan.findExecutable("node", null, AutostartPlan::isExecutableFile));
    assertEquals(Optional.empty(), AutostartPlan.findExecutable(dir.resolve("node").toString(), path, AutostartPlan::isExecutableFile));
  }

  @Test
  void onACoordinatorTheClusterSidecarStartsWithoutACacheAndReadsThisCoordinator()
  {
    final URI cluster = URI.create("http://127.0.0.1:8486");
    final AutostartPlan.Decision d = AutostartPlan.decide(
        new AutostartPlan.Facts(null, cluster, EXT, true, true, "node", Optional.of(NODE), Optional.of(PROPS), false, false, true, Optional.of("http://127.0.0.1:8081"))
    );
    assertTrue(d.start(), d.reason());
    assertEquals(
        List.of(
            "/usr/bin/node", "--max-semi-space-size=1", "--initial-old-space-size=64", "--require", EXT.resolve("parent-watch.cjs").toString(), EXT.resolve("sidecar.js").toString(),
            "sidecar", "--config", PROPS.toString(), "--coordinator", "http://127.0.0.1:8081", "--port", "8486", "--bind", "127.0.0.1"
        ),
        d.command()
    );
    // druid.backup.coordinator in the file: the sidecar reads it there.
    final AutostartPlan.Decision named = AutostartPlan.decide(
        new AutostartPlan.Facts(null, cluster, EXT, true, true, "node", Optional.of(NODE), Optional.of(PROPS), false, false, true, Optional.empty())
    );
    assertFalse(named.command().contains("--coordinator"));
    assertSkip(
        new AutostartPlan.Facts(false, cluster, EXT, true, true, "node", Optional.of(NODE), Optional.of(PROPS), false, false, true, Optional.empty()),
        "druid.backup.sidecar.autostart=false",
        false
    );
  }
}
