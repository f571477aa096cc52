package io.github.druidbackup.testauth;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonProperty;
import org.apache.druid.server.security.AuthConfig;
import org.apache.druid.server.security.AuthenticationResult;
import org.apache.druid.server.security.Authenticator;

import javax.annotation.Nullable;
import javax.servlet.DispatcherType;
import javax.servlet.Filter;
import javax.servlet.FilterChain;
import javax.servlet.FilterConfig;
import javax.servlet.ServletException;
import javax.servlet.ServletRequest;
import javax.servlet.ServletResponse;
import javax.servlet.http.HttpServletRequest;
import java.io.IOException;
import java.util.EnumSet;
import java.util.Map;

/** Test only: authenticates a request by its {@code X-Test-Identity} header; leaves others to the next authenticator. */
public class HeaderAuthenticator implements Authenticator
{
  static final String HEADER = "X-Test-Identity";

  private final String name;
  private final String authorizerName;

  @JsonCreator
  public HeaderAuthenticator(
      @JsonProperty("name") String name,
      @JsonProperty("authorizerName") String authorizerName
  )
  {
    this.name = name;
    this.authorizerName = authorizerName;
  }

  @Override
  public Filter getFilter()
  {
    return new Filter()
    {
      @Override
      public void init(FilterConfig filterConfig)
      {
      }

      @Override
      public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
          throws IOException, ServletException
      {
        final String identity = ((HttpServletRequest) request).getHeader(HEADER);
        if (identity != null && !identity.isEmpty()) {
          request.setAttribute(
              AuthConfig.DRUID_AUTHENTICATION_RESULT,
              new AuthenticationResult(identity, authorizerName, name, null)
          );
        }
        chain.doFilter(request, response);
      }

      @Override
      public void destroy()
      {
      }
    };
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
  public String getPath()
  {
    return "/*";
  }

  @Override
  @Nullable
  public EnumSet<DispatcherType> getDispatcherType()
  {
    return null;
  }

  @Override
  @Nullable
  public String getAuthChallengeHeader()
  {
    return null;
  }

  @Override
  @Nullable
  public AuthenticationResult authenticateJDBCContext(Map<String, Object> context)
  {
    return null;
  }
}
