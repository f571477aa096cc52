package io.github.druidbackup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClusterJobViewTest
{
  private static JsonNode json(String s) throws IOException
  {
    return JsonErrors.MAPPER.readTree(s);
  }

  private static JsonNode nodeJob(String state, int total, int done, long bytes, String startedAt, String finishedAt, String errors)
      throws IOException
  {
    return json(
        "{\"id\":\"j\",\"state\":\"" + state + "\",\"progress\":{\"segmentsTotal\":" + total + ",\"segmentsDone\":" + done
        + ",\"segmentsSkipped\":1,\"segmentsFailed\":0,\"bytesTotal\":" + bytes + ",\"bytesDone\":" + bytes
        + ",\"current\":\"seg\"},\"errors\":" + errors + ",\"startedAt\":\"" + startedAt + "\""
        + (finishedAt == null ? "" : ",\"finishedAt\":\"" + finishedAt + "\"") + "}"
    );
  }

  private static ClusterJob job(ClusterJob.Part... parts) throws IOException
  {
    return new ClusterJob(
        "cluster-1",
        "backup",
        (ObjectNode) json("{\"target\":\"http://t:8484\",\"dataSource\":\"wikipedia\"}"),
        Instant.parse("2025-01-01T00:00:00Z"),
        List.of(parts)
    );
  }

  private static final ClusterJob.Part H1 = new ClusterJob.Part("h1:8083", "http://h1:8083", 3, "j1", null);
  private static final ClusterJob.Part H2 = new ClusterJob.Part("h2:8083", "http://h2:8083", 2, "j2", null);

  @Test
  void progressIsTheSumOfTheNodesAndErrorsNameTheirNode() throws IOException
  {
    final Map<String, ClusterJobView.NodeAnswer> answers = new LinkedHashMap<>();
    answers.put("h1:8083", new ClusterJobView.NodeAnswer(
        nodeJob("succeeded", 3, 3, 100, "2025-01-01T00:00:02Z", "2025-01-01T00:00:09Z", "[]"), null));
    answers.put("h2:8083", new ClusterJobView.NodeAnswer(
        nodeJob("failed", 2, 1, 50, "2025-01-01T00:00:01Z", "2025-01-01T00:00:05Z", "[{\"segmentId\":\"s2\",\"message\":\"target refused\"}]"), null));
    final ObjectNode v = ClusterJobView.of(job(H1, H2), answers);
    assertEquals("cluster-1", v.get("id").asText());
    assertEquals("backup", v.get("type").asText());
    assertEquals("http://t:8484", v.get("target").asText());
    assertEquals("failed", v.get("state").asText());
    assertEquals(5, v.at("/progress/segmentsTotal").asInt());
    assertEquals(4, v.at("/progress/segmentsDone").asInt());
    assertEquals(2, v.at("/progress/segmentsSkipped").asInt());
    assertEquals(150, v.at("/progress/bytesDone").asLong());
    assertFalse(v.get("progress").has("current"), "a text field is not summed");
    assertEquals("s2", v.at("/errors/0/segmentId").asText());
    assertEquals("h2:8083: target refused", v.at("/errors/0/message").asText());
    assertEquals("2025-01-01T00:00:01Z", v.get("startedAt").asText());
    assertEquals("2025-01-01T00:00:09Z", v.get("finishedAt").asText());
    assertEquals("succeeded", v.at("/nodes/0/state").asText());
    assertEquals("j2", v.at("/nodes/1/jobId").asText());
    assertEquals(3, v.at("/nodes/0/progress/segmentsDone").asInt());
  }

  @Test
  void oneStateForTheCluster() throws IOException
  {
    assertEquals("succeeded", stateOf("succeeded", "succeeded"));
    assertEquals("running", stateOf("succeeded", "running"));
    assertEquals("running", stateOf("queued", "succeeded"));
    assertEquals("queued", stateOf("queued", "queued"));
    assertEquals("running", stateOf("failed", "running"));
    assertEquals("failed", stateOf("failed", "cancelled"));
    assertEquals("cancelled", stateOf("succeeded", "cancelled"));
  }

  private static String stateOf(String a, String b) throws IOException
  {
    final Map<String, ClusterJobView.NodeAnswer> answers = Map.of(
        "h1:8083", new ClusterJobView.NodeAnswer(nodeJob(a, 1, 1, 1, "2025-01-01T00:00:01Z", null, "[]"), null),
        "h2:8083", new ClusterJobView.NodeAnswer(nodeJob(b, 1, 1, 1, "2025-01-01T00:00:01Z", null, "[]"), null)
    );
    return ClusterJobView.of(job(H1, H2), answers).get("state").asText();
  }

  @Test
  void aNodeThatDidNotStartOrDoesNotAnswerIsShownAsSuch() throws IOException
  {
    final ClusterJob.Part refused = new ClusterJob.Part("h3:8083", "http://h3:8083", 4, null, "HTTP 503: sidecar down");
    final Map<String, ClusterJobView.NodeAnswer> answers = Map.of(
        "h1:8083", new ClusterJobView.NodeAnswer(nodeJob("succeeded", 3, 3, 10, "2025-01-01T00:00:01Z", "2025-01-01T00:00:02Z", "[]"), null),
        "h2:8083", new ClusterJobView.NodeAnswer(null, "data node h2:8083 does not answer (refused)")
    );
    final ObjectNode v = ClusterJobView.of(job(H1, H2, refused), answers);
    assertEquals("running", v.get("state").asText(), "an unreachable node's job may still be running");
    assertFalse(v.has("finishedAt"));
    assertEquals("unknown", v.at("/nodes/1/state").asText());
    assertTrue(v.at("/nodes/1/error").asText().contains("does not answer"));
    assertEquals("failed", v.at("/nodes/2/state").asText());
    assertEquals("h3:8083: HTTP 503: sidecar down", v.at("/errors/0/message").asText());
    assertEquals(3, v.at("/progress/segmentsTotal").asInt());

    final ObjectNode settled = ClusterJobView.of(job(H1, refused), answers);
    assertEquals("failed", settled.get("state").asText());
  }
}
