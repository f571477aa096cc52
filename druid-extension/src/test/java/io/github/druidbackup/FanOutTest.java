package io.github.druidbackup;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.joda.time.Interval;
import org.joda.time.chrono.ISOChronology;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FanOutTest
{
  private static FanOut.ServedSegment seg(String ds, String day)
  {
    final Interval i = new Interval(day + "/P1D", ISOChronology.getInstanceUTC());
    return new FanOut.ServedSegment(ds + "_" + i.getStart() + "_" + i.getEnd() + "_v1", ds, i);
  }

  private static final FanOut.ServedSegment W12 = seg("wikipedia", "2015-09-12");
  private static final FanOut.ServedSegment W13 = seg("wikipedia", "2015-09-13");
  private static final FanOut.ServedSegment K12 = seg("koala_logs", "2015-09-12");
  private static final List<FanOut.DataNode> NODES = List.of(
      new FanOut.DataNode("h2:8083", "http://h2:8083", List.of(W13, K12)),
      new FanOut.DataNode("h1:8083", "http://h1:8083", List.of(W12, W13)),
      new FanOut.DataNode("h3:8083", "http://h3:8083", List.of(K12))
  );

  private static SegmentSelector selector(String json) throws Exception
  {
    return SegmentSelector.fromRequest((ObjectNode) JsonErrors.MAPPER.readTree(json));
  }

  @Test
  void everyNodeServingASelectedSegmentGetsItReplicasIncluded() throws Exception
  {
    final List<FanOut.Assignment> a = FanOut.assign(selector("{\"target\":\"http://t:8484\",\"dataSource\":\"wikipedia\"}"), NODES);
    assertEquals(2, a.size());
    assertEquals("h1:8083", a.get(0).node());
    assertEquals("http://h1:8083", a.get(0).baseUrl());
    assertEquals(List.of(W12.id(), W13.id()), a.get(0).segmentIds());
    assertEquals("h2:8083", a.get(1).node());
    assertEquals(List.of(W13.id()), a.get(1).segmentIds());
  }

  @Test
  void allFiltersMustMatch() throws Exception
  {
    final List<FanOut.Assignment> a = FanOut.assign(selector("{\"interval\":\"2015-09-12T06:00Z/2015-09-12T07:00Z\"}"), NODES);
    assertEquals(List.of("h1:8083", "h2:8083", "h3:8083"), a.stream().map(FanOut.Assignment::node).toList());
    assertEquals(List.of(W12.id()), a.get(0).segmentIds());
    assertEquals(List.of(K12.id()), a.get(1).segmentIds());

    final String ids = "{\"dataSource\":\"wikipedia\",\"segmentIds\":[\"" + W13.id() + "\",\"" + K12.id() + "\"]}";
    final List<FanOut.Assignment> b = FanOut.assign(selector(ids), NODES);
    assertEquals(List.of("h1:8083", "h2:8083"), b.stream().map(FanOut.Assignment::node).toList());
    b.forEach(x -> assertEquals(List.of(W13.id()), x.segmentIds()));

    assertTrue(FanOut.assign(selector("{\"interval\":\"2015-09-11/2015-09-12\"}"), NODES).isEmpty(), "abutting is not overlapping");
    assertTrue(FanOut.assign(selector("{\"dataSource\":\"nothing\"}"), NODES).isEmpty());
  }

  @Test
  void eachNodeGetsTheClientsRequestNarrowedToItsSegmentIds() throws Exception
  {
    final ObjectNode client = (ObjectNode) JsonErrors.MAPPER.readTree(
        "{\"target\":\"http://t:8484\",\"dataSource\":\"wikipedia\",\"interval\":\"2015/2016\",\"destination\":\"cache\",\"dryRun\":false}"
    );
    final ObjectNode node = FanOut.nodeRequest(client, List.of("a", "b"));
    assertEquals(
        "{\"target\":\"http://t:8484\",\"destination\":\"cache\",\"dryRun\":false,\"segmentIds\":[\"a\",\"b\"]}",
        JsonErrors.MAPPER.writeValueAsString(node)
    );
    assertEquals("wikipedia", client.get("dataSource").asText(), "the client's request is left as it was");
  }

  @Test
  void badSelectorsAreA400NamingTheField()
  {
    for (String[] c : new String[][]{
        {"{\"dataSource\":7}", "\"dataSource\" must be a string"},
        {"{\"dataSource\":\"\"}", "\"dataSource\" is empty"},
        {"{\"interval\":\"yesterday\"}", "\"interval\" yesterday is not an ISO-8601 interval"},
        {"{\"segmentIds\":\"a\"}", "\"segmentIds\" must be a list"},
        {"{\"segmentIds\":[\"a\",3]}", "\"segmentIds\" must hold segment ids"},
    }) {
      final ApiException e = assertThrows(ApiException.class, () -> selector(c[0]), c[0]);
      assertEquals(400, e.status());
      assertEquals("bad_request", e.code());
      assertTrue(e.getMessage().startsWith(c[1]), e.getMessage());
    }
  }

  @Test
  void describeSaysWhatWasAsked() throws Exception
  {
    assertEquals("every segment", selector("{}").describe());
    assertEquals(
        "dataSource wikipedia, interval 2015-09-12T00:00:00.000Z/2015-09-13T00:00:00.000Z, 1 segment ids",
        selector("{\"dataSource\":\"wikipedia\",\"interval\":\"2015-09-12/2015-09-13\",\"segmentIds\":[\"x\"]}").describe()
    );
  }
}
