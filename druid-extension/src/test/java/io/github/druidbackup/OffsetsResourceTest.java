package io.github.druidbackup;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.druid.indexing.kafka.KafkaDataSourceMetadata;
import org.apache.druid.indexing.kafka.KafkaIndexTaskModule;
import org.apache.druid.indexing.overlord.DataSourceMetadata;
import org.apache.druid.indexing.overlord.ObjectMetadata;
import org.apache.druid.indexing.overlord.supervisor.NoopSupervisorSpec;
import org.apache.druid.indexing.overlord.supervisor.Supervisor;
import org.apache.druid.indexing.overlord.supervisor.SupervisorSpec;
import org.apache.druid.jackson.DefaultObjectMapper;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class OffsetsResourceTest
{
  /** Druid's own mapper, as the Overlord injects it: it knows ObjectMetadata ("object") without any extension. */
  private static final ObjectMapper MAPPER = new DefaultObjectMapper();

  @Test
  void theDataSourcesAskedAreNamedAndBounded()
  {
    assertNull(OffsetsResource.check(List.of("wikipedia", "demo")));
    assertEquals("name the data sources: ?dataSource=a&dataSource=b", OffsetsResource.check(List.of()));
    assertEquals("name the data sources: ?dataSource=a&dataSource=b", OffsetsResource.check(null));
    assertEquals("at most 1000 data sources per call", OffsetsResource.check(Collections.nCopies(1001, "d")));
    assertEquals("a data source name is empty or longer than 1024 characters", OffsetsResource.check(List.of("a", " ")));
    assertEquals("a data source name is empty or longer than 1024 characters", OffsetsResource.check(List.of("x".repeat(1025))));
  }

  private static OffsetsResource.Write parse(String json)
  {
    return OffsetsResource.parse(json.getBytes(StandardCharsets.UTF_8), MAPPER);
  }

  private static String refused(String json)
  {
    final ApiException e = assertThrows(ApiException.class, () -> parse(json));
    assertEquals(400, e.status());
    return e.getMessage();
  }

  @Test
  void aWriteIsReadAsDruidWroteTheMetadata()
  {
    final OffsetsResource.Write w = parse("{\"dataSource\":\"demo\",\"metadata\":{\"type\":\"object\",\"object\":{\"p0\":42}}}");
    assertEquals("demo", w.dataSource);
    assertEquals(new ObjectMetadata(Map.of("p0", 42)), w.metadata);
  }

  @Test
  void aBadWriteIsRefusedWithItsReason()
  {
    assertEquals("the body is not JSON", refused("{"));
    assertEquals("the body is {\"dataSource\": name, \"metadata\": {committed metadata}}", refused("[]"));
    assertEquals("unknown field \"extra\"", refused("{\"dataSource\":\"d\",\"metadata\":{\"type\":\"object\"},\"extra\":1}"));
    assertEquals("dataSource must be a name", refused("{\"metadata\":{\"type\":\"object\"}}"));
    assertEquals("dataSource must be a name", refused("{\"dataSource\":7,\"metadata\":{\"type\":\"object\"}}"));
    assertEquals("a data source name is empty or longer than 1024 characters", refused("{\"dataSource\":\" \",\"metadata\":{\"type\":\"object\"}}"));
    assertEquals("metadata must be an object with a type, as Druid wrote it", refused("{\"dataSource\":\"d\"}"));
    assertEquals("metadata must be an object with a type, as Druid wrote it", refused("{\"dataSource\":\"d\",\"metadata\":{\"object\":1}}"));
    // A stream type whose extension is not loaded: Druid cannot read it, so nothing is written.
    assertEquals(
        "metadata is not committed metadata Druid reads (is the extension of its type, such as druid-kafka-indexing-service, loaded on this Overlord?)",
        refused("{\"dataSource\":\"d\",\"metadata\":{\"type\":\"kafka\",\"partitions\":{}}}")
    );
  }

  @Test
  void theAnswerKeepsEachMetadataTypeSoItCanBeWrittenBack() throws Exception
  {
    final Map<String, DataSourceMetadata> m = new LinkedHashMap<>();
    m.put("demo", new ObjectMetadata(Map.of("p0", 42)));
    m.put("none", null);
    final String answer = OffsetsResource.answer(m, MAPPER);
    assertEquals("{\"dataSources\":{\"demo\":{\"type\":\"object\",\"object\":{\"p0\":42}},\"none\":null}}", answer);
    // What the snapshot keeps is what a restore posts: Druid reads it back as the same metadata.
    final String kept = MAPPER.readTree(answer).get("dataSources").get("demo").toString();
    assertEquals(m.get("demo"), parse("{\"dataSource\":\"demo\",\"metadata\":" + kept + "}").metadata);
  }

  @Test
  void theSameMetadataIsLeftAloneOtherMetadataIsResetNoneIsInserted()
  {
    final DataSourceMetadata a = new ObjectMetadata(Map.of("p0", 42, "p1", 7));
    final Map<String, Object> reordered = new LinkedHashMap<>();
    reordered.put("p1", 7);
    reordered.put("p0", 42);
    assertEquals("inserted", OffsetsResource.outcome(null, a, MAPPER));
    assertEquals("unchanged", OffsetsResource.outcome(a, new ObjectMetadata(reordered), MAPPER));
    assertEquals("reset", OffsetsResource.outcome(a, new ObjectMetadata(Map.of("p0", 43, "p1", 7)), MAPPER));
  }

  @Test
  void kafkasOwnCommittedMetadataIsReadComparedAndAnsweredWithItsType() throws Exception
  {
    // The Overlord's mapper with the Kafka extension loaded: its Jackson modules registered.
    final ObjectMapper kafka = new DefaultObjectMapper();
    kafka.registerModules(new KafkaIndexTaskModule().getJacksonModules());
    final String committed = "{\"type\":\"kafka\",\"partitions\":{\"type\":\"end\",\"stream\":\"wiki\","
                             + "\"partitionOffsetMap\":{\"0\":42,\"1\":7}}}";
    final DataSourceMetadata m = OffsetsResource.parse(("{\"dataSource\":\"wiki\",\"metadata\":" + committed + "}").getBytes(StandardCharsets.UTF_8), kafka).metadata;
    assertInstanceOf(KafkaDataSourceMetadata.class, m);
    final DataSourceMetadata same = OffsetsResource.parse(
        ("{\"dataSource\":\"wiki\",\"metadata\":{\"partitions\":{\"partitionOffsetMap\":{\"1\":7,\"0\":42},"
         + "\"stream\":\"wiki\",\"type\":\"end\"},\"type\":\"kafka\"}}").getBytes(StandardCharsets.UTF_8),
        kafka
    ).metadata;
    final DataSourceMetadata later = OffsetsResource.parse(
        ("{\"dataSource\":\"wiki\",\"metadata\":" + committed.replace("42", "43") + "}").getBytes(StandardCharsets.UTF_8),
        kafka
    ).metadata;
    assertEquals("unchanged", OffsetsResource.outcome(m, same, kafka));
    assertEquals("reset", OffsetsResource.outcome(m, later, kafka));
    // Answered with its type, it is read back as the same metadata: what a snapshot keeps, a restore can write.
    final String kept = kafka.readTree(OffsetsResource.answer(Map.of("wiki", m), kafka)).get("dataSources").get("wiki").toString();
    assertEquals("kafka", kafka.readTree(kept).get("type").asText());
    assertEquals(m, OffsetsResource.parse(("{\"dataSource\":\"wiki\",\"metadata\":" + kept + "}").getBytes(StandardCharsets.UTF_8), kafka).metadata);
  }

  private static SupervisorSpec spec(String id, List<String> dataSources, boolean suspended)
  {
    return new SupervisorSpec()
    {
      @Override
      public String getId()
      {
        return id;
      }

      @Override
      public Supervisor createSupervisor()
      {
        throw new UnsupportedOperationException();
      }

      @Override
      public List<String> getDataSources()
      {
        return dataSources;
      }

      @Override
      public boolean isSuspended()
      {
        return suspended;
      }

      @Override
      public String getType()
      {
        return "test";
      }

      @Override
      public String getSource()
      {
        return "stream";
      }
    };
  }

  @Test
  void onlyARunningSupervisorOfTheDataSourceRefusesTheWrite()
  {
    final Map<String, SupervisorSpec> latest = new LinkedHashMap<>();
    assertNull(OffsetsResource.runningSupervisors("demo", latest), "no supervisor at all");
    latest.put("suspended", spec("suspended", List.of("demo"), true));
    latest.put("terminated", new NoopSupervisorSpec("terminated", List.of("demo")));
    latest.put("other", spec("other", List.of("other"), false));
    assertNull(OffsetsResource.runningSupervisors("demo", latest), "suspended, terminated or of another data source");
    latest.put("b-live", spec("b-live", List.of("demo"), false));
    latest.put("a-live", spec("a-live", List.of("x", "demo"), false));
    assertEquals("a-live, b-live", OffsetsResource.runningSupervisors("demo", latest));
  }
}
