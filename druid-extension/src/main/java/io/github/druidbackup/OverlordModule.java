package io.github.druidbackup;

import com.google.inject.Binder;
import org.apache.druid.discovery.NodeRole;
import org.apache.druid.guice.Jerseys;
import org.apache.druid.guice.annotations.LoadScope;
import org.apache.druid.initialization.DruidModule;

/**
 * On the Overlord (standalone, or a Coordinator running as one), in-process with Druid's metadata-storage coordinator:
 * the committed stream offsets that no Druid HTTP API gives, read for the cluster sidecar's snapshots and written back
 * by a cluster restore, and the segment rows a cluster restore puts back (no Druid HTTP API writes them either).
 */
@LoadScope(roles = {NodeRole.OVERLORD_JSON_NAME})
public class OverlordModule implements DruidModule
{
  @Override
  public void configure(Binder binder)
  {
    Jerseys.addResource(binder, OffsetsResource.class);
    Jerseys.addResource(binder, SegmentRowsResource.class);
  }
}
