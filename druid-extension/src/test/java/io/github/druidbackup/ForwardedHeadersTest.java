package io.github.druidbackup;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ForwardedHeadersTest
{
  private static final Set<String> NONE = Set.of();

  @Test
  void clientCredentialsAndHopByHopHeadersStayOnDruidsSide()
  {
    for (String h : new String[]{"Authorization", "Cookie", "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Expect", "Upgrade", "TE", "Proxy-Authorization", "X-Forwarded-For", "Accept-Encoding"}) {
      assertFalse(ForwardedHeaders.toSidecar(h, NONE), h);
    }
  }

  @Test
  void whatTheSidecarReadsGoesThrough()
  {
    for (String h : new String[]{"Content-Type", "Accept", "X-Druid-Backup-Node", "Last-Event-ID", "If-None-Match", "User-Agent"}) {
      assertTrue(ForwardedHeaders.toSidecar(h, NONE), h);
    }
  }

  @Test
  void headersNamedByConnectionAreHopByHop()
  {
    final Set<String> tokens = ForwardedHeaders.connectionTokens(List.of("keep-alive, X-Trace", " close"));
    assertEquals(Set.of("keep-alive", "x-trace", "close"), tokens);
    assertFalse(ForwardedHeaders.toSidecar("X-Trace", tokens));
    assertFalse(ForwardedHeaders.toClient("x-trace", tokens));
    assertTrue(ForwardedHeaders.connectionTokens(null).isEmpty());
  }

  @Test
  void theSidecarsChallengeAndFramingStayOnItsSide()
  {
    for (String h : new String[]{"WWW-Authenticate", "Set-Cookie", "Transfer-Encoding", "Connection", "Date", "Server", ":status"}) {
      assertFalse(ForwardedHeaders.toClient(h, NONE), h);
    }
    for (String h : new String[]{"Content-Type", "Content-Length", "X-Druid-Backup-Digest", "X-Druid-Backup-Sources", "Cache-Control", "Content-Disposition"}) {
      assertTrue(ForwardedHeaders.toClient(h, NONE), h);
    }
  }
}
