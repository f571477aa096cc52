package io.github.druidbackup;

import com.fasterxml.jackson.annotation.JsonProperty;
import org.apache.druid.metadata.PasswordProvider;
import org.joda.time.Period;

import javax.annotation.Nullable;
import java.net.URI;
import java.time.Duration;

/**
 * {@code druid.backup.sidecar.*} in the node's runtime.properties, bound by Druid's JsonConfigProvider. The sidecar
 * reads the same keys from the same file (sidecar/config.ts), so both agree on the port and the token.
 */
public class SidecarConfig
{
  public static final String PREFIX = "druid.backup.sidecar";
  static final String DEFAULT_URL = "http://127.0.0.1:8484";
  /** The cluster sidecar's, beside a Coordinator: a different port, so it can share a host with a Historical's. */
  static final String CLUSTER_DEFAULT_URL = "http://127.0.0.1:8486";

  /** Unset: the default of this node's role. */
  @JsonProperty
  @Nullable
  private String url;

  /** A Druid PasswordProvider: a plain string, or e.g. {"type":"environment","variable":"DRUID_BACKUP_TOKEN"}. */
  @JsonProperty
  @Nullable
  private PasswordProvider token;

  /** Unset: start the sidecar when sidecar.js is in the extension folder and node is found. */
  @JsonProperty
  @Nullable
  private Boolean autostart;

  /** The Node.js executable: a name looked up on the PATH, or a path. */
  @JsonProperty
  private String node = "node";

  @JsonProperty
  private Period connectTimeout = new Period("PT5S");

  public String getUrl()
  {
    return url == null ? DEFAULT_URL : url;
  }

  /** The checked base URL of a data node's sidecar; a bad value stops the node's start-up with a message naming the key. */
  public URI baseUri()
  {
    return baseUri(SidecarRole.NODE);
  }

  /** The checked base URL of this role's sidecar. */
  public URI baseUri(SidecarRole role)
  {
    return SidecarUrls.parseBase(url != null ? url : role == SidecarRole.CLUSTER ? CLUSTER_DEFAULT_URL : DEFAULT_URL);
  }

  @Nullable
  public PasswordProvider getToken()
  {
    return token;
  }

  @Nullable
  public Boolean getAutostart()
  {
    return autostart;
  }

  public String getNode()
  {
    return node == null || node.isBlank() ? "node" : node.trim();
  }

  public Duration connectTimeout()
  {
    final long millis = connectTimeout.toStandardDuration().getMillis();
    if (millis <= 0) {
      throw new IllegalArgumentException(PREFIX + ".connectTimeout must be positive, got " + connectTimeout);
    }
    return Duration.ofMillis(millis);
  }
}
