package io.github.druidbackup;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.inject.Inject;
import com.sun.jersey.spi.container.ResourceFilters;
import org.apache.druid.client.indexing.IndexingService;
import org.apache.druid.discovery.DruidLeaderSelector;
import org.apache.druid.guice.annotations.Json;
import org.apache.druid.indexing.overlord.DataSourceMetadata;
import org.apache.druid.indexing.overlord.IndexerMetadataStorageCoordinator;
import org.apache.druid.server.http.security.StateResourceFilter;

import javax.ws.rs.GET;
import javax.ws.rs.Path;
import javax.ws.rs.Produces;
import javax.ws.rs.QueryParam;
import javax.ws.rs.core.MediaType;
import javax.ws.rs.core.Response;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code GET /druid-ext/druid-backup/v1/offsets?dataSource=a&dataSource=b}: each data source's committed metadata
 * (a stream supervisor's committed offsets), as Druid's metadata store holds it, or null when it has none. Under
 * /druid-ext because a standalone Overlord hands only /status, /druid-internal, /druid/* and /druid-ext/* to Jersey.
 * Only the leader Overlord answers (503 otherwise), as Druid's own Overlord resources do. Authorized as Druid's admin
 * APIs: READ on STATE.
 */
@Path(OffsetsResource.PATH)
@ResourceFilters(StateResourceFilter.class)
public class OffsetsResource
{
  static final String PATH = "/druid-ext/druid-backup/v1/offsets";
  /** Data sources per call: far beyond a cluster's stream supervisors, and a bound on the work one call asks. */
  static final int MAX_DATA_SOURCES = 1000;

  private final IndexerMetadataStorageCoordinator metadata;
  private final DruidLeaderSelector overlordLeader;
  private final ObjectMapper mapper;

  @Inject
  public OffsetsResource(
      IndexerMetadataStorageCoordinator metadata,
      @IndexingService DruidLeaderSelector overlordLeader,
      @Json ObjectMapper mapper
  )
  {
    this.metadata = metadata;
    this.overlordLeader = overlordLeader;
    this.mapper = mapper;
  }

  @GET
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
    return Response.ok(mapper.writeValueAsString(Map.of("dataSources", out)), MediaType.APPLICATION_JSON).build();
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
