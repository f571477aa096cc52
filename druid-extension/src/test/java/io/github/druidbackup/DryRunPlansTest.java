package io.github.druidbackup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

class DryRunPlansTest
{
  @Test
  void plansOfSeveralNodesBecomeOneWithTheirNodeOnEachItem() throws Exception
  {
    final Map<String, JsonNode> plans = new LinkedHashMap<>();
    plans.put("h1:8083", JsonErrors.MAPPER.readTree(
        "{\"target\":\"http://t\",\"destination\":\"cache\",\"segments\":[{\"segmentId\":\"a\",\"size\":10,\"action\":\"restore\"}],"
        + "\"totals\":{\"segments\":1,\"bytes\":10,\"restore\":1,\"skip\":0,\"overwrite\":0}}"));
    plans.put("h2:8083", JsonErrors.MAPPER.readTree(
        "{\"target\":\"http://t\",\"destination\":\"cache\",\"segments\":[{\"segmentId\":\"a\",\"size\":10,\"action\":\"skip\"},"
        + "{\"segmentId\":\"b\",\"size\":5,\"action\":\"restore\"}],"
        + "\"totals\":{\"segments\":2,\"bytes\":15,\"restore\":1,\"skip\":1,\"overwrite\":0}}"));
    final ObjectNode p = DryRunPlans.combine(plans);
    assertEquals("http://t", p.get("target").asText());
    assertEquals("cache", p.get("destination").asText());
    assertEquals(3, p.get("segments").size());
    assertEquals("h2:8083", p.at("/segments/2/node").asText());
    assertEquals("b", p.at("/segments/2/segmentId").asText());
    assertEquals(3, p.at("/totals/segments").asInt());
    assertEquals(25, p.at("/totals/bytes").asInt());
    assertEquals(2, p.at("/totals/restore").asInt());
    assertEquals(2, p.get("nodes").size());
  }
}
