package io.github.druidbackup;

import org.apache.druid.jackson.DefaultObjectMapper;
import org.apache.druid.metadata.EnvironmentVariablePasswordProvider;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The keys as Druid's JsonConfigurator hands them over: values parsed as JSON when they look like it, else strings. */
class SidecarConfigTest
{
  private static final DefaultObjectMapper MAPPER = new DefaultObjectMapper();

  private static SidecarConfig config(Map<String, Object> values)
  {
    return MAPPER.convertValue(values, SidecarConfig.class);
  }

  @Test
  void defaults()
  {
    final SidecarConfig c = config(Map.of());
    assertEquals(URI.create("http://127.0.0.1:8484"), c.baseUri());
    assertEquals(URI.create("http://127.0.0.1:8484"), c.baseUri(SidecarRole.NODE));
    // The cluster sidecar beside a Coordinator has its own port, so it can share a host with a Historical's.
    assertEquals(URI.create("http://127.0.0.1:8486"), c.baseUri(SidecarRole.CLUSTER));
    assertNull(c.getToken());
    assertNull(c.getAutostart());
    assertEquals("node", c.getNode());
    assertEquals(Duration.ofSeconds(5), c.connectTimeout());
  }

  @Test
  void everyKey()
  {
    final SidecarConfig c = config(Map.of(
        "url", "http://localhost:8584/",
        "token", "0123456789abcdef0123",
        "autostart", "false",
        "node", "/opt/node/bin/node",
        "connectTimeout", "PT0.5S"
    ));
    assertEquals(URI.create("http://localhost:8584"), c.baseUri());
    assertEquals(URI.create("http://localhost:8584"), c.baseUri(SidecarRole.CLUSTER));
    assertEquals("0123456789abcdef0123", c.getToken().getPassword());
    assertEquals(Boolean.FALSE, c.getAutostart());
    assertEquals("/opt/node/bin/node", c.getNode());
    assertEquals(Duration.ofMillis(500), c.connectTimeout());
  }

  @Test
  void theTokenIsADruidPasswordProvider()
  {
    final SidecarConfig c = config(Map.of("token", Map.of("type", "environment", "variable", "DRUID_BACKUP_TEST_TOKEN_UNSET")));
    assertInstanceOf(EnvironmentVariablePasswordProvider.class, c.getToken());
    final SidecarConfig d = config(Map.of("token", Map.of("type", "default", "password", "0123456789abcdef")));
    assertEquals("0123456789abcdef", d.getToken().getPassword());
  }

  @Test
  void badValuesAreRefusedNamingTheKey()
  {
    final IllegalArgumentException url = assertThrows(IllegalArgumentException.class, () -> config(Map.of("url", "8484")).baseUri());
    assertTrue(url.getMessage().startsWith("druid.backup.sidecar.url=8484"), url.getMessage());
    assertThrows(IllegalArgumentException.class, () -> config(Map.of("autostart", "sometimes")));
    final IllegalArgumentException timeout = assertThrows(IllegalArgumentException.class, () -> config(Map.of("connectTimeout", "PT0S")).connectTimeout());
    assertTrue(timeout.getMessage().startsWith("druid.backup.sidecar.connectTimeout"), timeout.getMessage());
  }

  @Test
  void theTokenFallsBackToTheSidecarsOwnKeyThenToAGeneratedOne()
  {
    final Properties props = new Properties();
    final SidecarToken none = new SidecarToken(config(Map.of()), props);
    assertEquals(false, none.isConfigured());
    assertNull(none.current());
    final String generated = none.generate();
    assertEquals(64, generated.length());
    assertEquals(generated, none.current());

    props.setProperty("druid.backup.token", " fromTheSidecarKey0123 ");
    final SidecarToken own = new SidecarToken(config(Map.of()), props);
    assertEquals("fromTheSidecarKey0123", own.current());

    final SidecarToken configured = new SidecarToken(config(Map.of("token", "fromTheExtensionKey01")), props);
    assertEquals("fromTheExtensionKey01", configured.current());
    assertTrue(configured.isConfigured());
  }
}
