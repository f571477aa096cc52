package io.github.druidbackup;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.joda.time.Interval;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * Which data node gets which segments of a cluster-wide request. Every node serving a selected segment gets it,
 * replicas included: the target keeps one copy per segment id and flags a replica whose bytes differ, which is
 * only possible when each replica is sent.
 */
final class FanOut
{
  record ServedSegment(String id, String dataSource, Interval interval)
  {
  }

  /** A data node as Druid's server inventory knows it: name {@code host:port} and base URL. */
  record DataNode(String name, String baseUrl, Iterable<ServedSegment> segments)
  {
  }

  record Assignment(String node, String baseUrl, List<String> segmentIds)
  {
  }

  private FanOut()
  {
  }

  static List<Assignment> assign(SegmentSelector selector, Collection<DataNode> nodes)
  {
    final List<Assignment> out = new ArrayList<>();
    for (DataNode node : nodes) {
      final List<String> ids = new ArrayList<>();
      for (ServedSegment s : node.segments()) {
        if (selector.matches(s.id(), s.dataSource(), s.interval())) {
          ids.add(s.id());
        }
      }
      if (!ids.isEmpty()) {
        ids.sort(null);
        out.add(new Assignment(node.name(), node.baseUrl(), List.copyOf(ids)));
      }
    }
    out.sort((a, b) -> a.node().compareTo(b.node()));
    return out;
  }

  /** The request one node gets: the client's, with its selection narrowed to that node's segment ids. */
  static ObjectNode nodeRequest(ObjectNode clientRequest, List<String> segmentIds)
  {
    final ObjectNode copy = clientRequest.deepCopy();
    copy.remove("dataSource");
    copy.remove("interval");
    final ArrayNode ids = copy.putArray("segmentIds");
    segmentIds.forEach(ids::add);
    return copy;
  }
}
