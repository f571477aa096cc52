package io.github.druidbackup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import javax.annotation.Nullable;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A cluster job as one sidecar job: the nodes' progress summed, their errors prefixed with the node, one state,
 * and each node's own state under {@code nodes}. Pure: the answers are gathered by the caller.
 */
final class ClusterJobView
{
  /** What a node said about its job: the job JSON, or why there is none. */
  record NodeAnswer(@Nullable JsonNode job, @Nullable String error)
  {
  }

  private static final List<String> PROGRESS_FIELDS =
      List.of("segmentsTotal", "segmentsDone", "segmentsSkipped", "segmentsFailed", "bytesTotal", "bytesDone");
  private static final Set<String> FINISHED = Set.of("succeeded", "failed", "cancelled");

  private ClusterJobView()
  {
  }

  static ObjectNode of(ClusterJob job, Map<String, NodeAnswer> answers)
  {
    final ObjectNode out = JsonErrors.MAPPER.createObjectNode();
    out.put("id", job.id());
    out.put("type", job.type());
    final JsonNode target = job.request().get("target");
    if (target != null && target.isTextual()) {
      out.put("target", target.asText());
    }
    out.set("request", job.request());
    final ObjectNode progress = out.putObject("progress");
    PROGRESS_FIELDS.forEach(f -> progress.put(f, 0L));
    final ArrayNode errors = out.putArray("errors");
    final ArrayNode nodes = JsonErrors.MAPPER.createArrayNode();

    int queued = 0;
    int open = 0;
    int failed = 0;
    int cancelled = 0;
    Instant startedAt = null;
    Instant finishedAt = null;
    for (ClusterJob.Part part : job.parts()) {
      final ObjectNode n = nodes.addObject();
      n.put("node", part.node());
      n.put("segments", part.segments());
      if (part.jobId() == null) {
        n.put("state", "failed");
        n.put("error", part.startError());
        errors.addObject().put("message", part.node() + ": " + part.startError());
        failed++;
        continue;
      }
      n.put("jobId", part.jobId());
      final NodeAnswer answer = answers.get(part.node());
      if (answer == null || answer.job() == null) {
        n.put("state", "unknown");
        n.put("error", answer == null ? "not asked" : answer.error());
        open++;
        continue;
      }
      final JsonNode nodeJob = answer.job();
      final String state = nodeJob.path("state").asText("unknown");
      n.put("state", state);
      if (nodeJob.has("progress")) {
        n.set("progress", nodeJob.get("progress"));
        addNumbers(progress, nodeJob.get("progress"));
      }
      for (JsonNode e : nodeJob.path("errors")) {
        final ObjectNode copy = e.isObject() ? ((ObjectNode) e).deepCopy() : JsonErrors.MAPPER.createObjectNode();
        copy.put("message", part.node() + ": " + e.path("message").asText(e.asText()));
        errors.add(copy);
      }
      switch (state) {
        case "queued" -> queued++;
        case "failed" -> failed++;
        case "cancelled" -> cancelled++;
        case "succeeded" -> {
        }
        default -> open++;
      }
      startedAt = earliest(startedAt, instant(nodeJob.get("startedAt")));
      if (FINISHED.contains(state)) {
        finishedAt = latest(finishedAt, instant(nodeJob.get("finishedAt")));
      }
    }

    final int parts = job.parts().size();
    final String state;
    if (parts > 0 && queued == parts) {
      state = "queued";
    } else if (queued + open > 0) {
      state = "running";
    } else if (failed > 0) {
      state = "failed";
    } else if (cancelled > 0) {
      state = "cancelled";
    } else {
      state = "succeeded";
    }
    out.put("state", state);
    out.put("createdAt", job.createdAt().toString());
    if (startedAt != null) {
      out.put("startedAt", startedAt.toString());
    }
    if (FINISHED.contains(state) && finishedAt != null) {
      out.put("finishedAt", finishedAt.toString());
    }
    out.set("nodes", nodes);
    return out;
  }

  /** Adds every number of {@code from} to the same field of {@code into}: fields the sidecar adds later sum too. */
  private static void addNumbers(ObjectNode into, JsonNode from)
  {
    final Iterator<Map.Entry<String, JsonNode>> fields = from.fields();
    while (fields.hasNext()) {
      final Map.Entry<String, JsonNode> f = fields.next();
      if (f.getValue().isIntegralNumber()) {
        into.put(f.getKey(), into.path(f.getKey()).asLong(0) + f.getValue().asLong());
      }
    }
  }

  @Nullable
  private static Instant instant(@Nullable JsonNode node)
  {
    if (node == null || !node.isTextual()) {
      return null;
    }
    try {
      return Instant.parse(node.asText());
    }
    catch (DateTimeParseException e) {
      return null;
    }
  }

  @Nullable
  private static Instant earliest(@Nullable Instant a, @Nullable Instant b)
  {
    return a == null ? b : b == null ? a : a.isBefore(b) ? a : b;
  }

  @Nullable
  private static Instant latest(@Nullable Instant a, @Nullable Instant b)
  {
    return a == null ? b : b == null ? a : a.isAfter(b) ? a : b;
  }
}
