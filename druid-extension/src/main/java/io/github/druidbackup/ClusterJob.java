package io.github.druidbackup;

import com.fasterxml.jackson.databind.node.ObjectNode;

import javax.annotation.Nullable;
import java.time.Instant;
import java.util.List;

/** A backup or restore the Coordinator fanned out: the job each data node runs for its share. */
record ClusterJob(String id, String type, ObjectNode request, Instant createdAt, List<Part> parts)
{
  /** One node's share: the job it accepted, or why it did not start one. */
  record Part(String node, String baseUrl, int segments, @Nullable String jobId, @Nullable String startError)
  {
  }
}
