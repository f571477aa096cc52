package io.github.druidbackup;

import org.junit.jupiter.api.Test;

import java.util.Optional;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;

class SidecarLauncherTest
{
  @Test
  void theClusterSidecarReadsThisCoordinatorUnlessOneIsNamed()
  {
    final Properties p = new Properties();
    assertEquals(Optional.of("http://127.0.0.1:8081"), SidecarLauncher.coordinatorFlag(p, null));
    p.setProperty("druid.plaintextPort", "8181");
    assertEquals(Optional.of("http://127.0.0.1:8181"), SidecarLauncher.coordinatorFlag(p, ""));
    assertEquals(Optional.empty(), SidecarLauncher.coordinatorFlag(p, "http://coordinator:8081"));
    p.setProperty("druid.backup.coordinator", "http://c:8081");
    assertEquals(Optional.empty(), SidecarLauncher.coordinatorFlag(p, null));
  }
}
