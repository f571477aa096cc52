package io.github.druidbackup;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JettyCompressionTest
{
  @Test
  void eventsAndSegmentTarsStreamAsTheyAreJsonMayBeCompressed()
  {
    assertTrue(JettyCompression.keepsUncompressed("text/event-stream; charset=utf-8"));
    assertTrue(JettyCompression.keepsUncompressed("application/x-tar"));
    assertTrue(JettyCompression.keepsUncompressed(" Application/Octet-Stream "));
    assertFalse(JettyCompression.keepsUncompressed("application/json; charset=utf-8"));
    assertFalse(JettyCompression.keepsUncompressed(null));
    assertTrue(JettyCompression.isEventStream("text/event-stream; charset=utf-8"));
    assertFalse(JettyCompression.isEventStream("application/x-tar"));
  }
}
