package io.github.druidbackup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.inject.Inject;
import org.apache.druid.client.indexing.IndexingService;
import org.apache.druid.discovery.DruidLeaderSelector;
import org.apache.druid.guice.annotations.Json;
import org.apache.druid.indexing.overlord.IndexerMetadataStorageCoordinator;
import org.apache.druid.server.security.AuthorizerMapper;
import org.apache.druid.timeline.DataSegment;

import javax.servlet.http.HttpServletRequest;
import javax.ws.rs.Consumes;
import javax.ws.rs.POST;
import javax.ws.rs.Path;
import javax.ws.rs.Produces;
import javax.ws.rs.core.Context;
import javax.ws.rs.core.MediaType;
import javax.ws.rs.core.Response;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code POST /druid-ext/druid-backup/v1/segments} with {@code {"dataSource": "ds", "segments": [DataSegment...]}}:
 * puts back the metadata-store rows of segments a cluster lost (its metadata store deleted, a kill task), from the
 * descriptors a backup kept. Druid has no API for this since it removed the {@code insert-segment-to-db} tool, so
 * the rows are written the way that tool did, by Druid's own {@link IndexerMetadataStorageCoordinator#commitSegments}
 * in-process, never by SQL of ours. What that call does, and what the caller must therefore do:
 * <ul>
 * <li>an id already in the table is skipped whatever its used flag: the answer lists it under {@code present}, and
 *     the caller marks it used through the Coordinator's {@code markUsed};</li>
 * <li>a segment overshadowed by another of the same call is written unused, the others used;</li>
 * <li>task locks are not consulted: the caller refuses while a task holds an interval (the Overlord's
 *     {@code lockedIntervals}).</li>
 * </ul>
 * Only the leader Overlord writes (503 otherwise), as Druid's own Overlord resources do. Authorized as Druid authorizes
 * writing a data source's segments, WRITE on the DATASOURCE, and as its admin APIs, WRITE on STATE: both are asked
 * of Druid's authorizer in one check. Under /druid-ext because a standalone Overlord hands only /status,
 * /druid-internal, /druid/* and /druid-ext/* to Jersey, and a Coordinator forwards to the Overlord only /druid/indexer.
 */
@Path(SegmentRowsResource.PATH)
public class SegmentRowsResource
{
  static final String PATH = "/druid-ext/druid-backup/v1/segments";
  /** Segments per call: a few MiB of descriptors, one short transaction. */
  static final int MAX_SEGMENTS = 500;
  /** A call's body: 500 descriptors of up to ~32 KiB each (shard specs and dimension lists). */
  static final int MAX_BODY_BYTES = 16 << 20;

  private final IndexerMetadataStorageCoordinator metadata;
  private final DruidLeaderSelector overlordLeader;
  private final ObjectMapper mapper;
  private final AuthorizerMapper authorizerMapper;

  @Inject
  public SegmentRowsResource(
      IndexerMetadataStorageCoordinator metadata,
      @IndexingService DruidLeaderSelector overlordLeader,
      @Json ObjectMapper mapper,
      AuthorizerMapper authorizerMapper
  )
  {
    this.metadata = metadata;
    this.overlordLeader = overlordLeader;
    this.mapper = mapper;
    this.authorizerMapper = authorizerMapper;
  }

  /** A checked request: one data source and its segments, each id once. */
  static final class Request
  {
    final String dataSource;
    final Set<DataSegment> segments;

    Request(String dataSource, Set<DataSegment> segments)
    {
      this.dataSource = dataSource;
      this.segments = segments;
    }
  }

  @POST
  @Consumes(MediaType.APPLICATION_JSON)
  @Produces(MediaType.APPLICATION_JSON)
  public Response insert(InputStream body, @Context HttpServletRequest req)
  {
    Request request = null;
    ApiException bad = null;
    try {
      request = parse(readLimited(body), mapper);
    }
    catch (ApiException e) {
      bad = e;
    }
    final Response refused = LeaderWrites.refusal(
        req,
        authorizerMapper,
        overlordLeader,
        request != null ? request.dataSource : null,
        bad,
        "inserting segment rows"
    );
    if (refused != null) {
      return refused;
    }
    final Set<DataSegment> inserted;
    try {
      inserted = metadata.commitSegments(request.segments, null);
    }
    catch (RuntimeException e) {
      return JsonErrors.response(500, "insert_failed", "Druid's metadata store refused the rows: " + e.getMessage());
    }
    return JsonErrors.json(200, answer(request, inserted));
  }

  /** {@code {"dataSource", "inserted": [ids], "present": [ids]}}: each id asked under exactly one of the two. */
  static ObjectNode answer(Request request, Set<DataSegment> inserted)
  {
    final Set<String> insertedIds = new TreeSet<>();
    for (DataSegment s : inserted) {
      insertedIds.add(s.getId().toString());
    }
    final Set<String> present = new TreeSet<>();
    for (DataSegment s : request.segments) {
      final String id = s.getId().toString();
      if (!insertedIds.contains(id)) {
        present.add(id);
      }
    }
    final ObjectNode out = JsonErrors.MAPPER.createObjectNode();
    out.put("dataSource", request.dataSource);
    final ArrayNode ins = out.putArray("inserted");
    insertedIds.forEach(ins::add);
    final ArrayNode pre = out.putArray("present");
    present.forEach(pre::add);
    return out;
  }

  static byte[] readLimited(InputStream body)
  {
    if (body == null) {
      throw new ApiException(400, "bad_request", "the body is missing");
    }
    final ByteArrayOutputStream out = new ByteArrayOutputStream();
    final byte[] buf = new byte[64 * 1024];
    try {
      for (int n; (n = body.read(buf)) >= 0; ) {
        if (out.size() + n > MAX_BODY_BYTES) {
          throw new ApiException(413, "too_large", "the body is larger than " + MAX_BODY_BYTES + " bytes");
        }
        out.write(buf, 0, n);
      }
    }
    catch (IOException e) {
      throw new ApiException(400, "bad_request", "the body could not be read");
    }
    return out.toByteArray();
  }

  /** The request, checked; anything else is an ApiException saying what is wrong. */
  static Request parse(byte[] body, ObjectMapper mapper)
  {
    final JsonNode root = LeaderWrites.objectBody(
        body,
        mapper,
        Set.of("dataSource", "segments"),
        "{\"dataSource\": name, \"segments\": [descriptors]}"
    );
    final JsonNode ds = root.get("dataSource");
    if (ds == null || !ds.isTextual() || ds.asText().isBlank() || ds.asText().length() > 1024) {
      throw new ApiException(400, "bad_request", "dataSource must be a name of 1 to 1024 characters");
    }
    final String dataSource = ds.asText();
    final JsonNode list = root.get("segments");
    if (list == null || !list.isArray() || list.isEmpty()) {
      throw new ApiException(400, "bad_request", "segments must be a list of one or more descriptors");
    }
    if (list.size() > MAX_SEGMENTS) {
      throw new ApiException(400, "bad_request", "at most " + MAX_SEGMENTS + " segments per call");
    }
    final Set<DataSegment> segments = new LinkedHashSet<>();
    final Set<String> ids = new HashSet<>();
    int i = 0;
    for (JsonNode element : list) {
      final String where = "segments[" + i++ + "]";
      if (!element.isObject()) {
        throw new ApiException(400, "bad_request", where + " is not a descriptor object");
      }
      final DataSegment s;
      try {
        s = mapper.treeToValue(element, DataSegment.class);
      }
      catch (IOException | RuntimeException e) {
        throw new ApiException(400, "bad_request", where + " is not a segment descriptor Druid reads");
      }
      if (s == null || !dataSource.equals(s.getDataSource())) {
        throw new ApiException(400, "bad_request", where + " is not a segment of " + LeaderWrites.quote(dataSource));
      }
      final Map<String, Object> loadSpec = s.getLoadSpec();
      if (loadSpec == null || !(loadSpec.get("type") instanceof String)) {
        throw new ApiException(400, "bad_request", where + " has no loadSpec with a type: Druid could not load it");
      }
      if (s.getSize() < 0) {
        throw new ApiException(400, "bad_request", where + " has a negative size");
      }
      if (!ids.add(s.getId().toString())) {
        throw new ApiException(400, "bad_request", where + " repeats segment " + s.getId());
      }
      segments.add(s);
    }
    return new Request(dataSource, segments);
  }
}
