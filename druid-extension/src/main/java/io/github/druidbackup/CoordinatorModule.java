package io.github.druidbackup;

import com.google.inject.Binder;
import com.google.inject.multibindings.Multibinder;
import org.apache.druid.discovery.NodeRole;
import org.apache.druid.guice.Jerseys;
import org.apache.druid.guice.JsonConfigProvider;
import org.apache.druid.guice.LifecycleModule;
import org.apache.druid.guice.annotations.LoadScope;
import org.apache.druid.initialization.DruidModule;
import org.apache.druid.server.initialization.jetty.ServletFilterHolder;

/**
 * On the Coordinator: {@code /data/v1/backup}, {@code /restore} and {@code /jobs} for the whole cluster, and the
 * cluster sidecar (snapshots of the cluster's state) run with the Coordinator as a data node runs its own.
 */
@LoadScope(roles = {NodeRole.COORDINATOR_JSON_NAME})
public class CoordinatorModule implements DruidModule
{
  @Override
  public void configure(Binder binder)
  {
    Jerseys.addResource(binder, CoordinatorBackupResource.class);
    Multibinder.newSetBinder(binder, ServletFilterHolder.class).addBinding().to(CoordinatorApiFilterHolder.class);
    JsonConfigProvider.bind(binder, SidecarConfig.PREFIX, SidecarConfig.class);
    binder.bind(SidecarRole.class).toInstance(SidecarRole.CLUSTER);
    LifecycleModule.register(binder, SidecarLauncher.class);
  }
}
