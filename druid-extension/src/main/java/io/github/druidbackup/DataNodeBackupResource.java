package io.github.druidbackup;

import com.google.inject.Inject;
import com.sun.jersey.spi.container.ResourceFilters;
import org.apache.druid.server.http.security.StateResourceFilter;

import javax.servlet.http.HttpServletRequest;
import javax.ws.rs.DELETE;
import javax.ws.rs.GET;
import javax.ws.rs.HEAD;
import javax.ws.rs.POST;
import javax.ws.rs.PUT;
import javax.ws.rs.Path;
import javax.ws.rs.core.Context;
import javax.ws.rs.core.Response;

/**
 * {@code /data/v1/*} on a data node (Historical, Indexer): every call goes to the node's sidecar. Druid authorizes
 * each one first, as its own admin APIs: READ on the STATE resource for GET and HEAD, WRITE for the rest.
 * HEAD reaches Druid only when {@code druid.server.http.allowedHttpMethods} lists it.
 */
@Path(SidecarUrls.API_PREFIX)
@ResourceFilters(StateResourceFilter.class)
public class DataNodeBackupResource
{
  private static final String ANY = "{path: .*}";

  private final SidecarProxy proxy;

  @Inject
  public DataNodeBackupResource(SidecarProxy proxy)
  {
    this.proxy = proxy;
  }

  @GET
  @Path(ANY)
  public Response get(@Context HttpServletRequest req)
  {
    return proxy.forward("GET", req);
  }

  @HEAD
  @Path(ANY)
  public Response head(@Context HttpServletRequest req)
  {
    return proxy.forward("HEAD", req);
  }

  @POST
  @Path(ANY)
  public Response post(@Context HttpServletRequest req)
  {
    return proxy.forward("POST", req);
  }

  @PUT
  @Path(ANY)
  public Response put(@Context HttpServletRequest req)
  {
    return proxy.forward("PUT", req);
  }

  @DELETE
  @Path(ANY)
  public Response delete(@Context HttpServletRequest req)
  {
    return proxy.forward("DELETE", req);
  }
}
