package io.github.druidbackup;

import com.google.inject.Binder;
import org.apache.druid.discovery.NodeRole;
import org.apache.druid.guice.Jerseys;
import org.apache.druid.guice.JsonConfigProvider;
import org.apache.druid.guice.LifecycleModule;
import org.apache.druid.guice.annotations.LoadScope;
import org.apache.druid.initialization.DruidModule;

/** On a data node: {@code /data/v1/*} forwarded to the node's sidecar, and the sidecar run with the node. */
@LoadScope(roles = {NodeRole.HISTORICAL_JSON_NAME, NodeRole.INDEXER_JSON_NAME})
public class DataNodeModule implements DruidModule
{
  @Override
  public void configure(Binder binder)
  {
    JsonConfigProvider.bind(binder, SidecarConfig.PREFIX, SidecarConfig.class);
    binder.bind(SidecarRole.class).toInstance(SidecarRole.NODE);
    Jerseys.addResource(binder, DataNodeBackupResource.class);
    LifecycleModule.register(binder, SidecarLauncher.class);
  }
}
