package io.github.druidbackup;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.druid.guice.LazySingleton;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/**
 * The cluster jobs this Coordinator started, newest kept. Only the node job ids live here (progress stays with
 * the nodes), so losing them with a Coordinator restart loses no work: each node's job is still at its own port.
 */
@LazySingleton
public class ClusterJobs
{
  static final int RETAINED = 1000;

  private final Map<String, ClusterJob> jobs = new LinkedHashMap<>()
  {
    private static final long serialVersionUID = 1L;

    @Override
    protected boolean removeEldestEntry(Map.Entry<String, ClusterJob> eldest)
    {
      return size() > RETAINED;
    }
  };

  synchronized ClusterJob add(String type, ObjectNode request, List<ClusterJob.Part> parts)
  {
    final ClusterJob job = new ClusterJob("cluster-" + UUID.randomUUID(), type, request, Instant.now(), List.copyOf(parts));
    jobs.put(job.id(), job);
    return job;
  }

  synchronized Optional<ClusterJob> get(String id)
  {
    return Optional.ofNullable(jobs.get(id));
  }

  synchronized int size()
  {
    return jobs.size();
  }

  synchronized List<ClusterJob> newestFirst(int limit)
  {
    final List<ClusterJob> all = new ArrayList<>(jobs.values());
    final List<ClusterJob> out = new ArrayList<>();
    for (int i = all.size() - 1; i >= 0 && out.size() < limit; i--) {
      out.add(all.get(i));
    }
    return out;
  }
}
