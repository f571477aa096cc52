package io.github.druidbackup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Iterator;
import java.util.Map;

/** The restore plans of several nodes (dryRun) as one: every item names its node, the totals are summed. */
final class DryRunPlans
{
  private DryRunPlans()
  {
  }

  static ObjectNode combine(Map<String, JsonNode> plansByNode)
  {
    final ObjectNode out = JsonErrors.MAPPER.createObjectNode();
    final ArrayNode segments = JsonErrors.MAPPER.createArrayNode();
    final ObjectNode totals = JsonErrors.MAPPER.createObjectNode();
    final ArrayNode nodes = JsonErrors.MAPPER.createArrayNode();
    for (Map.Entry<String, JsonNode> entry : plansByNode.entrySet()) {
      final JsonNode plan = entry.getValue();
      if (!out.has("target") && plan.has("target")) {
        out.set("target", plan.get("target"));
      }
      if (!out.has("destination") && plan.has("destination")) {
        out.set("destination", plan.get("destination"));
      }
      for (JsonNode item : plan.path("segments")) {
        final ObjectNode copy = item.isObject() ? ((ObjectNode) item).deepCopy() : JsonErrors.MAPPER.createObjectNode();
        copy.put("node", entry.getKey());
        segments.add(copy);
      }
      final Iterator<Map.Entry<String, JsonNode>> fields = plan.path("totals").fields();
      while (fields.hasNext()) {
        final Map.Entry<String, JsonNode> f = fields.next();
        if (f.getValue().isIntegralNumber()) {
          totals.put(f.getKey(), totals.path(f.getKey()).asLong(0) + f.getValue().asLong());
        }
      }
      nodes.addObject().put("node", entry.getKey()).set("totals", plan.path("totals"));
    }
    out.set("segments", segments);
    out.set("totals", totals);
    out.set("nodes", nodes);
    return out;
  }
}
