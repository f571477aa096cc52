package io.github.druidbackup;

import org.junit.jupiter.api.Test;

import java.net.URI;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SidecarUrlsTest
{
  @Test
  void baseUrlLosesTrailingSlashesAndKeepsAPathPrefix()
  {
    assertEquals(URI.create("http://127.0.0.1:8484"), SidecarUrls.parseBase("http://127.0.0.1:8484/"));
    assertEquals(URI.create("https://backup.example:9443/sidecar"), SidecarUrls.parseBase(" HTTPS://backup.example:9443/sidecar// "));
  }

  @Test
  void badBaseUrlsAreRefusedNamingTheKey()
  {
    for (String bad : new String[]{"", "127.0.0.1:8484", "ftp://host/", "http://user:pw@host:8484", "http://host:8484/?a=b", "http:///x", "http://host:8484/#f"}) {
      final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SidecarUrls.parseBase(bad), bad);
      assertTrue(e.getMessage().startsWith("druid.backup.sidecar.url"), e.getMessage());
    }
  }

  @Test
  void portIsExplicitOrTheSchemeDefault()
  {
    assertEquals(8484, SidecarUrls.port(URI.create("http://127.0.0.1:8484")));
    assertEquals(80, SidecarUrls.port(URI.create("http://localhost")));
    assertEquals(443, SidecarUrls.port(URI.create("https://localhost")));
  }

  @Test
  void onlyLoopbackAddressesAreLocal()
  {
    assertTrue(SidecarUrls.isLocal(URI.create("http://127.0.0.1:8484")));
    assertTrue(SidecarUrls.isLocal(URI.create("http://127.0.1.1:8484")));
    assertTrue(SidecarUrls.isLocal(URI.create("http://localhost:8484")));
    assertTrue(SidecarUrls.isLocal(URI.create("http://[::1]:8484")));
    assertFalse(SidecarUrls.isLocal(URI.create("http://10.0.0.7:8484")));
    assertFalse(SidecarUrls.isLocal(URI.create("http://backup.example:8484")));
  }

  @Test
  void upstreamKeepsTheRawPathAndQuery()
  {
    final URI base = SidecarUrls.parseBase("http://127.0.0.1:8484");
    assertEquals(
        URI.create("http://127.0.0.1:8484/data/v1/store/segments/wiki_2015-09-12T00%3A00%3A00.000Z_x?limit=5&cursor=a%2Bb"),
        SidecarUrls.upstream(base, "/data/v1/store/segments/wiki_2015-09-12T00%3A00%3A00.000Z_x", "limit=5&cursor=a%2Bb")
    );
    assertEquals(URI.create("http://127.0.0.1:8484/data/v1/backup"), SidecarUrls.upstream(base, "/data/v1/backup", null));
    assertEquals(
        URI.create("http://h:1/prefix/data/v1/jobs"),
        SidecarUrls.upstream(SidecarUrls.parseBase("http://h:1/prefix/"), "/data/v1/jobs", "")
    );
  }

  @Test
  void pathsOutsideTheApiOrWithDotSegmentsAreRefused()
  {
    for (String bad : new String[]{"/status", "/data/v10/x", "/data/v1/../status", "/data/v1/%2e%2E/x", "/data/v1/./jobs", "/data/v1//jobs", "/data/v1/a%5cb", null}) {
      assertThrows(IllegalArgumentException.class, () -> SidecarUrls.checkApiPath(bad), String.valueOf(bad));
    }
    assertEquals("/data/v1/jobs/", SidecarUrls.checkApiPath("/data/v1/jobs/"));
    assertEquals("/data/v1", SidecarUrls.checkApiPath("/data/v1"));
    assertEquals("/data/v1/segments..old", SidecarUrls.checkApiPath("/data/v1/segments..old"));
  }
}
