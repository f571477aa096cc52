package io.github.druidbackup;

import com.fasterxml.jackson.databind.InjectableValues;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.druid.jackson.DefaultObjectMapper;
import org.apache.druid.timeline.DataSegment;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SegmentRowsResourceTest
{
  /** Druid's own mapper as the @Json one is made: DataSegment needs its PruneSpecsHolder injected. */
  private static final ObjectMapper MAPPER = new DefaultObjectMapper().setInjectableValues(
      new InjectableValues.Std().addValue(DataSegment.PruneSpecsHolder.class, DataSegment.PruneSpecsHolder.DEFAULT)
  );

  private static String segment(String dataSource, String day, int partition, String loadSpec)
  {
    return "{\"dataSource\":\"" + dataSource + "\",\"interval\":\"2015-09-" + day + "T00:00:00.000Z/2015-09-"
           + (Integer.parseInt(day) + 1) + "T00:00:00.000Z\",\"version\":\"2024-01-01T00:00:00.000Z\","
           + (loadSpec == null ? "" : "\"loadSpec\":" + loadSpec + ",")
           + "\"dimensions\":\"page,user\",\"metrics\":\"count\","
           + "\"shardSpec\":{\"type\":\"numbered\",\"partitionNum\":" + partition + ",\"partitions\":0},"
           + "\"binaryVersion\":9,\"size\":1234}";
  }

  private static final String LOCAL = "{\"type\":\"local\",\"path\":\"/deep/wikipedia/x/0/index.zip\"}";

  private static SegmentRowsResource.Request parse(String body)
  {
    return SegmentRowsResource.parse(body.getBytes(StandardCharsets.UTF_8), MAPPER);
  }

  private static String refusal(String body)
  {
    final ApiException e = assertThrows(ApiException.class, () -> parse(body));
    assertEquals(400, e.status());
    return e.getMessage();
  }

  @Test
  void descriptorsAreReadAsDruidReadsThem()
  {
    final SegmentRowsResource.Request r = parse(
        "{\"dataSource\":\"wikipedia\",\"segments\":[" + segment("wikipedia", "12", 0, LOCAL) + ","
        + segment("wikipedia", "12", 1, LOCAL) + "]}"
    );
    assertEquals("wikipedia", r.dataSource);
    final List<String> ids = new ArrayList<>();
    for (DataSegment s : r.segments) {
      ids.add(s.getId().toString());
    }
    assertEquals(
        List.of(
            "wikipedia_2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z_2024-01-01T00:00:00.000Z",
            "wikipedia_2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z_2024-01-01T00:00:00.000Z_1"
        ),
        ids
    );
    assertEquals("/deep/wikipedia/x/0/index.zip", r.segments.iterator().next().getLoadSpec().get("path"));
  }

  @Test
  void badRequestsAreRefusedSayingWhy()
  {
    assertEquals("the body is not JSON", refusal("{"));
    assertEquals("the body is {\"dataSource\": name, \"segments\": [descriptors]}", refusal("[]"));
    assertEquals("unknown field \"sql\"", refusal("{\"dataSource\":\"w\",\"segments\":[],\"sql\":\"DROP\"}"));
    assertEquals("dataSource must be a name of 1 to 1024 characters", refusal("{\"segments\":[]}"));
    assertEquals("dataSource must be a name of 1 to 1024 characters", refusal("{\"dataSource\":\" \",\"segments\":[]}"));
    assertEquals(
        "dataSource must be a name of 1 to 1024 characters",
        refusal("{\"dataSource\":\"" + "x".repeat(1025) + "\",\"segments\":[]}")
    );
    assertEquals("segments must be a list of one or more descriptors", refusal("{\"dataSource\":\"w\",\"segments\":[]}"));
    assertEquals("segments must be a list of one or more descriptors", refusal("{\"dataSource\":\"w\",\"segments\":{}}"));
    assertEquals("segments[0] is not a descriptor object", refusal("{\"dataSource\":\"w\",\"segments\":[1]}"));
    assertEquals(
        "segments[0] is not a segment descriptor Druid reads",
        refusal("{\"dataSource\":\"w\",\"segments\":[{\"dataSource\":\"w\",\"interval\":\"not an interval\"}]}")
    );
    // A descriptor of another data source cannot ride on the permission checked for this one.
    assertEquals(
        "segments[1] is not a segment of \"wikipedia\"",
        refusal("{\"dataSource\":\"wikipedia\",\"segments\":[" + segment("wikipedia", "12", 0, LOCAL) + ","
                + segment("other", "12", 0, LOCAL) + "]}")
    );
    assertEquals(
        "segments[0] has no loadSpec with a type: Druid could not load it",
        refusal("{\"dataSource\":\"w\",\"segments\":[" + segment("w", "12", 0, null) + "]}")
    );
    assertEquals(
        "segments[0] has no loadSpec with a type: Druid could not load it",
        refusal("{\"dataSource\":\"w\",\"segments\":[" + segment("w", "12", 0, "{\"path\":\"/x\"}") + "]}")
    );
    assertEquals(
        "segments[1] repeats segment w_2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z_2024-01-01T00:00:00.000Z",
        refusal("{\"dataSource\":\"w\",\"segments\":[" + segment("w", "12", 0, LOCAL) + "," + segment("w", "12", 0, LOCAL) + "]}")
    );
    final StringBuilder many = new StringBuilder("{\"dataSource\":\"w\",\"segments\":[");
    for (int i = 0; i <= SegmentRowsResource.MAX_SEGMENTS; i++) {
      many.append(i == 0 ? "" : ",").append(segment("w", "12", i, LOCAL));
    }
    assertEquals("at most 500 segments per call", refusal(many.append("]}").toString()));
  }

  @Test
  void aBodyBeyondTheLimitIsRefusedAsItArrives()
  {
    final ApiException e = assertThrows(
        ApiException.class,
        () -> SegmentRowsResource.readLimited(new ByteArrayInputStream(new byte[SegmentRowsResource.MAX_BODY_BYTES + 1]))
    );
    assertEquals(413, e.status());
    assertEquals(3, SegmentRowsResource.readLimited(new ByteArrayInputStream(new byte[3])).length);
    assertEquals(400, assertThrows(ApiException.class, () -> SegmentRowsResource.readLimited(null)).status());
  }

  @Test
  void theAnswerPutsEachIdAskedUnderInsertedOrPresent()
  {
    final SegmentRowsResource.Request r = parse(
        "{\"dataSource\":\"w\",\"segments\":[" + segment("w", "12", 0, LOCAL) + "," + segment("w", "13", 0, LOCAL) + "]}"
    );
    final Iterator<DataSegment> it = r.segments.iterator();
    final DataSegment first = it.next();
    final DataSegment second = it.next();
    final ObjectNode out = SegmentRowsResource.answer(r, Set.of(second));
    assertEquals("w", out.get("dataSource").asText());
    assertEquals(second.getId().toString(), out.get("inserted").get(0).asText());
    assertEquals(1, out.get("inserted").size());
    assertEquals(first.getId().toString(), out.get("present").get(0).asText());
    assertEquals(1, out.get("present").size());
  }
}
