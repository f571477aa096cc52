package io.github.druidbackup;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.inject.Inject;
import com.sun.jersey.spi.container.ResourceFilters;
import org.apache.druid.client.indexing.IndexingService;
import org.apache.druid.discovery.DruidLeaderSelector;
import org.apache.druid.guice.annotations.Json;
import org.apache.druid.indexing.overlord.DataSourceMetadata;
import org.apache.druid.indexing.overlord.IndexerMetadataStorageCoordinator;
import org.apache.druid.indexing.overlord.supervisor.NoopSupervisorSpec;
import org.apache.druid.indexing.overlord.supervisor.SupervisorSpec;
import org.apache.druid.metadata.MetadataSupervisorManager;
import org.apache.druid.server.http.security.StateResourceFilter;
import org.apache.druid.server.security.AuthorizerMapper;

import javax.servlet.http.HttpServletRequest;
import javax.ws.rs.Consumes;
import javax.ws.rs.GET;
import javax.ws.rs.POST;
import javax.ws.rs.Path;
import javax.ws.rs.Produces;
import javax.ws.rs.QueryParam;
import javax.ws.rs.core.Context;
import javax.ws.rs.core.MediaType;
import javax.ws.rs.core.Response;
import java.io.IOException;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code GET /druid-ext/druid-backup/v1/offsets?dataSource=a&dataSource=b}: each data source's committed metadata
 * (a stream supervisor's committed offsets), as Druid's metadata store holds it, or null when it has none. Under
 * /druid-ext because a standalone Overlord hands only /status, /druid-internal, /druid/* and /druid-ext/* to Jersey.
 * Only the leader Overlord answers (503 otherwise), as Druid's own Overlord resources do. Authorized as Druid's admin
 * APIs: READ on STATE.
 *
 * <p>{@code POST} with {@code {"dataSource": "ds", "metadata": {DataSourceMetadata}}} writes a snapshot's committed
 * metadata back (a cluster restore), through Druid's own {@link IndexerMetadataStorageCoordinator}: inserted when the
 * data source has none, reset when it differs, left alone when it is the same (so a second run changes nothing). Only
 * while no running supervisor ingests into the data source: a running one would overwrite the offsets at its next
 * checkpoint, or read them in the middle of a task group, so the write is refused (409) until it is suspended. Druid's
 * own resetOffsets needs a running supervisor and a stream to ask; this needs neither. Authorized as Druid authorizes
 * writing a data source (WRITE on the DATASOURCE) and its admin APIs (WRITE on STATE), in one check.
 */
@Path(OffsetsResource.PATH)
public class OffsetsResource
{
  static final String PATH = "/druid-ext/druid-backup/v1/offsets";
  /** Data sources per call: far beyond a cluster's stream supervisors, and a bound on the work one call asks. */
  static final int MAX_DATA_SOURCES = 1000;

  private final IndexerMetadataStorageCoordinator metadata;
  private final DruidLeaderSelector overlordLeader;
  private final ObjectMapper mapper;
  private final MetadataSupervisorManager supervisors;
  private final AuthorizerMapper authorizerMapper;

  @Inject
  public OffsetsResource(
      IndexerMetadataStorageCoordinator metadata,
      @IndexingService DruidLeaderSelector overlordLeader,
      @Json ObjectMapper mapper,
      MetadataSupervisorManager supervisors,
      AuthorizerMapper authorizerMapper
  )
  {
    this.metadata = metadata;
    this.overlordLeader = overlordLeader;
    this.mapper = mapper;
    this.supervisors = supervisors;
    this.authorizerMapper = authorizerMapper;
  }

  /** A checked write: one data source and the committed metadata to give it. */
  static final class Write
  {
    final String dataSource;
    final DataSourceMetadata metadata;

    Write(String dataSource, DataSourceMetadata metadata)
    {
      this.dataSource = dataSource;
      this.metadata = metadata;
    }
  }

  @GET
  @ResourceFilters(StateResourceFilter.class)
  @Produces(MediaType.APPLICATION_JSON)
  public Response offsets(@QueryParam("dataSource") List<String> dataSources) throws JsonProcessingException
  {
    final String problem = check(dataSources);
    if (problem != null) {
      return JsonErrors.response(400, "bad_request", problem);
    }
    if (!overlordLeader.isLeader()) {
      return JsonErrors.response(503, "not_leader", "this Overlord is not the leader; ask the leader Overlord");
    }
    final Map<String, DataSourceMetadata> out = new LinkedHashMap<>();
    for (String dataSource : dataSources) {
      out.put(dataSource, metadata.retrieveDataSourceMetadata(dataSource));
    }
    return Response.ok(answer(out, mapper), MediaType.APPLICATION_JSON).build();
  }

  /**
   * {@code {"dataSources": {...}}}, each value with its {@code "type"}: written for the declared type
   * DataSourceMetadata, since a map's values written by their runtime class lose the type id Druid needs to read
   * them back (and a restore posts them back).
   */
  static String answer(Map<String, DataSourceMetadata> byDataSource, ObjectMapper mapper) throws JsonProcessingException
  {
    return "{\"dataSources\":" + mapper.writerFor(BY_DATA_SOURCE).writeValueAsString(byDataSource) + "}";
  }

  private static final TypeReference<Map<String, DataSourceMetadata>> BY_DATA_SOURCE = new TypeReference<>()
  {
  };

  @POST
  @Consumes(MediaType.APPLICATION_JSON)
  @Produces(MediaType.APPLICATION_JSON)
  public Response write(InputStream body, @Context HttpServletRequest req)
  {
    Write write = null;
    ApiException bad = null;
    try {
      write = parse(SegmentRowsResource.readLimited(body), mapper);
    }
    catch (ApiException e) {
      bad = e;
    }
    final Response refused = LeaderWrites.refusal(
        req,
        authorizerMapper,
        overlordLeader,
        write != null ? write.dataSource : null,
        bad,
        "writing committed offsets"
    );
    if (refused != null) {
      return refused;
    }
    final String running;
    try {
      running = runningSupervisors(write.dataSource, supervisors.getLatest());
    }
    catch (RuntimeException e) {
      return JsonErrors.response(500, "internal", "Druid's supervisors could not be read: " + e.getMessage());
    }
    if (running != null) {
      return JsonErrors.response(
          409,
          "supervisor_running",
          "supervisor " + running + " is running on " + write.dataSource
          + ": suspend it before its committed offsets are written, or it overwrites them"
      );
    }
    try {
      final DataSourceMetadata current = metadata.retrieveDataSourceMetadata(write.dataSource);
      final String outcome = outcome(current, write.metadata, mapper);
      final boolean ok;
      switch (outcome) {
        case "inserted":
          ok = metadata.insertDataSourceMetadata(write.dataSource, write.metadata);
          break;
        case "reset":
          ok = metadata.resetDataSourceMetadata(write.dataSource, write.metadata);
          break;
        default:
          ok = true;
      }
      if (!ok) {
        // Another writer got there between the read and the write (a supervisor created meanwhile): nothing is
        // half-written, and a new call reads again.
        return JsonErrors.response(409, "changed", "the committed offsets of " + write.dataSource + " changed while being written: try again");
      }
      final ObjectNode out = JsonErrors.MAPPER.createObjectNode();
      out.put("dataSource", write.dataSource);
      out.put("outcome", outcome);
      return JsonErrors.json(200, out);
    }
    catch (IOException | RuntimeException e) {
      return JsonErrors.response(500, "write_failed", "Druid's metadata store refused the committed offsets: " + e.getMessage());
    }
  }

  /**
   * What writing {@code wanted} over {@code current} does: "unchanged" when both read as the same JSON (compared as
   * Druid's mapper writes them, so key order and number forms do not matter), "inserted" when there is none, else
   * "reset".
   */
  static String outcome(DataSourceMetadata current, DataSourceMetadata wanted, ObjectMapper mapper)
  {
    if (current == null) {
      return "inserted";
    }
    final JsonNode a = mapper.valueToTree(current);
    final JsonNode b = mapper.valueToTree(wanted);
    return a.equals(b) ? "unchanged" : "reset";
  }

  /**
   * The ids of the supervisors that ingest into {@code dataSource} and are not suspended, or null when none is (the
   * latest spec of each supervisor as the metadata store holds it; a terminated one is a NoopSupervisorSpec).
   */
  static String runningSupervisors(String dataSource, Map<String, SupervisorSpec> latest)
  {
    final TreeSet<String> running = new TreeSet<>();
    for (Map.Entry<String, SupervisorSpec> e : latest.entrySet()) {
      final SupervisorSpec spec = e.getValue();
      if (spec == null || spec instanceof NoopSupervisorSpec || spec.isSuspended()) {
        continue;
      }
      final List<String> dataSources = spec.getDataSources();
      if (dataSources != null && dataSources.contains(dataSource)) {
        running.add(e.getKey());
      }
    }
    return running.isEmpty() ? null : String.join(", ", running);
  }

  /** The write asked, checked; anything else is an ApiException saying what is wrong. */
  static Write parse(byte[] body, ObjectMapper mapper)
  {
    final JsonNode root = LeaderWrites.objectBody(
        body,
        mapper,
        Set.of("dataSource", "metadata"),
        "{\"dataSource\": name, \"metadata\": {committed metadata}}"
    );
    final JsonNode ds = root.get("dataSource");
    final String problem = ds != null && ds.isTextual() ? check(List.of(ds.asText())) : "dataSource must be a name";
    if (problem != null) {
      throw new ApiException(400, "bad_request", problem);
    }
    final JsonNode m = root.get("metadata");
    if (m == null || !m.isObject() || !m.has("type")) {
      throw new ApiException(400, "bad_request", "metadata must be an object with a type, as Druid wrote it");
    }
    final DataSourceMetadata parsed;
    try {
      parsed = mapper.treeToValue(m, DataSourceMetadata.class);
    }
    catch (IOException | RuntimeException e) {
      throw new ApiException(
          400,
          "bad_request",
          "metadata is not committed metadata Druid reads (is the extension of its type, such as "
          + "druid-kafka-indexing-service, loaded on this Overlord?)"
      );
    }
    if (parsed == null) {
      throw new ApiException(400, "bad_request", "metadata must be an object with a type, as Druid wrote it");
    }
    return new Write(ds.asText(), parsed);
  }

  /** Why the data sources asked are refused, or null. */
  static String check(List<String> dataSources)
  {
    if (dataSources == null || dataSources.isEmpty()) {
      return "name the data sources: ?dataSource=a&dataSource=b";
    }
    if (dataSources.size() > MAX_DATA_SOURCES) {
      return "at most " + MAX_DATA_SOURCES + " data sources per call";
    }
    for (String d : dataSources) {
      if (d == null || d.isBlank() || d.length() > 1024) {
        return "a data source name is empty or longer than 1024 characters";
      }
    }
    return null;
  }
}
