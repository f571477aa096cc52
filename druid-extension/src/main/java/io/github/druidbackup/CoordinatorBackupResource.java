package io.github.druidbackup;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.inject.Inject;
import com.sun.jersey.spi.container.ResourceFilters;
import org.apache.druid.client.DruidServer;
import org.apache.druid.client.InventoryView;
import org.apache.druid.java.util.http.client.response.StringFullResponseHolder;
import org.apache.druid.server.coordination.ServerType;
import org.apache.druid.server.http.security.StateResourceFilter;
import org.apache.druid.timeline.DataSegment;

import javax.ws.rs.DELETE;
import javax.ws.rs.GET;
import javax.ws.rs.HEAD;
import javax.ws.rs.POST;
import javax.ws.rs.PUT;
import javax.ws.rs.Path;
import javax.ws.rs.PathParam;
import javax.ws.rs.core.Response;
import java.io.IOException;
import java.io.InputStream;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code /data/v1/*} on the Coordinator, for the whole cluster: a backup or restore goes to every Historical that
 * serves a selected segment (Druid's server inventory), each with its own segment ids, and answers one cluster
 * job id whose progress is the nodes' summed. Authorized as Druid's admin APIs: READ on STATE for GET, WRITE
 * for the rest.
 */
@Path(SidecarUrls.API_PREFIX)
@ResourceFilters(StateResourceFilter.class)
public class CoordinatorBackupResource
{
  static final int MAX_REQUEST_BYTES = 1 << 20;
  static final int LISTED_JOBS = 50;

  private final InventoryView inventory;
  private final ClusterJobs jobs;
  private final DataNodeClient nodes;

  @Inject
  public CoordinatorBackupResource(InventoryView inventory, ClusterJobs jobs, DataNodeClient nodes)
  {
    this.inventory = inventory;
    this.jobs = jobs;
    this.nodes = nodes;
  }

  @POST
  @Path("backup")
  public Response backup(InputStream body)
  {
    return start("backup", body);
  }

  @POST
  @Path("restore")
  public Response restore(InputStream body)
  {
    return start("restore", body);
  }

  @GET
  @Path("jobs")
  public Response listJobs()
  {
    final ObjectNode page = JsonErrors.MAPPER.createObjectNode();
    final ArrayNode items = page.putArray("items");
    for (ClusterJob job : jobs.newestFirst(LISTED_JOBS)) {
      items.add(view(job));
    }
    page.put("total", jobs.size());
    return JsonErrors.json(200, page);
  }

  @GET
  @Path("jobs/{id}")
  public Response getJob(@PathParam("id") String id)
  {
    return jobs.get(id)
               .map(job -> JsonErrors.json(200, view(job)))
               .orElseGet(() -> unknownJob(id));
  }

  @DELETE
  @Path("jobs/{id}")
  public Response cancelJob(@PathParam("id") String id)
  {
    final ClusterJob job = jobs.get(id).orElse(null);
    if (job == null) {
      return unknownJob(id);
    }
    final Map<String, ListenableFuture<StringFullResponseHolder>> calls = new LinkedHashMap<>();
    for (ClusterJob.Part part : job.parts()) {
      if (part.jobId() != null) {
        calls.put(part.node(), nodes.send("DELETE", jobUrl(part), null));
      }
    }
    calls.forEach((node, call) -> DataNodeClient.await(node, call));
    return JsonErrors.json(200, view(job));
  }

  @GET
  @Path("{path: .*}")
  public Response otherGet()
  {
    return notOnCoordinator();
  }

  @HEAD
  @Path("{path: .*}")
  public Response otherHead()
  {
    return notOnCoordinator();
  }

  @POST
  @Path("{path: .*}")
  public Response otherPost()
  {
    return notOnCoordinator();
  }

  @PUT
  @Path("{path: .*}")
  public Response otherPut()
  {
    return notOnCoordinator();
  }

  @DELETE
  @Path("{path: .*}")
  public Response otherDelete()
  {
    return notOnCoordinator();
  }

  private static Response notOnCoordinator()
  {
    return JsonErrors.response(
        404,
        "not_found",
        "the Coordinator serves POST /data/v1/backup, POST /data/v1/restore and /data/v1/jobs for the whole cluster; "
        + "call a Historical's port for everything else"
    );
  }

  private static Response unknownJob(String id)
  {
    return JsonErrors.response(404, "not_found", "no cluster job " + id + " on this Coordinator");
  }

  private Response start(String type, InputStream body)
  {
    try {
      final ObjectNode request = readRequest(body);
      final SegmentSelector selector = SegmentSelector.fromRequest(request);
      if (!inventory.isStarted()) {
        throw new ApiException(503, "not_ready", "the Coordinator's server inventory is not ready yet; retry in a few seconds");
      }
      final List<FanOut.Assignment> assignments = FanOut.assign(selector, dataNodes());
      if (assignments.isEmpty()) {
        throw new ApiException(
            404,
            "no_segments",
            "no Historical serves a segment matching " + selector.describe()
            + ("restore".equals(type) ? "; to restore segments no node serves, call that node's own port" : "")
        );
      }
      final Map<FanOut.Assignment, DataNodeClient.Answer> answers = call(type, request, assignments);
      final boolean dryRun = "restore".equals(type) && request.path("dryRun").asBoolean(false);
      return dryRun ? dryRunAnswer(answers) : startedAnswer(type, request, answers);
    }
    catch (ApiException e) {
      return JsonErrors.response(e);
    }
  }

  private static ObjectNode readRequest(InputStream body)
  {
    final byte[] bytes;
    try {
      bytes = body.readNBytes(MAX_REQUEST_BYTES + 1);
    }
    catch (IOException e) {
      throw new ApiException(400, "bad_request", "cannot read the request body: " + e.getMessage());
    }
    if (bytes.length > MAX_REQUEST_BYTES) {
      throw new ApiException(413, "too_large", "the request body is over " + MAX_REQUEST_BYTES + " bytes");
    }
    final JsonNode json;
    try {
      json = JsonErrors.MAPPER.readTree(bytes);
    }
    catch (JsonProcessingException e) {
      throw new ApiException(400, "bad_request", "the request body is not JSON: " + e.getOriginalMessage());
    }
    catch (IOException e) {
      throw new ApiException(400, "bad_request", "cannot read the request body: " + e.getMessage());
    }
    if (json == null || !json.isObject()) {
      throw new ApiException(400, "bad_request", "the request body must be a JSON object such as {\"target\": URL}");
    }
    return (ObjectNode) json;
  }

  /**
   * Historicals, with what they serve. Indexers are left out: what they serve is realtime data that is not in a
   * segment cache until a Historical loads it after hand-off.
   */
  private List<FanOut.DataNode> dataNodes()
  {
    final List<FanOut.DataNode> out = new ArrayList<>();
    for (DruidServer server : inventory.getInventory()) {
      if (server.getType() != ServerType.HISTORICAL) {
        continue;
      }
      final List<FanOut.ServedSegment> segments = new ArrayList<>();
      for (DataSegment s : server.iterateAllSegments()) {
        segments.add(new FanOut.ServedSegment(s.getId().toString(), s.getDataSource(), s.getInterval()));
      }
      out.add(new FanOut.DataNode(server.getHost(), server.getScheme() + "://" + server.getHost(), segments));
    }
    return out;
  }

  private Map<FanOut.Assignment, DataNodeClient.Answer> call(
      String type,
      ObjectNode request,
      List<FanOut.Assignment> assignments
  )
  {
    final Map<FanOut.Assignment, ListenableFuture<StringFullResponseHolder>> calls = new LinkedHashMap<>();
    for (FanOut.Assignment a : assignments) {
      final byte[] json;
      try {
        json = JsonErrors.MAPPER.writeValueAsBytes(FanOut.nodeRequest(request, a.segmentIds()));
      }
      catch (JsonProcessingException e) {
        throw new ApiException(500, "internal", "cannot encode the request for " + a.node());
      }
      calls.put(a, nodes.send("POST", a.baseUrl() + SidecarUrls.API_PREFIX + "/" + type, json));
    }
    final Map<FanOut.Assignment, DataNodeClient.Answer> answers = new LinkedHashMap<>();
    calls.forEach((a, call) -> answers.put(a, DataNodeClient.await(a.node(), call)));
    return answers;
  }

  private static Response dryRunAnswer(Map<FanOut.Assignment, DataNodeClient.Answer> answers)
  {
    final Map<String, JsonNode> plans = new LinkedHashMap<>();
    for (Map.Entry<FanOut.Assignment, DataNodeClient.Answer> e : answers.entrySet()) {
      final DataNodeClient.Answer answer = e.getValue();
      if (!answer.ok()) {
        return nodeFailure(e.getKey().node(), answer);
      }
      try {
        plans.put(e.getKey().node(), JsonErrors.MAPPER.readTree(answer.body()));
      }
      catch (IOException ex) {
        return JsonErrors.response(502, "node_error", e.getKey().node() + " answered a plan that is not JSON");
      }
    }
    return JsonErrors.json(200, DryRunPlans.combine(plans));
  }

  private Response startedAnswer(String type, ObjectNode request, Map<FanOut.Assignment, DataNodeClient.Answer> answers)
  {
    final List<ClusterJob.Part> parts = new ArrayList<>();
    Map.Entry<FanOut.Assignment, DataNodeClient.Answer> firstFailure = null;
    boolean sameFailure = true;
    for (Map.Entry<FanOut.Assignment, DataNodeClient.Answer> e : answers.entrySet()) {
      final FanOut.Assignment a = e.getKey();
      final DataNodeClient.Answer answer = e.getValue();
      String jobId = null;
      if (answer.ok()) {
        try {
          jobId = JsonErrors.MAPPER.readTree(answer.body()).path("jobId").textValue();
        }
        catch (IOException ignored) {
          // no job id: counted as a failure below
        }
      }
      if (jobId != null) {
        parts.add(new ClusterJob.Part(a.node(), a.baseUrl(), a.segmentIds().size(), jobId, null));
        continue;
      }
      final String error = answer.failure() != null
                           ? answer.failure()
                           : NodeErrors.parse(answer.status(), answer.body()).message();
      parts.add(new ClusterJob.Part(a.node(), a.baseUrl(), a.segmentIds().size(), null, error));
      if (firstFailure == null) {
        firstFailure = e;
      } else if (firstFailure.getValue().status() != answer.status()) {
        sameFailure = false;
      }
    }
    final boolean noneStarted = parts.stream().allMatch(p -> p.jobId() == null);
    if (noneStarted && firstFailure != null) {
      if (sameFailure) {
        return nodeFailure(firstFailure.getKey().node(), firstFailure.getValue());
      }
      final StringBuilder why = new StringBuilder("no data node started the " + type + ":");
      parts.forEach(p -> why.append(' ').append(p.node()).append(": ").append(p.startError()).append(';'));
      return JsonErrors.response(502, "nodes_failed", why.toString());
    }
    final ClusterJob job = jobs.add(type, request, parts);
    final ObjectNode accepted = JsonErrors.MAPPER.createObjectNode();
    accepted.put("jobId", job.id());
    final ArrayNode nodeList = accepted.putArray("nodes");
    for (ClusterJob.Part p : parts) {
      final ObjectNode n = nodeList.addObject().put("node", p.node()).put("segments", p.segments());
      if (p.jobId() != null) {
        n.put("jobId", p.jobId());
      } else {
        n.put("error", p.startError());
      }
    }
    return JsonErrors.json(202, accepted);
  }

  /** A node's refusal passed through: its status and error code, the message naming the node. */
  private static Response nodeFailure(String node, DataNodeClient.Answer answer)
  {
    if (answer.failure() != null) {
      return JsonErrors.response(502, "node_unavailable", answer.failure());
    }
    final NodeErrors.NodeError error = NodeErrors.parse(answer.status(), answer.body());
    final int status = answer.status() >= 400 ? answer.status() : 502;
    return JsonErrors.response(status, error.code(), node + ": " + error.message());
  }

  private ObjectNode view(ClusterJob job)
  {
    final Map<String, ListenableFuture<StringFullResponseHolder>> calls = new LinkedHashMap<>();
    for (ClusterJob.Part part : job.parts()) {
      if (part.jobId() != null) {
        calls.put(part.node(), nodes.send("GET", jobUrl(part), null));
      }
    }
    final Map<String, ClusterJobView.NodeAnswer> answers = new LinkedHashMap<>();
    calls.forEach((node, call) -> {
      final DataNodeClient.Answer answer = DataNodeClient.await(node, call);
      if (answer.failure() != null) {
        answers.put(node, new ClusterJobView.NodeAnswer(null, answer.failure()));
      } else if (answer.status() == 200) {
        try {
          answers.put(node, new ClusterJobView.NodeAnswer(JsonErrors.MAPPER.readTree(answer.body()), null));
        }
        catch (IOException e) {
          answers.put(node, new ClusterJobView.NodeAnswer(null, "the node answered a job that is not JSON"));
        }
      } else {
        answers.put(node, new ClusterJobView.NodeAnswer(null, NodeErrors.parse(answer.status(), answer.body()).message()));
      }
    });
    return ClusterJobView.of(job, answers);
  }

  private static String jobUrl(ClusterJob.Part part)
  {
    return part.baseUrl() + SidecarUrls.API_PREFIX + "/jobs/" + URLEncoder.encode(part.jobId(), StandardCharsets.UTF_8);
  }
}
