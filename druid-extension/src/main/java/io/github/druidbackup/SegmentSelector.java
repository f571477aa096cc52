package io.github.druidbackup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.joda.time.Interval;
import org.joda.time.chrono.ISOChronology;

import javax.annotation.Nullable;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The segments a backup or restore request selects, as the sidecar reads them: every given filter must match
 * (dataSource, an ISO interval the segment overlaps, segment ids). Only these fields are read here; the rest of
 * the request is the sidecar's to check.
 */
final class SegmentSelector
{
  @Nullable
  private final String dataSource;
  @Nullable
  private final Interval interval;
  @Nullable
  private final Set<String> segmentIds;

  private SegmentSelector(@Nullable String dataSource, @Nullable Interval interval, @Nullable Set<String> segmentIds)
  {
    this.dataSource = dataSource;
    this.interval = interval;
    this.segmentIds = segmentIds;
  }

  static SegmentSelector fromRequest(ObjectNode request)
  {
    final String dataSource = optionalString(request, "dataSource");
    if (dataSource != null && dataSource.isEmpty()) {
      throw new ApiException(400, "bad_request", "\"dataSource\" is empty");
    }
    final String intervalText = optionalString(request, "interval");
    Interval interval = null;
    if (intervalText != null) {
      try {
        interval = new Interval(intervalText, ISOChronology.getInstanceUTC());
      }
      catch (IllegalArgumentException e) {
        throw new ApiException(
            400,
            "bad_request",
            "\"interval\" " + intervalText + " is not an ISO-8601 interval such as 2015-09-12/2015-09-13"
        );
      }
    }
    Set<String> ids = null;
    final JsonNode idsNode = request.get("segmentIds");
    if (idsNode != null && !idsNode.isNull()) {
      if (!idsNode.isArray()) {
        throw new ApiException(400, "bad_request", "\"segmentIds\" must be a list of segment ids");
      }
      ids = new LinkedHashSet<>();
      for (JsonNode id : idsNode) {
        if (!id.isTextual() || id.asText().isEmpty()) {
          throw new ApiException(400, "bad_request", "\"segmentIds\" must hold segment ids as non-empty strings");
        }
        ids.add(id.asText());
      }
    }
    return new SegmentSelector(dataSource, interval, ids);
  }

  @Nullable
  private static String optionalString(ObjectNode request, String field)
  {
    final JsonNode node = request.get(field);
    if (node == null || node.isNull()) {
      return null;
    }
    if (!node.isTextual()) {
      throw new ApiException(400, "bad_request", "\"" + field + "\" must be a string");
    }
    return node.asText();
  }

  boolean matches(String segmentId, String segmentDataSource, Interval segmentInterval)
  {
    return (dataSource == null || dataSource.equals(segmentDataSource))
           && (interval == null || interval.overlaps(segmentInterval))
           && (segmentIds == null || segmentIds.contains(segmentId));
  }

  /** For messages: what was asked, e.g. {@code dataSource wikipedia, interval 2015-09-12/2015-09-13}. */
  String describe()
  {
    final StringBuilder out = new StringBuilder();
    if (dataSource != null) {
      out.append("dataSource ").append(dataSource);
    }
    if (interval != null) {
      out.append(out.length() > 0 ? ", " : "").append("interval ").append(interval);
    }
    if (segmentIds != null) {
      out.append(out.length() > 0 ? ", " : "").append(segmentIds.size()).append(" segment ids");
    }
    return out.length() == 0 ? "every segment" : out.toString();
  }
}
