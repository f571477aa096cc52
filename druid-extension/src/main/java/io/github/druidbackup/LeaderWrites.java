package io.github.druidbackup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.druid.discovery.DruidLeaderSelector;
import org.apache.druid.server.security.Action;
import org.apache.druid.server.security.AuthorizationResult;
import org.apache.druid.server.security.AuthorizationUtils;
import org.apache.druid.server.security.AuthorizerMapper;
import org.apache.druid.server.security.Resource;
import org.apache.druid.server.security.ResourceAction;
import org.apache.druid.server.security.ResourceType;

import javax.annotation.Nullable;
import javax.servlet.http.HttpServletRequest;
import javax.ws.rs.core.Response;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the writes this extension makes on the leader Overlord (segment rows, committed offsets) check first, in this
 * order: one authorization, the body, the leadership.
 */
final class LeaderWrites
{
  private LeaderWrites()
  {
  }

  /**
   * The answer that stops a write, or null when it may go on. Exactly one authorization check per request (Druid
   * refuses a second): WRITE on STATE, and on the data source the body names; a body too bad to name one is still
   * authorized on STATE, so that nobody learns anything from it without that permission. Then the body's problem
   * ({@code bad}), then a 503 on an Overlord that is not the leader.
   *
   * @param what the write, as the 403 names it ("inserting segment rows")
   */
  @Nullable
  static Response refusal(
      HttpServletRequest req,
      AuthorizerMapper authorizerMapper,
      DruidLeaderSelector overlordLeader,
      @Nullable String dataSource,
      @Nullable ApiException bad,
      String what
  )
  {
    final List<ResourceAction> actions = new ArrayList<>();
    actions.add(new ResourceAction(Resource.STATE_RESOURCE, Action.WRITE));
    if (dataSource != null) {
      actions.add(new ResourceAction(new Resource(dataSource, ResourceType.DATASOURCE), Action.WRITE));
    }
    final AuthorizationResult auth = AuthorizationUtils.authorizeAllResourceActions(req, actions, authorizerMapper);
    if (!auth.allowAccessWithNoRestriction()) {
      return JsonErrors.response(
          403,
          "forbidden",
          what + " needs Druid's WRITE permission on STATE and on the data source" + (dataSource != null ? " " + dataSource : "")
      );
    }
    if (bad != null) {
      return JsonErrors.response(bad);
    }
    if (!overlordLeader.isLeader()) {
      return JsonErrors.response(503, "not_leader", "this Overlord is not the leader; ask the leader Overlord");
    }
    return null;
  }
  /**
   * A write's body as a JSON object with only the given fields, or a 400 saying what is wrong with it: not JSON,
   * not an object ({@code shape} says what it should be), or an unknown field (named, cut at 100 characters).
   */
  static JsonNode objectBody(byte[] body, ObjectMapper mapper, Set<String> fields, String shape)
  {
    final JsonNode root;
    try {
      root = mapper.readTree(body);
    }
    catch (IOException e) {
      throw new ApiException(400, "bad_request", "the body is not JSON");
    }
    if (root == null || !root.isObject()) {
      throw new ApiException(400, "bad_request", "the body is " + shape);
    }
    for (Map.Entry<String, JsonNode> f : (Iterable<Map.Entry<String, JsonNode>>) root::fields) {
      if (!fields.contains(f.getKey())) {
        throw new ApiException(400, "bad_request", "unknown field " + quote(f.getKey()));
      }
    }
    return root;
  }

  /** A name from a request, JSON-quoted and cut at 100 characters, for a message. */
  static String quote(String s)
  {
    final String cut = s.length() > 100 ? s.substring(0, 100) + "…" : s;
    return JsonErrors.MAPPER.getNodeFactory().textNode(cut).toString();
  }
}
