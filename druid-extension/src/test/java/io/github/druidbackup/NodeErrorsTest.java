package io.github.druidbackup;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class NodeErrorsTest
{
  @Test
  void theSidecarsJsonErrorIsKeptAndAnythingElseBecomesText()
  {
    assertEquals(
        new NodeErrors.NodeError("bad_request", "unknown field \"targte\""),
        NodeErrors.parse(400, "{\"error\":{\"code\":\"bad_request\",\"message\":\"unknown field \\\"targte\\\"\"}}")
    );
    assertEquals(new NodeErrors.NodeError("node_error", "HTTP 500: <html>boom</html>"), NodeErrors.parse(500, " <html>boom</html>\n"));
    assertEquals(new NodeErrors.NodeError("node_error", "HTTP 502"), NodeErrors.parse(502, ""));
    assertEquals(303, NodeErrors.parse(500, "x".repeat(1000)).message().length() - "HTTP 500: ".length());
  }
}
