package io.github.druidbackup;

import com.google.inject.Binder;
import org.apache.druid.discovery.NodeRole;
import org.apache.druid.guice.Jerseys;
import org.apache.druid.guice.annotations.LoadScope;
import org.apache.druid.initialization.DruidModule;

/**
 * On the Overlord (standalone, or a Coordinator running as one): the committed stream offsets that no Druid HTTP API
 * gives, read in-process for the cluster sidecar's snapshots.
 */
@LoadScope(roles = {NodeRole.OVERLORD_JSON_NAME})
public class OverlordModule implements DruidModule
{
  @Override
  public void configure(Binder binder)
  {
    Jerseys.addResource(binder, OffsetsResource.class);
  }
}
