package io.github.druidbackup;

import org.junit.jupiter.api.Test;

import java.util.Collections;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class OffsetsResourceTest
{
  @Test
  void theDataSourcesAskedAreNamedAndBounded()
  {
    assertNull(OffsetsResource.check(List.of("wikipedia", "demo")));
    assertEquals("name the data sources: ?dataSource=a&dataSource=b", OffsetsResource.check(List.of()));
    assertEquals("name the data sources: ?dataSource=a&dataSource=b", OffsetsResource.check(null));
    assertEquals("at most 1000 data sources per call", OffsetsResource.check(Collections.nCopies(1001, "d")));
    assertEquals("a data source name is empty or longer than 1024 characters", OffsetsResource.check(List.of("a", " ")));
    assertEquals("a data source name is empty or longer than 1024 characters", OffsetsResource.check(List.of("x".repeat(1025))));
  }
}
