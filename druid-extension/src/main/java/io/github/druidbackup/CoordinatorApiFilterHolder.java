package io.github.druidbackup;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.inject.Inject;
import com.google.inject.servlet.GuiceFilter;
import org.apache.druid.guice.annotations.Json;
import org.apache.druid.server.http.RedirectFilter;
import org.apache.druid.server.initialization.jetty.ServletFilterHolder;
import org.apache.druid.server.security.AuthenticatorMapper;
import org.apache.druid.server.security.PreResponseAuthorizationCheckFilter;

import javax.annotation.Nullable;
import javax.servlet.DispatcherType;
import javax.servlet.Filter;
import javax.servlet.FilterChain;
import javax.servlet.FilterConfig;
import javax.servlet.ServletException;
import javax.servlet.ServletRequest;
import javax.servlet.ServletResponse;
import java.io.IOException;
import java.util.EnumSet;
import java.util.Map;

/**
 * Puts {@code /data/v1/*} on the Coordinator's Jersey. Unlike a data node, the Coordinator hands only fixed path
 * prefixes to Jersey (its web console owns the rest), and an extension can add filters but no servlet. So this
 * filter, which Druid places after its authentication chain, runs for these paths what Druid runs for its own
 * Coordinator APIs, in Druid's order: the check that every response was authorized, the redirect of a non-leader
 * Coordinator to the leader (where the cluster jobs live), then Guice's filter that dispatches to Jersey.
 */
public class CoordinatorApiFilterHolder implements ServletFilterHolder
{
  static final String PATH = SidecarUrls.API_PREFIX + "/*";

  private final Filter filter;

  @Inject
  public CoordinatorApiFilterHolder(
      AuthenticatorMapper authenticatorMapper,
      @Json ObjectMapper jsonMapper,
      RedirectFilter redirectFilter
  )
  {
    final Filter preResponseCheck =
        new PreResponseAuthorizationCheckFilter(authenticatorMapper.getAuthenticatorChain(), jsonMapper);
    final Filter jersey = new GuiceFilter();
    this.filter = new Filter()
    {
      @Override
      public void init(FilterConfig config) throws ServletException
      {
        preResponseCheck.init(config);
        redirectFilter.init(config);
        jersey.init(config);
      }

      @Override
      public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
          throws IOException, ServletException
      {
        preResponseCheck.doFilter(
            request,
            response,
            (req, res) -> redirectFilter.doFilter(req, res, (req2, res2) -> jersey.doFilter(req2, res2, chain))
        );
      }

      @Override
      public void destroy()
      {
        jersey.destroy();
        redirectFilter.destroy();
        preResponseCheck.destroy();
      }
    };
  }

  @Override
  public Filter getFilter()
  {
    return filter;
  }

  @Override
  @Nullable
  public Class<? extends Filter> getFilterClass()
  {
    return null;
  }

  @Override
  @Nullable
  public Map<String, String> getInitParameters()
  {
    return null;
  }

  @Override
  @Deprecated
  public String getPath()
  {
    return PATH;
  }

  @Override
  public String[] getPaths()
  {
    return new String[]{PATH};
  }

  @Override
  @Nullable
  public EnumSet<DispatcherType> getDispatcherType()
  {
    return null;
  }
}
